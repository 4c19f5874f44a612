"""A helper that stops every step process of a command when the command dies, however it dies.

A step runs in its own session, so that a timeout or an interrupt can kill its
whole process group. The same detachment means a command killed with SIGKILL
(or ending any other way without stopping its steps) would leave them running,
writing into a work directory that the next run has already locked.
``PR_SET_PDEATHSIG`` only reaches a step's first process, and only while the
*thread* that started it lives; the shell's children would survive anyway.

So each command that starts steps also starts one small *warden* process
(standard library only, its own session). The command keeps the write end of
a pipe whose read end is the warden's stdin; the kernel closes it when the
command exits, for any reason, and the warden then stops every process whose
environment carries the command's token (:data:`OWNER_VARIABLE`, set by
:func:`step_environment` for each step and inherited by everything a step
starts): SIGTERM to each such process and to the process groups they lead,
SIGKILL to whatever is left after a grace period, again until none is left.

Worker processes of the command (Prefect's process pool, a local Dask cluster)
inherit its token (:data:`RUN_TOKEN_VARIABLE`) and tag their steps with
``<token>.<worker pid>``: the command's warden, and :func:`stop_run`, reach their
steps too, while a worker's own warden stops only the steps of that worker. A
step's processes never pass the token on as a token to reuse: a toolkit command
run inside a step starts a run of its own.

Limits: Linux (``/proc``); a process that clears its environment, or one in a
container (the docker helper stops those), is not found.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

__all__ = [
    "OWNER_VARIABLE",
    "RUN_TOKEN_VARIABLE",
    "find_tagged",
    "start_warden",
    "step_environment",
    "stop_run",
    "stop_tagged",
]

#: Environment variable that tags a step's processes: ``<owner token>.<step number>``.
OWNER_VARIABLE = "MLTOOLKIT_STEP_OWNER"
#: Environment variable through which a command's worker processes inherit its token.
RUN_TOKEN_VARIABLE = "MLTOOLKIT_RUN_TOKEN"

_GRACE = 2.0


def find_tagged(prefix: str) -> list[int]:
    """Pids of live processes whose :data:`OWNER_VARIABLE` is ``prefix`` or starts with ``prefix + "."``."""
    wanted = (f"{OWNER_VARIABLE}={prefix}".encode(), f"{OWNER_VARIABLE}={prefix}.".encode())
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as file:
                variables = file.read().split(b"\0")
        except OSError:  # gone, a zombie, or another user's
            continue
        if any(item == wanted[0] or item.startswith(wanted[1]) for item in variables):
            found.append(int(name))
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pid:  # it leads a group (a step's session): take the group too
                os.killpg(pid, signum)
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def stop_tagged(prefix: str, grace: float = _GRACE) -> int:
    """Stop every process tagged ``prefix`` (see :func:`find_tagged`); return how many were found.

    SIGTERM first, SIGKILL after ``grace`` seconds; repeated while new ones appear
    (a process may fork while it is being stopped).
    """
    stopped = 0
    for _round in range(20):
        pids = find_tagged(prefix)
        if not pids:
            break
        stopped += len(pids)
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and find_tagged(prefix):
            time.sleep(0.05)
        _signal_all(find_tagged(prefix), signal.SIGKILL)
    return stopped


# --- the command's side ------------------------------------------------------------------


class _Warden:
    """The warden process of this process, its token and the pipe that ties it to us."""

    def __init__(self) -> None:
        inherited = os.environ.get(RUN_TOKEN_VARIABLE) if OWNER_VARIABLE not in os.environ else None
        self.token = f"{inherited}.{os.getpid()}" if inherited else secrets.token_hex(8)
        #: The token whose processes :func:`stop_run` stops: the whole command's.
        self.run_token = inherited or self.token
        os.environ[RUN_TOKEN_VARIABLE] = self.run_token  # for worker processes started from now on
        read_end, self.write_end = os.pipe()  # not inheritable: no other child holds it
        try:
            environment = {
                key: value for key, value in os.environ.items() if key not in (OWNER_VARIABLE, RUN_TOKEN_VARIABLE)
            }
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), self.token],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=environment,  # untagged, so an outer warden leaves it to do its work
                start_new_session=True,  # Ctrl-C in the terminal is not for it
            )
        except BaseException:
            os.close(self.write_end)
            raise
        finally:
            os.close(read_end)
        self.steps = itertools.count()


_lock = threading.Lock()
_warden: _Warden | None = None


def _warden_here() -> _Warden:
    global _warden
    with _lock:
        if _warden is None or _warden.process.poll() is not None:
            _warden = _Warden()
        return _warden


def _forget_in_child() -> None:
    # A forked child is a process of its own: its steps get a warden of their own.
    global _warden, _lock
    if _warden is not None:
        with contextlib.suppress(OSError):
            os.close(_warden.write_end)
    _warden = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def start_warden() -> None:
    """Start this process's warden now (once), so worker processes started later share its run token."""
    _warden_here()


def step_environment(environment: dict[str, str]) -> dict[str, str]:
    """``environment`` plus this process's step tag (a new number per step); starts the warden once.

    Every process started with it is stopped by the warden when this process exits.
    """
    warden = _warden_here()
    return {
        **{key: value for key, value in environment.items() if key != RUN_TOKEN_VARIABLE},
        OWNER_VARIABLE: f"{warden.token}.{next(warden.steps)}",
    }


def stop_run(grace: float = _GRACE) -> int:
    """Stop every step process of this command, its worker processes' included; return how many.

    Nothing when this process has started no warden (it started no step).
    """
    warden = _warden
    return 0 if warden is None else stop_tagged(warden.run_token, grace)


# --- the warden ------------------------------------------------------------------------------


def _watch(token: str) -> None:
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while os.read(0, 4096):  # nothing is ever written: this returns when the owner is gone
            pass
    stop_tagged(token)


if __name__ == "__main__":
    _watch(sys.argv[1])
