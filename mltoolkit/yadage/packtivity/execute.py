"""Starting a step's process, streaming its output, killing it on timeout.

A process runs in the step's folder in a new session, so a timeout (or an
interrupt) kills its whole process group. Its output (stdout and stderr,
interleaved) goes to the step's log file and, line by line, to ``on_output``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from mltoolkit.errors import StepFailedError

__all__ = ["execute"]

_TAIL_LINES = 5


def _stream(
    process: subprocess.Popen,
    log_path: Path,
    on_output: Callable[[str], None] | None,
    tail: list[str],
) -> None:
    callback_failed = False
    with open(log_path, "ab") as log:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            log.write(raw)
            log.flush()
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(line)
            if len(tail) > 200:
                del tail[:100]
            if on_output is not None and not callback_failed:
                try:
                    on_output(line)
                except Exception as error:  # a logging problem must not fail the analysis
                    callback_failed = True
                    log.write(f"[mltoolkit] output callback failed, no longer called: {error!r}\n".encode())


def _kill_group(process: subprocess.Popen) -> None:
    for signum, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=grace)
            # children may outlive the leader; make sure the whole group is gone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


def _stop(process: subprocess.Popen, on_kill: Callable[[], None] | None) -> None:
    # What lives outside the process group (a Docker container) goes first, so its
    # client exits by itself; once more after the group, for anything started meanwhile.
    if on_kill is not None:
        on_kill()
    _kill_group(process)
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
    """
    tail: list[str] = []
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        raise StepFailedError(
            f"{label}: cannot start {argv[0]!r} ({error.strerror}); install it or fix the interpreter"
        ) from None
    reader = threading.Thread(target=_stream, args=(process, log_path, on_output, tail), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process, on_kill)
        reader.join(timeout=5)
        raise StepFailedError(
            f"{label}: timed out after {timeout:g} s and was killed (log: {log_path}); "
            f"last output: {_tail_text(tail)}; raise the timeout or check the step"
        ) from None
    except BaseException:
        _stop(process, on_kill)
        raise
    reader.join(timeout=30)
    if code != 0:
        raise StepFailedError(
            f"{label}: command exited with code {code} (log: {log_path}); last output: {_tail_text(tail)}"
        )
    return code


def _tail_text(lines: list[str]) -> str:
    useful = [line.strip() for line in lines if line.strip()][-_TAIL_LINES:]
    text = " | ".join(useful) or "(none)"
    return text if len(text) <= 600 else "..." + text[-597:]
