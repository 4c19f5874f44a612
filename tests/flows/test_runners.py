"""Task runners: the native flow and the seed spec give the same scores on every runner.

Each command runs with a process tag in its environment, so the test can check
that nothing it started (worker pools, a Dask cluster) outlives it.
"""

from __future__ import annotations

import json

import pytest

from tests.constants import SEED_CLASSIFIERS

RUNNERS = ["thread", "process", "dask"]
ALL_STEPS = ["data_prep", *[f"classification_{i}" for i in range(5)], "merge_and_visualize"]


@pytest.fixture(scope="module")
def reference_scores(repo_root) -> dict[str, float]:
    """The seed classifiers' scores from the pure toolkit, no orchestration."""
    from mltoolkit import classify, data_prep

    prepped = data_prep(repo_root / "data" / "moon.txt")
    return {name: classify(prepped, name).score for name in SEED_CLASSIFIERS}


@pytest.fixture(scope="module")
def dask_cluster(prefect_api):
    """A Dask cluster the tests start and close (its workers inherit the session's Prefect API)."""
    from distributed import LocalCluster

    cluster = LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


# --- choosing a runner ----------------------------------------------------------------------


def test_make_task_runner_builds_each_runner_and_rejects_bad_combinations():
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.runners import make_task_runner, uses_compute_pool
    from mltoolkit.errors import CommandLineError

    assert isinstance(make_task_runner("thread"), ThreadPoolTaskRunner)
    assert isinstance(make_task_runner("process"), ProcessPoolTaskRunner)
    assert isinstance(make_task_runner("dask"), DaskTaskRunner)
    assert make_task_runner("dask", "tcp://127.0.0.1:8786").address == "tcp://127.0.0.1:8786"
    assert uses_compute_pool(make_task_runner("thread"))
    assert not uses_compute_pool(make_task_runner("process"))
    assert not uses_compute_pool(make_task_runner("dask"))
    with pytest.raises(CommandLineError, match="choose one of thread, process, dask"):
        make_task_runner("gpu")
    with pytest.raises(CommandLineError, match="needs --runner dask"):
        make_task_runner("thread", "tcp://127.0.0.1:8786")
    with pytest.raises(CommandLineError, match="expected a scheduler address"):
        make_task_runner("dask", "127.0.0.1:8786")


@pytest.mark.parametrize("flow_name", ["ml_workflow", "spec_workflow", "seed_spec_workflow"])
def test_deployed_flows_choose_the_runner_by_environment_when_a_run_starts(flow_name, monkeypatch):
    """Prefect runs a flow with ``flow.task_runner.duplicate()``: that is when the variables are read."""
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    import flows.ml_workflow
    import flows.spec_workflow
    from mltoolkit.errors import CommandLineError

    module = flows.ml_workflow if flow_name == "ml_workflow" else flows.spec_workflow
    flow = getattr(module, flow_name)
    monkeypatch.delenv("MLTOOLKIT_TASK_RUNNER", raising=False)
    monkeypatch.delenv("MLTOOLKIT_DASK_ADDRESS", raising=False)
    assert isinstance(flow.task_runner.duplicate(), ThreadPoolTaskRunner)

    monkeypatch.setenv("MLTOOLKIT_TASK_RUNNER", "dask")
    monkeypatch.setenv("MLTOOLKIT_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    chosen = flow.task_runner.duplicate()
    assert isinstance(chosen, DaskTaskRunner) and chosen.address == "tcp://127.0.0.1:8786"

    monkeypatch.setenv("MLTOOLKIT_TASK_RUNNER", "gpu")
    with pytest.raises(CommandLineError, match=r"^MLTOOLKIT_TASK_RUNNER 'gpu': unknown task runner; choose one of"):
        flow.task_runner.duplicate()
    monkeypatch.setenv("MLTOOLKIT_TASK_RUNNER", "thread")
    with pytest.raises(CommandLineError, match=r"^MLTOOLKIT_DASK_ADDRESS '.*' needs MLTOOLKIT_TASK_RUNNER dask"):
        flow.task_runner.duplicate()


def test_a_command_lines_runner_is_the_one_its_flow_runs_with(monkeypatch):
    """The command lines choose the runner for the flow runs they start, whatever the environment says."""
    import asyncio

    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    from flows.environment_runner import chosen_task_runner
    from flows.ml_workflow import ml_workflow

    monkeypatch.setenv("MLTOOLKIT_TASK_RUNNER", "thread")
    monkeypatch.delenv("MLTOOLKIT_DASK_ADDRESS", raising=False)

    async def runner_of_a_run_started_here() -> object:
        return ml_workflow.task_runner.duplicate()  # what Prefect's engine does when the run starts

    with chosen_task_runner(ProcessPoolTaskRunner(max_workers=3)):
        chosen = asyncio.run(runner_of_a_run_started_here())
    assert isinstance(chosen, ProcessPoolTaskRunner) and chosen._max_workers == 3
    after = ml_workflow.task_runner.duplicate()
    assert isinstance(after, ThreadPoolTaskRunner)


def test_unknown_runner_on_the_command_line_is_one_line_error(run_cli, offline_env, tmp_path):
    result = run_cli(
        ["-m", "flows.spec_workflow", str(tmp_path / "wd"), "workflow.yml", "--runner", "gpu"], offline_env
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --runner 'gpu': unknown task runner; choose one of thread, process, dask"
    ]


# --- same scores on every runner ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_native_flow_gives_the_same_scores_on_every_runner(
    runner, flow_cli, run_records, process_tags, cli_env, repo_root, tmp_path, reference_scores
):
    env, tag = process_tags.tagged_env(cli_env)
    workdir = tmp_path / "workdir"
    with process_tags.reaping(tag):
        flow_cli.check(flow_cli.native(env, workdir, "--inputs", str(repo_root / "inputs.yml"), "--runner", runner))
        leftovers = process_tags.wait_until_gone(tag, timeout=15)
    assert not leftovers, [process.cmdline() for process in leftovers]
    assert json.loads((workdir / "scores.json").read_text()) == reference_scores
    assert run_records.states(workdir) == {name: "COMPLETED" for name in ALL_STEPS}


