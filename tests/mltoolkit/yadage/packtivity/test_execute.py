"""The step's process: exit codes, missing interpreters, timeouts and cancellation that kill the whole
group, and nothing of a finished step left running."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mltoolkit.errors import StepCancelledError, StepFailedError
from mltoolkit.yadage.packtivity import StepOptions, run_step
from mltoolkit.yadage.packtivity.execute import cancel_running_steps, reset_cancellation


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


def test_a_log_that_cannot_be_opened_fails_the_step_in_one_line(make_step, tmp_path, monkeypatch):
    from mltoolkit.processes import process_group

    real_open = open

    def refusing(path, *args, **kwargs):
        if str(path).endswith(".run.log"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(process_group, "open", refusing, raising=False)
    step = make_step("echo never")
    expected = r"^step s: cannot open its log .*s\.run\.log \(Permission denied\); check the folder$"
    with pytest.raises(StepFailedError, match=expected):
        run_step(step, {}, tmp_path / "s", name="s")


def test_a_log_that_cannot_be_written_fails_the_step_in_one_line(make_step, tmp_path, monkeypatch):
    import errno
    import io

    from mltoolkit.processes import process_group

    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(process_group, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    expected = r"^step s: its output could not be written to its log .*s\.run\.log \(No space left on device\); free"
    with pytest.raises(StepFailedError, match=expected):
        run_step(make_step("echo some output"), {}, tmp_path / "s", name="s")


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


def _pid_in(path: Path) -> int:
    return int(path.read_text())


def _gone_soon(pid: int) -> bool:
    """Whether ``pid`` ends within ten seconds (stopping takes a SIGTERM grace period)."""
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_background_children_of_a_step_that_succeeded_are_stopped_when_it_ends(make_step, tmp_path):
    step = make_step("sleep 615 > /dev/null 2>&1 & echo $! > {workdir}/bg.pid; echo done")
    result = run_step(step, {}, tmp_path / "bg", name="bg")
    assert result.exit_code == 0
    assert _gone_soon(_pid_in(tmp_path / "bg" / "bg.pid"))


def test_a_background_child_holding_the_output_neither_stalls_the_step_nor_outlives_it(make_step, tmp_path):
    lines: list[str] = []
    step = make_step("sleep 616 & echo $! > {workdir}/bg.pid; echo done")
    run_step(step, {}, tmp_path / "held", name="held", on_output=lines.append)
    # the child's end closed the pipe: gone by the time the step returns (it used to keep
    # the output open, and the step waited 30 s for it, then left it running)
    assert not _alive(_pid_in(tmp_path / "held" / "bg.pid"))
    assert lines == ["done"]


def test_a_process_that_left_the_group_but_holds_the_output_is_stopped_too(make_step, tmp_path):
    step = make_step("setsid sh -c 'echo $$ > {workdir}/escaped.pid; exec sleep 617' & sleep 0.5; echo done")
    run_step(step, {}, tmp_path / "escaped", name="escaped")
    assert _gone_soon(_pid_in(tmp_path / "escaped" / "escaped.pid"))


def test_cancelling_stops_running_steps_at_once_and_refuses_new_ones(make_step, tmp_path):
    started = threading.Event()
    errors: list[BaseException] = []
    step = make_step("echo $$ > {workdir}/shell.pid; echo started; sleep 618; echo never")

    def run() -> None:
        try:
            run_step(step, {}, tmp_path / "long", name="long", on_output=lambda line: started.set())
        except BaseException as error:
            errors.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert started.wait(60)
        assert cancel_running_steps() == 1
        runner.join(30)
        assert not runner.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], StepCancelledError), errors
        assert str(errors[0]).startswith("step long: stopped: the run was interrupted")
        assert not _alive(_pid_in(tmp_path / "long" / "shell.pid"))
        with pytest.raises(StepCancelledError, match="step later: not started: the run was interrupted"):
            run_step(make_step("echo hi"), {}, tmp_path / "later", name="later")
    finally:
        reset_cancellation()
        runner.join(30)
    assert run_step(make_step("echo hi"), {}, tmp_path / "after", name="after").exit_code == 0
