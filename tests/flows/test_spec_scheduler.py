"""The spec adapter tells Prefect the workflow's edges: each task run's ``wait_for`` names its upstream steps.

Prefect's run graph draws an edge for every task run named in another's
``task_inputs``; these tests read them back through the API.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _upstream_names(workdir: Path, run_records, read_task_runs, expected: int) -> dict[str, set[str]]:
    """{task run name: names of the task runs its ``wait_for`` names} for the run in ``workdir``."""
    record = run_records.read(workdir)
    task_runs = read_task_runs(record["flow_run_id"], expected=expected, timeout=120)
    names = {run.id: run.name for run in task_runs}
    return {run.name: {names[entry.id] for entry in run.task_inputs.get("wait_for", [])} for run in task_runs}


def test_the_seed_specs_task_runs_wait_for_their_upstream_steps(shared_run, run_records, read_task_runs):
    run = shared_run("seed-spec")
    upstream = _upstream_names(run.workdir, run_records, read_task_runs, expected=7)
    classifications = {f"classification[{i}]" for i in range(5)}
    assert upstream == {
        "data_prep": set(),
        **{name: {"data_prep"} for name in classifications},
        "merge_and_visualize": classifications | {"data_prep"},
    }


def test_steps_in_subworkflows_wait_for_steps_across_scopes(flow_cli, cli_env, run_records, read_task_runs, tmp_path):
    workdir = tmp_path / "nested"
    flow_cli.check(flow_cli.spec(cli_env, workdir, "nested"))
    upstream = _upstream_names(workdir, run_records, read_task_runs, expected=7)
    assert upstream["leaf @/map/1/inner/0"] == {"stage1 @/map/1"}
    assert upstream["stage1 @/map/0"] == set()
    assert upstream["reduce"] == {
        f"{name} @{scope}{inner}"
        for scope in ("/map/0", "/map/1", "/single/0")
        for name, inner in (("stage1", ""), ("leaf", "/inner/0"))
    }


@pytest.mark.parametrize(
    "steps, upstream, expected", [(1, 5, 5), (4, 5, 5), (10_000, 10_000, 1), (200, 10_000, 50), (1, 0, 0)]
)
def test_dependency_edges_per_stage_are_bounded(steps, upstream, expected):
    from flows.spec_scheduler import upstream_futures

    futures = {f"/up_{i}": f"future {i}" for i in range(upstream)}
    ids = [*futures, "/init"]  # an id without a task run (init) is skipped
    assert upstream_futures(futures, ids, steps) == [f"future {i}" for i in range(expected)]
