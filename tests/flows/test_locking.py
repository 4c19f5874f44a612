"""One run per work directory, through the command lines: a busy workdir is refused at once, a stale
lock is taken over (the lock itself: tests/mltoolkit/workdir/test_locking.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mltoolkit.workdir.locking import LOCK_FILE, lock_holder
from tests.constants import MOON, REPO_ROOT, SPECS


def _killed_holder(python_holding_lock, workdir, env) -> int:
    """Leave a stale lock in ``workdir``: a process takes it and is killed with SIGKILL."""
    holder = python_holding_lock(workdir, env, "a run that will be killed")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock_holder(workdir)["pid"] == holder.pid  # its record is still there
    return holder.pid


# --- the command lines --------------------------------------------------------------------


CLIS = ("flows.ml_workflow", "flows.spec_workflow", "flows.spec_step")


def _second_run_args(cli: str, workdir) -> list[str]:
    if cli == "flows.ml_workflow":
        return ["-m", cli, "-p", f"dataset={MOON}", "-p", "classifiers=[decision_tree]", "--workdir", str(workdir)]
    if cli == "flows.spec_workflow":
        return ["-m", cli, str(workdir), "small.yml", "--toplevel", str(SPECS / "trust"), "-p", "message=hi"]
    return [
        "-m",
        cli,
        "steps.yml#/write_step",
        str(workdir),
        "--toplevel",
        str(SPECS / "trust"),
        "-p",
        "message=hi",
        "-p",
        "outfile={workdir}/out.txt",
    ]


def _settled_snapshot(snapshot, folder: Path, timeout: float = 15.0) -> dict:
    """A snapshot once the first run has finished its writes before the gate (two equal snapshots)."""
    previous, deadline = snapshot(folder), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = snapshot(folder)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the first run kept writing while it should wait at its gate")


def _gated_native_run(workdir: Path, gate: Path, waiting: Path, env: dict[str, str]) -> subprocess.Popen:
    """A native run whose only classify step waits for ``gate``, holding the lock; started and at the gate."""
    gated = {
        "name": "gated",
        "estimator": "tests.slow_classifiers.GatedClassifier",
        "params": {"gate": str(gate), "waiting": str(waiting)},
    }
    first = subprocess.Popen(
        [
            *(sys.executable, "-m", "flows.ml_workflow", "-p", f"dataset={MOON}"),
            *("-p", f"classifiers={json.dumps([gated])}", "--workdir", str(workdir)),
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while not waiting.exists():
        if first.poll() is not None or time.monotonic() > deadline:
            first.kill()
            raise AssertionError(f"the first run never reached its gated step: {first.communicate()}")
        time.sleep(0.1)
    return first


def test_a_second_run_on_a_busy_workdir_fails_at_once_and_the_first_finishes(
    run_cli, flow_cli, run_records, snapshot, cli_env, offline_env, tmp_path
):
    workdir = tmp_path / "busy"
    gate = tmp_path / "gate"
    first = _gated_native_run(workdir, gate, tmp_path / "waiting", cli_env)
    try:
        holder = lock_holder(workdir)
        assert holder["pid"] == first.pid and "flows.ml_workflow" in holder["command"]
        before = _settled_snapshot(snapshot, tmp_path)

        # one second run per command line, at the same time; the offline environment has
        # no API: a second run that got as far as the flow would fail with another message
        with ThreadPoolExecutor(max_workers=3) as pool:
            seconds = list(pool.map(lambda cli: run_cli(_second_run_args(cli, workdir), offline_env), CLIS))
        assert first.poll() is None, "a second run waited for the first instead of failing at once"
        for second in seconds:
            flow_cli.assert_error_line(
                second, f"workdir {workdir}: in use by pid {first.pid} on ", " since ", "flows.ml_workflow"
            )
        assert snapshot(tmp_path) == before
        assert lock_holder(workdir) == holder
    finally:
        gate.touch()
        stdout, stderr = first.communicate(timeout=300)

    assert first.returncode == 0, stderr[-3000:]
    assert "gated" in stdout
    record = run_records.read(workdir)
    assert record["status"] == "completed"
    assert {step["state"] for step in record["steps"]} == {"COMPLETED"}
    assert json.loads((workdir / "scores.json").read_text()).keys() == {"gated"}
    assert lock_holder(workdir) is None  # released


def test_a_stale_lock_from_a_killed_run_is_recovered_by_the_cli(
    run_cli, run_records, python_holding_lock, cli_env, tmp_path
):
    workdir = tmp_path / "stale"
    workdir.mkdir()
    dead = _killed_holder(python_holding_lock, workdir, cli_env)

    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "small.yml",
            "--toplevel",
            str(SPECS / "trust"),
            "-p",
            "message=recovered",
        ],
        cli_env,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"warning: took over the lock of a run that ended without releasing it (pid {dead} on " in result.stderr
    assert run_records.read(workdir)["status"] == "completed"
    assert (workdir / "write" / "message.txt").read_text() == "recovered\n"
    assert (workdir / LOCK_FILE).exists() and lock_holder(workdir) is None
