"""Resuming a spec run: after a failed step, and after the command was killed mid-run.

Both rely on the per-step cache: finished steps are reused (``CACHED``), the
failed or interrupted step and everything after it run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.constants import REPO_ROOT, SPECS


def test_failed_step_then_rerun_resumes_at_that_step(flow_cli, run_records, cli_env, tmp_path):
    marker = tmp_path / "marker"
    workdir = tmp_path / "workdir"

    failed = flow_cli.spec(cli_env, workdir, "resume_marker", "-p", f"marker={marker}")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "second" in errors[0] and "code 3" in errors[0], failed.stderr
    assert run_records.read(workdir)["status"] == "failed"
    # 'third' was never applied: it waits for the failed step
    assert run_records.states(workdir) == {"first": "COMPLETED", "second": "FAILED"}
    first_output = (workdir / "first" / "first.txt").stat()

    marker.write_text("ready\n")
    flow_cli.check(flow_cli.spec(cli_env, workdir, "resume_marker", "-p", f"marker={marker}"))
    assert run_records.read(workdir)["status"] == "completed"
    assert run_records.states(workdir) == {"first": "CACHED", "second": "COMPLETED", "third": "COMPLETED"}
    assert (workdir / "third" / "third.txt").read_text() == "hello\nsecond\nthird\n"
    assert (workdir / "first" / "first.txt").stat().st_mtime_ns == first_output.st_mtime_ns  # not rewritten


@pytest.mark.slow
def test_killed_run_resumes_and_leaves_nothing_running(flow_cli, run_records, process_tags, cli_env, tmp_path):
    env, tag = process_tags.tagged_env(cli_env)
    workdir = tmp_path / "workdir"
    started = workdir / "slow" / "started.txt"
    command = [
        sys.executable,
        "-m",
        "flows.spec_workflow",
        str(workdir),
        "workflow.yml",
        "inputs.yml",
        "--toplevel",
        str(SPECS / "slow_middle"),
        "-p",
        "seconds=3",
    ]
    log = tmp_path / "killed-run.log"
    with process_tags.reaping(tag), open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            # 'slow' starts only after 'first' has finished: its result is in the cache
            while not started.exists():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the command and its process group
            process.wait()
        assert not (workdir / "last").exists()
        # Helpers in their own sessions (the warm worker pool, the step's shell) must
        # not outlive the command: the pool notices its parent is gone, the step's
        # `sleep 3` ends by itself.
        leftovers = process_tags.wait_until_gone(tag, timeout=20)
        assert not leftovers, [(p.pid, p.cmdline()) for p in leftovers]

    result = flow_cli.check(flow_cli.spec(cli_env, workdir, "slow_middle", "-p", "seconds=3"))
    assert "completed: 3 steps" in result.stdout
    assert run_records.states(workdir) == {"first": "CACHED", "slow": "COMPLETED", "last": "COMPLETED"}
    assert (workdir / "last" / "last.txt").read_text() == "hello\nslow\nlast\n"
