"""Retries and per-step timeouts, for spec steps and for the native flow's steps.

A flaky step fails on its first attempt and succeeds on the second: its retry must
show in run.json (``attempts: 2``) and in Prefect (the task run's ``run_count``).
A hanging step is killed with everything it started, and reported in one line.
"""

from __future__ import annotations

import json
import time
from uuid import UUID

import psutil

from tests.constants import MOON, SPECS


def _prefect_run_count(task_run_id: str) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_task_run(UUID(task_run_id)).run_count


def _sleeps(seconds: int) -> list[psutil.Process]:
    """Live ``sleep SECONDS`` processes (zombies are dead: only their exit status is left)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["cmdline"] == ["sleep", str(seconds)] and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _assert_no_sleeps_left(seconds: int) -> None:
    deadline = time.monotonic() + 10  # SIGKILL is asynchronous: give the kernel a moment
    while _sleeps(seconds) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleeps(seconds), "a step's process outlived its timeout"


def test_spec_flaky_steps_are_retried_globally_and_per_stage(run_cli, run_records, cli_env, tmp_path):
    workdir = tmp_path / "flaky"
    once, twice = tmp_path / "once.count", tmp_path / "twice.count"
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "flaky.yml",
            "--toplevel",
            str(SPECS / "trust"),
            "-p",
            f"once={once}",
            "-p",
            f"twice={twice}",
            "--retries",
            "1",
            "--step-retries",
            "flaky_twice=2",
            "--retry-delay",
            "0.1",
        ],
        cli_env,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    steps = run_records.by_name(run_records.read(workdir))
    assert {name: (step["state"], step["attempts"]) for name, step in steps.items()} == {
        "flaky": ("COMPLETED", 2),  # --retries 1
        "flaky_twice": ("COMPLETED", 3),  # --step-retries flaky_twice=2 overrides it
        "steady": ("COMPLETED", 1),
    }
    assert (once.read_text().strip(), twice.read_text().strip()) == ("2", "3")
    assert (workdir / "steady" / "steady.txt").read_text().strip() == str(workdir / "flaky" / "result.txt")
    for name, attempts in (("flaky", 2), ("flaky_twice", 3), ("steady", 1)):
        assert _prefect_run_count(steps[name]["task_run_id"]) == attempts


def test_native_flaky_step_is_retried(run_cli, run_records, cli_env, tmp_path):
    workdir = tmp_path / "flaky"
    marker = tmp_path / "first-attempt.marker"
    flaky = {"name": "flaky", "estimator": "tests.slow_classifiers.FlakyClassifier", "params": {"marker": str(marker)}}
    result = run_cli(
        [
            "-m",
            "flows.ml_workflow",
            "-p",
            f"dataset={MOON}",
            "-p",
            f"classifiers={json.dumps(['decision_tree', flaky])}",
            "--workdir",
            str(workdir),
            "--retries",
            "1",
            "--retry-delay",
            "0.1",
        ],
        cli_env,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert marker.exists()
    record = run_records.read(workdir)
    steps = run_records.by_name(record)
    assert record["status"] == "completed"
    assert steps["classification_1"]["state"] == "COMPLETED" and steps["classification_1"]["attempts"] == 2
    assert all(steps[name]["attempts"] == 1 for name in ("data_prep", "classification_0", "merge_and_visualize"))
    assert _prefect_run_count(steps["classification_1"]["task_run_id"]) == 2
    assert json.loads((workdir / "scores.json").read_text()).keys() == {"decision_tree", "flaky"}


def test_spec_hanging_step_is_killed_with_its_children(run_cli, flow_cli, run_records, cli_env, tmp_path):
    workdir = tmp_path / "hang"
    seconds = 613  # unusual, so the leftover check cannot confuse it with anything else
    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "hang.yml",
            "--toplevel",
            str(SPECS / "trust"),
            "-p",
            f"seconds={seconds}",
            "--step-timeout",
            "2",
        ],
        cli_env,
        timeout=120,
    )

    line = flow_cli.assert_error_line(
        result, "1 of 1 step(s) failed", "step hang: timed out after 2 s and was killed", only_line=False
    )
    assert f"hanging for {seconds} s" in line  # the step's last output, for the user
    assert sum(text.startswith("error:") for text in result.stderr.splitlines()) == 1
    _assert_no_sleeps_left(seconds)
    record = run_records.read(workdir)
    step = run_records.by_name(record)["hang"]
    assert record["status"] == "failed"
    assert step["state"] == "FAILED" and "timed out after 2 s" in step["error"]
    assert not (workdir / "hang" / "done.txt").exists()


def test_native_hanging_step_is_killed_with_its_children(run_cli, flow_cli, run_records, cli_env, tmp_path):
    workdir = tmp_path / "slow"
    seconds = 617
    slow = {
        "name": "slow",
        "estimator": "tests.slow_classifiers.SlowClassifier",
        "params": {"seconds": 600, "child_seconds": seconds},
    }
    result = run_cli(
        [
            "-m",
            "flows.ml_workflow",
            "-p",
            f"dataset={MOON}",
            "-p",
            f"classifiers={json.dumps(['decision_tree', slow])}",
            "--workdir",
            str(workdir),
            "--step-timeout",
            "3",
        ],
        cli_env,
        timeout=120,
    )

    flow_cli.assert_error_line(
        result, "step classify[slow]:", "did not finish within 3 s", "processes were killed", only_line=False
    )
    assert sum(text.startswith("error:") for text in result.stderr.splitlines()) == 1
    _assert_no_sleeps_left(seconds)
    record = run_records.read(workdir)
    steps = run_records.by_name(record)
    assert record["status"] == "failed"
    assert steps["classification_0"]["state"] == "COMPLETED"
    assert steps["classification_1"]["state"] == "FAILED"
    assert "did not finish within 3 s" in steps["classification_1"]["error"]
    assert steps["merge_and_visualize"]["state"] != "COMPLETED"
    assert not (workdir / "classification_1").exists() or not list((workdir / "classification_1").glob("*.pkl"))
