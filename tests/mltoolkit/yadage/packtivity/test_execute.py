"""The step's process: exit codes, missing interpreters, timeouts that kill the whole group."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mltoolkit.errors import StepFailedError
from mltoolkit.yadage.packtivity import StepOptions, run_step


def test_non_zero_exit_names_step_code_log_and_last_lines(make_step, tmp_path):
    step = make_step("echo first; echo second >&2; exit 3")
    with pytest.raises(StepFailedError) as caught:
        run_step(step, {}, tmp_path / "bad", name="bad_0", stage="bad")
    message = str(caught.value)
    log = tmp_path / "bad" / "_packtivity" / "bad_0.run.log"
    assert message == f"stage 'bad' step bad_0: command exited with code 3 (log: {log}); last output: first | second"
    assert log.read_text() == "first\nsecond\n"


def test_missing_interpreter_is_reported(make_step, tmp_path):
    step = make_step(script="x", interpreter="no-such-interpreter-xyz")
    with pytest.raises(StepFailedError, match=r"cannot start 'no-such-interpreter-xyz'"):
        run_step(step, {}, tmp_path / "s", name="s")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_timeout_kills_the_whole_process_group(make_step, tmp_path):
    step = make_step("sleep 30 & echo $! > {workdir}/child.pid; echo started; wait")
    started = time.monotonic()
    with pytest.raises(
        StepFailedError, match=r"step slow: timed out after 0.5 s and was killed .*last output: started"
    ):
        run_step(step, {}, tmp_path / "slow", name="slow", options=StepOptions(timeout=0.5))
    assert time.monotonic() - started < 10
    child = int((tmp_path / "slow" / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
