"""jq programs run in a helper process, with a time limit and a memory limit.

jq is a complete programming language: ``[repeat(.)]`` or ``last(range(1e12))``
in a spec never ends, and the jq library runs it in C, where no Python thread or
signal can stop it. So programs run in a small helper process (one per process
that uses jq, started on first use and reused): the caller waits at most
:data:`~mltoolkit.limits.JQ_SECONDS` for the answer and kills the helper when it
does not come; the helper's address space is capped at
:data:`~mltoolkit.limits.JQ_MEMORY_MB`, so a program that builds an endless list
fails fast instead of taking the machine's memory. A killed helper is replaced
on the next call.

The helper talks over a socket pair (the wire format of
:mod:`mltoolkit.processes.zygote_wire`) and leaves when the caller's end closes,
which the kernel does when the caller exits, however it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from mltoolkit.errors import HelperProcessError, JqProgramError
from mltoolkit.limits import JQ_MEMORY_MB, JQ_SECONDS
from mltoolkit.processes.zygote_wire import recv_message, send_message

__all__ = ["run_jq_bounded"]


class _Helper:
    """The helper process and the caller's end of its socket."""

    def __init__(self, memory_mb: float) -> None:
        self.memory_mb = memory_mb
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mltoolkit.processes.bounded_jq", str(theirs.fileno()), str(memory_mb)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # jq's own "cannot allocate memory" before it aborts
                start_new_session=True,  # a Ctrl-C in the terminal is for the command, not for it
            )
        finally:
            theirs.close()
        self.socket = ours
        try:  # it says when it is ready, so its start-up is not counted against a program
            ours.settimeout(_START_TIMEOUT)
            recv_message(ours)
        except (TimeoutError, EOFError, OSError):
            self.stop()
            raise HelperProcessError(
                f"the jq helper process did not start (exit code {self.process.returncode}); "
                "check that the jq package is installed: pip install jq"
            ) from None

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The helper's reply, or ``None`` when it did not answer in time (killed) or died."""
        try:
            self.socket.settimeout(timeout)
            send_message(self.socket, request)
            reply, _ = recv_message(self.socket)
        except TimeoutError:
            self.stop()
            return None
        except (EOFError, OSError):  # it died by itself (jq aborts when memory runs out)
            self.stop(grace=5.0)
            return None
        return reply

    def stop(self, grace: float = 0.0) -> None:
        """Close the socket (the helper leaves when it sees that) and make sure it is gone."""
        with contextlib.suppress(OSError):
            self.socket.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()


#: Seconds a new helper may take to start (import jq).
_START_TIMEOUT = 60.0

_lock = threading.Lock()
_helper: _Helper | None = None


def _forget_helper_in_child() -> None:
    # A forked child must not share the parent's conversation with the helper.
    global _helper, _lock
    _helper = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_helper_in_child)


def run_jq_bounded(program: str, value: Any, *, multiple: bool = False) -> Any:
    """Run ``program`` on ``value`` in the helper: its first output (``None`` if none), or all with ``multiple``.

    Raises:
        JqProgramError: the program does not compile or fails on ``value``.
        LimitExceededError: it ran longer than ``MLTOOLKIT_JQ_TIMEOUT`` seconds or used more than
            ``MLTOOLKIT_JQ_MEMORY_MB``; it was stopped. (A ``ValueError`` too.)
        HelperProcessError: the helper process did not start.
        TypeError: ``value`` is not JSON data.
    """
    global _helper
    text = json.dumps(value)
    seconds, memory_mb = JQ_SECONDS.value(), JQ_MEMORY_MB.value()
    request = {"program": program, "text": text, "multiple": multiple}
    where = f"jq program {' '.join(program.split())[:80]!r}"
    with _lock:
        if _helper is None or _helper.memory_mb != memory_mb or _helper.process.poll() is not None:
            if _helper is not None:
                _helper.stop()
            _helper = _Helper(memory_mb)
        helper = _helper
        reply = helper.ask(request, seconds)
        if reply is None or reply.get("memory"):
            _helper = None
            helper.stop()
            if reply is None and helper.process.returncode == -signal.SIGKILL:  # we stopped it
                raise JQ_SECONDS.exceeded(where, None, "it was stopped", seconds)
            raise JQ_MEMORY_MB.exceeded(where, None, "it was stopped", memory_mb)
    if "error" in reply:
        raise JqProgramError(reply["error"], compiling=reply.get("compiling", False))
    return reply["value"]


# --- the helper ----------------------------------------------------------------------------


def _serve(fd: int, memory_mb: float) -> None:
    import resource

    import jq

    limit = int(memory_mb * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    compiled: dict[str, Any] = {}
    connection = socket.socket(fileno=fd)
    send_message(connection, {"ready": True})
    while True:
        try:
            request, _ = recv_message(connection)
        except (EOFError, OSError):
            return  # the caller is gone
        program = request["program"]
        try:
            if program not in compiled:
                if len(compiled) > 512:
                    compiled.clear()
                compiled[program] = jq.compile(program)
        except ValueError as error:
            send_message(connection, {"error": " ".join(str(error).split()), "compiling": True})
            continue
        except MemoryError:
            send_message(connection, {"memory": True})
            continue
        try:
            runner = compiled[program].input_text(request["text"])
            reply: dict[str, Any] = {"value": runner.all() if request["multiple"] else runner.first()}
        except StopIteration:
            reply = {"value": None}
        except ValueError as error:
            reply = {"error": " ".join(str(error).split()), "compiling": False}
        except MemoryError:
            reply = {"memory": True}
        send_message(connection, reply)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        _serve(int(sys.argv[1]), float(sys.argv[2]))
