"""Starting a step's process, streaming its output, stopping it (timeout, Ctrl-C) and what it left.

A step's command runs in the step's folder in a new session
(:class:`~mltoolkit.processes.process_group.GroupProcess`): a timeout or a
cancellation stops its whole process group, and so does its end -- background
processes it left behind are stopped when its first process exits, so they
neither outlive the step nor hold its output pipe open. Every process of a step
carries a tag the command's warden (:mod:`mltoolkit.processes.warden`) looks
for: if the command dies, even by SIGKILL, its steps die too.

The output (stdout and stderr, interleaved) goes to the step's log file and,
line by line, to ``on_output``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mltoolkit.errors import StepCancelledError, StepFailedError
from mltoolkit.processes.process_group import GroupProcess, OutputPump, cancel_all, cancelling, reset_cancellation

__all__ = ["cancel_running_steps", "execute", "reset_cancellation"]

_TAIL_LINES = 5
#: Seconds the output may keep flowing after a finished step's group was stopped
#: (only a process that left the group can still hold the pipe).
_OUTPUT_GRACE = 2.0


def cancel_running_steps() -> int:
    """Stop every step running in this process (Ctrl-C) and refuse new ones; return how many ran.

    Each running step's process group gets SIGTERM at once and SIGKILL two seconds
    later; :func:`execute` then raises :class:`~mltoolkit.errors.StepCancelledError`
    for it, and for every step asked to start afterwards, until :func:`reset_cancellation`.
    """
    return cancel_all()


def _stop(group: GroupProcess, on_kill: Callable[[], None] | None) -> None:
    # What lives outside the process group (a Docker container) goes first, so its
    # client exits by itself; once more after the group, for anything started meanwhile.
    if on_kill is not None:
        on_kill()
    group.stop()
    if on_kill is not None:
        on_kill()


def execute(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout: float | None,
    on_output: Callable[[str], None] | None,
    label: str,
    on_kill: Callable[[], None] | None = None,
) -> int:
    """Run ``argv`` to its end; return its exit code (always 0: anything else raises).

    ``on_kill`` is called when the process is killed (timeout, interrupt), to end
    what its process group does not hold, such as a Docker container.

    Raises:
        StepFailedError: it could not start, exited non-zero or timed out; one line naming
            ``label``, the exit code, the log file and the last output lines.
        StepCancelledError: the run was interrupted (:func:`cancel_running_steps`).
    """
    if cancelling():
        raise StepCancelledError(f"{label}: not started: the run was interrupted")
    try:
        group = GroupProcess(argv, cwd=cwd, env=env)
    except OSError as error:
        raise StepFailedError(
            f"{label}: cannot start {argv[0]!r} ({error.strerror}); install it or fix the interpreter"
        ) from None
    assert group.process.stdout is not None
    try:
        pump = OutputPump(group.process.stdout.fileno(), log_path, on_output)
    except OSError as error:
        _stop(group, on_kill)  # its output would have nowhere to go
        group.close()
        group.process.stdout.close()
        raise StepFailedError(f"{label}: cannot open its log {log_path} ({error.strerror}); check the folder") from None
    try:
        code = _wait(group, pump, timeout, label, log_path, on_kill)
    finally:
        if group.process.returncode is None:  # interrupted while waiting
            _stop(group, on_kill)
        group.close()
        pump.finish(0)  # closes the log (nothing is left to read when it was finished before)
        group.process.stdout.close()
    if code != 0:
        raise StepFailedError(
            f"{label}: command exited with code {code} (log: {log_path}); last output: {_tail_text(pump.tail)}"
        )
    if pump.log_error is not None:
        raise StepFailedError(
            f"{label}: its output could not be written to its log {log_path} ({pump.log_error.strerror}); "
            "free space on that disk, then run again"
        )
    return code


def _wait(
    group: GroupProcess,
    pump: OutputPump,
    timeout: float | None,
    label: str,
    log_path: Path,
    on_kill: Callable[[], None] | None,
) -> int:
    """The exit code of ``group``'s command once it and its group are gone; raises on timeout or cancel."""
    exited = group.wait_exit(timeout, pump)
    if not exited:
        _stop(group, on_kill)
        pump.finish(_OUTPUT_GRACE)
        if group.cancelled:
            raise StepCancelledError(f"{label}: stopped: the run was interrupted (log: {log_path})")
        raise StepFailedError(
            f"{label}: timed out after {timeout:g} s and was killed (log: {log_path}); "
            f"last output: {_tail_text(pump.tail)}; raise the timeout or check the step"
        )
    code = group.finish(pump)
    if not pump.finish(_OUTPUT_GRACE):
        group.stop_escaped()  # something left the group but still writes to the step's output
    if code != 0 and group.cancelled:  # it ended because it was stopped
        raise StepCancelledError(f"{label}: stopped: the run was interrupted (log: {log_path})")
    return code


def _tail_text(lines: list[str]) -> str:
    useful = [line.strip() for line in lines if line.strip()][-_TAIL_LINES:]
    text = " | ".join(useful) or "(none)"
    return text if len(text) <= 600 else "..." + text[-597:]
