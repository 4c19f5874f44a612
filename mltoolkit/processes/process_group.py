"""A command run in its own process group: waited for, stopped, cancelled, and nothing left behind.

:class:`GroupProcess` starts a command in a new session (its own process
group), tagged for the :mod:`~mltoolkit.processes.warden`, so it dies with the
process that started it. When the command's first process exits, whatever it
left running in its group (``server &`` without ``wait``) is stopped too -- the
exit is noticed without reaping the process (a pidfd), so the group id cannot
be reused while it is signalled. :class:`OutputPump` copies the output to a log
and a callback line by line, in the thread that waits for the command, and stops
reading shortly after the command ended even if a process outside the group
still holds the pipe open.

:func:`cancel_all` stops every group started here that is still running (for
Ctrl-C): each is sent SIGTERM at once, SIGKILL after a grace period, and the
thread waiting for it sees :attr:`GroupProcess.cancelled`. Later starts are
refused (:func:`cancelling`) until :func:`reset_cancellation`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from mltoolkit.processes.warden import OWNER_VARIABLE, step_environment, stop_tagged

__all__ = ["GroupProcess", "OutputPump", "cancel_all", "cancelling", "find_command", "reset_cancellation"]

#: Seconds between SIGTERM and SIGKILL when a group is stopped.
STOP_GRACE = 2.0
#: Seconds the leftovers of a finished command get to end after SIGTERM.
LEFTOVER_GRACE = 1.0
#: A line longer than this is passed on in pieces (a step printing no newline at all).
MAX_LINE = 1 << 20
#: After the grace, reads of what a process outside the group already wrote (64 KiB each).
_READS_AFTER_GRACE = 64

_registry_lock = threading.Lock()
_running: set[GroupProcess] = set()
_cancelled = threading.Event()


@functools.lru_cache(maxsize=64)
def find_command(name: str, search_path: str | None) -> str | None:
    """Where the command ``name`` is on ``search_path`` (``None``: this process's ``PATH``), looked up once per process.

    Every step would otherwise look again, one ``stat`` per folder of the path.
    """
    return shutil.which(name, path=search_path)


def _found_on_path(name: str, search_path: str) -> str | None:
    """Where a step's command is, for the new process to run at once; ``None``: let the new process search.

    Without it the new process tries each folder of the path in turn, while the
    thread that started it waits (a dozen failed ``execve`` per step on a long
    ``PATH``). ``argv[0]`` stays as written. A name with a folder in it, or a
    path with a relative (or empty) entry -- which the new process would look up
    from the step's folder, not from ours -- is left to the new process.
    """
    if os.sep in name or not all(os.path.isabs(entry) for entry in search_path.split(os.pathsep)):
        return None
    return find_command(name, search_path)


class GroupProcess:
    """``argv`` started in a new session, stdout and stderr together on one pipe."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.cancelled = False
        self.environment = step_environment(env)
        executable = _found_on_path(argv[0], self.environment.get("PATH", os.defpath))
        try:
            self.process = self._start(argv, executable, cwd)
        except FileNotFoundError:
            if executable is None:
                raise
            find_command.cache_clear()  # it was removed since: search the path again
            self.process = self._start(argv, None, cwd)
        self.pid = self.process.pid
        self._wake_read, self._wake_write = os.pipe()
        with _registry_lock:
            _running.add(self)
            if _cancelled.is_set():
                self.cancel()

    def _start(self, argv: list[str], executable: str | None, cwd: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            executable=executable,
            cwd=cwd,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def tag(self) -> str:
        """This command's own warden tag (its processes carry it in their environment)."""
        return self.environment[OWNER_VARIABLE]

    def wait_exit(self, timeout: float | None, output: OutputPump | None = None) -> bool:
        """Wait until the first process exits (not reaped), ``timeout`` passes or :meth:`cancel`; True if it exited.

        ``output`` is copied meanwhile, whenever its pipe has data.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd (kernel < 5.3): poll
            pidfd = None
        try:
            poller = select.poll()
            poller.register(self._wake_read, select.POLLIN)
            if pidfd is not None:
                poller.register(pidfd, select.POLLIN)
            if output is not None and not output.at_eof:
                poller.register(output.pipe_fd, select.POLLIN)
            while not self._exited():
                if self.cancelled:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                step = 0.01 if pidfd is None else left
                ready = poller.poll(None if step is None else max(0, int(step * 1000)) + 1)
                if output is not None and any(fd == output.pipe_fd for fd, _ in ready):
                    output.pump()
                    if output.at_eof:
                        poller.unregister(output.pipe_fd)
            return True
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _exited(self) -> bool:
        if self.process.returncode is not None:
            return True
        try:
            found = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return found is not None

    def finish(self, output: OutputPump | None = None) -> int:
        """After the first process exited: stop what it left in its group; reap it; return its exit code.

        ``output`` is copied while the leftovers stop (one writing as it stops must not block on a full pipe).
        """
        self._signal_group(signal.SIGTERM)  # the leader is a zombie: the group id is still ours
        code = self.process.wait()
        deadline = time.monotonic() + LEFTOVER_GRACE
        while self._group_alive() and time.monotonic() < deadline:
            if output is None:
                time.sleep(0.01)
            else:
                output.pump_for(0.01)
        self._signal_group(signal.SIGKILL)
        return code

    def stop(self) -> None:
        """Stop the whole group: SIGTERM, SIGKILL after :data:`STOP_GRACE` seconds; reap the first process."""
        self._signal_group(signal.SIGCONT)
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE)
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def stop_escaped(self) -> int:
        """Stop processes of this command that left its group (``setsid``) but carry its tag; return how many."""
        return stop_tagged(self.tag, grace=STOP_GRACE)

    def cancel(self) -> None:
        """Mark the command cancelled and send its group SIGTERM; the waiting thread does the rest."""
        self.cancelled = True
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def close(self) -> None:
        """Forget the command (after it was reaped); make sure nothing of its group runs."""
        if self.process.returncode is None:
            self.stop()
        with _registry_lock:  # cancel_all writes to the wake pipe under this lock: never after it is closed
            _running.discard(self)
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def cancel_all() -> int:
    """Cancel every running :class:`GroupProcess` and refuse new ones; return how many were running."""
    with _registry_lock:
        _cancelled.set()
        for group in _running:
            group.cancel()
        return len(_running)


def cancelling() -> bool:
    """Whether :func:`cancel_all` was called (and not reset): new commands must not start."""
    return _cancelled.is_set()


def reset_cancellation() -> None:
    """Allow commands to start again after :func:`cancel_all` (a process that keeps running flows)."""
    _cancelled.clear()


class OutputPump:
    """Copies a pipe to a log file and to ``on_output``, line by line; run by the thread that waits for the command.

    No thread of its own: :meth:`GroupProcess.wait_exit` calls :meth:`pump` whenever
    the pipe has data, and :meth:`finish` reads what is left. (A thread per step,
    started and joined in a busy flow process, cost more than the copying.)
    """

    def __init__(self, pipe_fd: int, log_path: Path, on_output: Callable[[str], None] | None) -> None:
        self.pipe_fd = pipe_fd
        self.on_output = on_output
        self.tail: list[str] = []
        self.at_eof = False
        self._log: BinaryIO | None = open(log_path, "ab")  # noqa: SIM115 -- closed by finish()
        self._pending = b""
        self._callback_failed = False
        self._finished = False
        self._poller = select.poll()  # for finish() and pump_for(): whether the pipe has data
        self._poller.register(pipe_fd, select.POLLIN)
        #: Why the log could not be written (disk full...): the output is still copied to the callback.
        self.log_error: OSError | None = None

    def pump(self) -> None:
        """Copy what the pipe holds now (call it when the pipe is readable); at EOF, the last piece too."""
        data = os.read(self.pipe_fd, 65536)
        if data:
            self._pending = self._emit_lines(self._pending + data)
            return
        self.at_eof = True
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def finish(self, grace: float) -> bool:
        """Copy until EOF for up to ``grace`` s, then only what is already there (a process outside the group may
        hold the pipe); close the log. Returns whether EOF was reached. Once finished, it only says so again.
        """
        if self._finished:
            return self.at_eof
        self._finished = True
        try:
            poller = self._poller
            deadline = time.monotonic() + grace
            while not self.at_eof:
                left = deadline - time.monotonic()
                if left <= 0 or not poller.poll(int(left * 1000) + 1):
                    break  # never past the grace: a writer outside the group may never stop
                self.pump()
            for _ in range(_READS_AFTER_GRACE):
                if self.at_eof or not poller.poll(0):
                    break
                self.pump()
            if self._pending:
                self._emit(self._pending)
                self._pending = b""
        finally:
            self._close_log()
        return self.at_eof

    def pump_for(self, seconds: float) -> None:
        """Copy what arrives during ``seconds`` (instead of sleeping them: a stopping process may still write)."""
        if self._finished or self.at_eof:
            time.sleep(seconds)
            return
        if self._poller.poll(int(seconds * 1000) + 1):
            self.pump()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def _emit_lines(self, data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._emit(line + b"\n")
        while len(rest) > MAX_LINE:
            self._emit(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        return rest

    def _emit(self, raw: bytes) -> None:
        if self._log is not None:
            try:
                self._log.write(raw)
                self._log.flush()
            except OSError as error:
                self.log_error = error
                self._close_log()
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        self.tail.append(line)
        if len(self.tail) > 200:
            del self.tail[:100]
        if self.on_output is not None and not self._callback_failed:
            try:
                self.on_output(line)
            except Exception as error:  # a logging problem must not fail the analysis
                self._callback_failed = True
                if self._log is not None:
                    with contextlib.suppress(OSError):
                        self._log.write(f"[mltoolkit] output callback failed, no longer called: {error!r}\n".encode())