@pytest.mark.slow
def test_mltoolkit_run_on_the_process_runner(run_cli, process_tags, cli_env, repo_root, tmp_path, reference_scores):
    """Through ``python -m flows.cli``: the runner's spawned workers import that module without running it."""
    env, tag = process_tags.tagged_env(cli_env)
    workdir = tmp_path / "workdir"
    command = ["-m", "flows.cli", "run", "--inputs", str(repo_root / "inputs.yml"), "--workdir", str(workdir)]
    with process_tags.reaping(tag):
        result = run_cli([*command, "--runner", "process"], env)
        leftovers = process_tags.wait_until_gone(tag, timeout=15)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not leftovers, [process.cmdline() for process in leftovers]
    assert json.loads((workdir / "scores.json").read_text()) == reference_scores


@pytest.mark.slow
@pytest.mark.parametrize("runner", RUNNERS)
def test_seed_spec_gives_the_same_scores_on_every_runner(
    runner, flow_cli, run_records, process_tags, spec_scores, cli_env, tmp_path, reference_scores
):
    env, tag = process_tags.tagged_env(cli_env)
    workdir = tmp_path / "workdir"
    with process_tags.reaping(tag):
        flow_cli.check(flow_cli.spec(env, workdir, "seed_parallel", "--runner", runner))
        leftovers = process_tags.wait_until_gone(tag, timeout=15)
    assert not leftovers, [process.cmdline() for process in leftovers]
    assert spec_scores(workdir, len(SEED_CLASSIFIERS)) == reference_scores
    assert run_records.states(workdir) == {name: "COMPLETED" for name in ALL_STEPS}


@pytest.mark.slow
def test_both_flows_run_on_an_existing_dask_cluster(
    dask_cluster, flow_cli, spec_scores, cli_env, repo_root, tmp_path, reference_scores
):
    address = dask_cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    native_dir, spec_dir = tmp_path / "native", tmp_path / "spec"
    flow_cli.check(
        flow_cli.native(
            cli_env,
            native_dir,
            "--inputs",
            str(repo_root / "inputs.yml"),
            "--runner",
            "dask",
            "--dask-address",
            address,
        )
    )
    flow_cli.check(flow_cli.spec(cli_env, spec_dir, "seed_parallel", "--runner", "dask", "--dask-address", address))
    assert json.loads((native_dir / "scores.json").read_text()) == reference_scores
    assert spec_scores(spec_dir, len(SEED_CLASSIFIERS)) == reference_scores
    # the steps ran on the cluster (its scheduler lives in this process), which the
    # commands left running: it was not theirs to close
    finished = {name: prefix.state_counts["memory"] for name, prefix in dask_cluster.scheduler.task_prefixes.items()}
    assert finished == {"classify": 5, "run_spec_step": 7}, finished
    assert len(dask_cluster.scheduler_info["workers"]) == 2
