"""Helper processes that die with the process that started them (and stopping them).

A command starts helpers (the Prefect API server when it is not kept, the warm
zygote and the zygote's children). If the command is killed -- SIGKILL, or a
SIGTERM while it is still importing, before any exit handler exists -- nothing
would stop them. Linux can: ``prctl(PR_SET_PDEATHSIG, signal)`` asks the kernel
to signal a process when its parent goes away.

The helper calls :func:`die_with_parent` itself, first thing (so the parent
needs no ``preexec_fn``, which is unsafe in a threaded parent). Two details:

* the kernel sends the signal when the parent *thread* that forked the helper
  exits, not only the parent process. Start tied helpers from a thread that
  lives as long as they should: the main thread (:func:`spawned_from_main_thread`
  tells), or the thread of the ``with`` block that owns them;
* the parent may already be gone before the helper runs ``prctl``, so the helper
  compares ``os.getppid()`` with the pid its parent passed it and leaves at once
  when they differ.

Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time

__all__ = [
    "PARENT_PID_VARIABLE",
    "ForkedChild",
    "die_with_parent",
    "set_parent_death_signal",
    "spawned_from_main_thread",
    "stop_child",
]

#: Environment variable through which a parent passes its pid to a tied helper.
PARENT_PID_VARIABLE = "MLTOOLKIT_PARENT_PID"

_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None


def _prctl() -> ctypes.CDLL | None:
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent thread exits.

    Returns whether the platform supports it (Linux). Call it in a freshly forked
    child too: the setting is not inherited across ``fork``.
    """
    libc = _prctl()
    if libc is None:
        return False
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
    return True


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM) -> None:
    """Tie this process to ``parent_pid``: receive ``signum`` when the parent goes away.

    If the parent is already gone (this process was re-parented before it could
    ask), the signal is sent at once.
    """
    set_parent_death_signal(signum)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def spawned_from_main_thread() -> bool:
    """Whether the calling thread is the main thread, whose exit is the process's exit."""
    return threading.current_thread() is threading.main_thread()


class ForkedChild:
    """A child made with ``os.fork``, with the part of ``subprocess.Popen``'s interface :func:`stop_child` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """Its exit code once it has ended (reaping it), else ``None``."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its code is unknown
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` unless it has ended."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for its end; its exit code.

        Raises:
            subprocess.TimeoutExpired: it has not ended within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), float(timeout or 0))
            time.sleep(0.005)
        return code


def stop_child(process: subprocess.Popen | ForkedChild, grace: float = 5.0) -> None:
    """Stop a child process: SIGTERM (resuming it if suspended), SIGKILL after ``grace`` seconds; reap it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGCONT)
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
