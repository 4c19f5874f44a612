"""A warm Python process that forks a fresh child for each piece of work.

Importing scikit-learn and matplotlib costs ~1.3 s, more than the seed's whole
analysis. The *zygote* imports them once and then forks a child per request, so
each step starts in a few milliseconds with everything already imported (the
idea of ``multiprocessing``'s fork server, over a plain Unix socket so it works
for any caller, including shell scripts).

Two kinds of request (wire format: :mod:`mltoolkit.processes.zygote_wire`):

* **call** -- run ``module:function(*args, **kwargs)`` in a child and return the
  pickled result (or re-raise its exception in the caller): :class:`ZygoteClient`.
* **script** -- run ``python SCRIPT ARGS...`` in a child with the caller's stdin,
  stdout, stderr (passed over the socket), working directory and environment,
  and return its exit code. A ``python`` shim on ``PATH`` (:func:`write_python_shim`)
  sends such commands here, so step scripts such as the seed's
  ``python /fun_with_ml/classification.py ...`` start warm; anything the zygote
  cannot run exactly like a fresh interpreter falls back to the real one.

Nothing outlives its owner: the zygote dies with the process that started it
(:mod:`mltoolkit.processes.lifeline`), its children die with the zygote and
with their caller's connection, and a stopped zygote kills its children's
process groups.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from mltoolkit.errors import ZygoteError, ZygoteTimeout
from mltoolkit.processes import zygote_wire
from mltoolkit.processes.lifeline import (
    PARENT_PID_VARIABLE,
    ForkedChild,
    die_with_parent,
    set_parent_death_signal,
    stop_child,
)
from mltoolkit.processes.warm_script import ZygoteBaseline
from mltoolkit.processes.zygote_child import serve_child
from mltoolkit.processes.zygote_wire import recv_message, send_message

__all__ = [
    "RunningZygote",
    "ZygoteClient",
    "ZygoteServer",
    "run_script_via_zygote",
    "start_zygote",
    "write_python_shim",
]


# --- server ------------------------------------------------------------------------------


class ZygoteServer:
    """Accept connections on a Unix socket; fork one child per connection.

    The server keeps each child's connection: when the caller closes it (the
    ``python`` shim was killed, a call timed out) the child's process group is
    killed, and when the child ends its exit status is sent on it (so a script's
    ``os._exit(5)`` reaches the shim as 5).
    """

    def __init__(self, socket_path: str, preload: list[str]) -> None:
        self.socket_path = socket_path
        self.preload = preload
        self._children: dict[int, socket.socket] = {}  # pid -> its caller's connection
        self.baseline = ZygoteBaseline()

    def serve_forever(self) -> None:
        """Bind, import the preload modules, then fork a child per request until terminated."""
        signal.signal(signal.SIGTERM, self._exit_on_signal)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wake_read, wake_write = os.pipe()
        try:
            # Listening before the imports lets callers connect at once; their
            # requests wait in the backlog until the imports are done. The socket
            # gets its name once it listens: a caller that sees it can connect.
            listener.bind(self.socket_path + ".new")
            listener.listen(64)
            os.rename(self.socket_path + ".new", self.socket_path)
            for module in self.preload:
                importlib.import_module(module)
            self.baseline.after_preload()
            # Children share the imported modules' memory copy-on-write; a garbage
            # collection in a child would touch (and so copy) every object.
            gc.collect()
            gc.freeze()
            sys.stdout.flush()
            sys.stderr.flush()
            os.set_blocking(wake_write, False)
            signal.set_wakeup_fd(wake_write)  # a SIGCHLD wakes the loop below
            signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
            self._loop(listener, wake_read)
        finally:
            self._kill_children()
            self._remove_socket()

    def _loop(self, listener: socket.socket, wake_read: int) -> None:
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        poller.register(wake_read, select.POLLIN)
        watched: dict[int, int] = {}  # connection fd -> child pid
        while True:
            events = poller.poll(self._poll_timeout_ms())  # blocks: an idle zygote uses no CPU
            if not events and self._should_stop():
                return
            for fd, _events in events:
                if fd == listener.fileno():
                    connection, _ = listener.accept()
                    if self._refused(connection):
                        poller.unregister(listener)
                        self._retire(listener)
                        continue
                    pid = self._fork_child(listener, connection, wake_read)
                    watched[connection.fileno()] = pid
                    # the caller closing its end, not data (the child reads the request)
                    poller.register(connection, select.POLLRDHUP)
                elif fd == wake_read:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)
                    for connection_fd in self._reap_children():
                        if watched.pop(connection_fd, None) is not None:
                            poller.unregister(connection_fd)
                elif fd in watched:
                    poller.unregister(fd)
                    _kill_group(watched.pop(fd))  # its caller is gone

    # Hooks of a zygote kept between commands (mltoolkit.processes.kept_zygote); this one
    # serves until terminated. _refused: the connection was told "run it elsewhere" (then
    # _retire: take no more requests; the running children finish).
    def _poll_timeout_ms(self) -> int | None:
        return None

    def _should_stop(self) -> bool:
        return False

    def _refused(self, connection: socket.socket) -> bool:
        return False

    def _retire(self, listener: socket.socket) -> None:
        pass

    def _fork_child(self, listener: socket.socket, connection: socket.socket, wake_read: int) -> int:
        pid = os.fork()
        if pid:
            with contextlib.suppress(OSError):  # also here: no race with the child's own call
                os.setpgid(pid, pid)
            self._children[pid] = connection
            return pid
        code = 0
        try:
            # its own process group, so a timeout or a killed caller takes whatever it started too
            os.setpgid(0, 0)
            set_parent_death_signal(signal.SIGKILL)  # forked by the main thread: dies with the zygote
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            for other in [listener, *self._children.values()]:
                other.close()
            os.close(wake_read)
            serve_child(connection, self.baseline)
        except BaseException:  # the child must never return into the accept loop
            code = 1
            with contextlib.suppress(Exception):
                traceback.print_exc()  # a fault of the zygote's own, on the caller's stderr when it has it
        finally:
            os._exit(code)

    def _reap_children(self) -> list[int]:
        """Reap ended children, send each one's exit status to its caller; return their connections' fds."""
        closed: list[int] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return closed
            if pid == 0:
                return closed
            connection = self._children.pop(pid, None)
            if connection is None:
                continue
            closed.append(connection.fileno())
            connection.setblocking(False)  # never wait for a caller that does not read
            with contextlib.suppress(OSError):
                send_message(connection, {"status": status})
            connection.close()

    def _kill_children(self) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in list(self._children):
            _kill_group(pid)

    def _exit_on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Exit here rather than raise: a SIGTERM may land inside the preload imports,
        # where an exception could be reported on the caller's stderr. Once: a parent
        # with several threads may deliver its death signal more than once.
        signal.signal(signum, signal.SIG_IGN)
        self._kill_children()
        self._remove_socket()
        os._exit(128 + signum)

    def _remove_socket(self) -> None:
        for path in (self.socket_path, self.socket_path + ".new"):
            with contextlib.suppress(OSError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.socket_path))


def _kill_group(pid: int) -> None:
    # a child leads its own process group: take whatever it started too
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


# --- clients -----------------------------------------------------------------------------


class ZygoteClient:
    """Run functions in forked children of a zygote server."""

    def __init__(self, socket_path: str, max_concurrency: int | None = None) -> None:
        self.socket_path = socket_path
        self._slots = threading.BoundedSemaphore(max_concurrency or os.cpu_count() or 1)

    def call(self, function: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """Run ``function(*args, **kwargs)`` in a fresh child; return its result or raise its error.

        ``function`` must be importable by module and qualified name.
        """
        return self.call_with_timeout(function, args, kwargs, None)

    def call_with_timeout(
        self, function: Callable[..., Any] | str, args: tuple, kwargs: dict, timeout: float | None
    ) -> Any:
        """Like :meth:`call`; after ``timeout`` seconds the child's process group is killed.

        Raises:
            ZygoteError: the zygote is not reachable or the child died without answering.
            ZygoteTimeout: the call did not finish in time.
        """
        name = f"{function.__module__}:{function.__qualname__}" if callable(function) else function
        with self._slots, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(self.socket_path)
            except OSError as error:
                raise ZygoteError(f"cannot reach the zygote at {self.socket_path}: {error}") from None
            send_message(sock, {"kind": "call", "function": name, "args": args, "kwargs": kwargs})
            child_pid = None
            try:
                child_pid = recv_message(sock)[0]["pid"]
                sock.settimeout(timeout)
                reply, _ = recv_message(sock)
            except EOFError:
                raise ZygoteError(f"the worker running {name} died without answering") from None
            except TimeoutError:
                if child_pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child_pid, signal.SIGKILL)
                raise ZygoteTimeout(f"{name} did not finish within {timeout:g} s; its processes were killed") from None
        if "status" in reply:  # the zygote's report of its end: it ended without answering
            code = os.waitstatus_to_exitcode(reply["status"])
            raise ZygoteError(f"the worker running {name} died without answering (exit code {code})")
        if reply["ok"]:
            return reply["value"]
        raise reply["error"]


def run_script_via_zygote(socket_path: str, argv: list[str]) -> int | None:
    """Run ``python *argv`` in a zygote child with this process's stdio, cwd and environment.

    Returns the script's exit code, or ``None`` when it must run in the real interpreter
    (see :func:`mltoolkit.processes.zygote_wire.run_script_via_zygote`).

    Raises:
        ZygoteError: the zygote is not reachable.
    """
    try:
        return zygote_wire.run_script_via_zygote(socket_path, argv)
    except ConnectionError as error:
        raise ZygoteError(str(error)) from None


# --- starting a server -------------------------------------------------------------------


class RunningZygote:
    """Handle on a zygote server subprocess."""

    def __init__(self, process: subprocess.Popen | ForkedChild, socket_path: str, folder: str) -> None:
        self.process = process
        self.socket_path = socket_path
        self.folder = folder

    @classmethod
    def when_listening(cls, process: subprocess.Popen | ForkedChild, socket_path: str, folder: str) -> RunningZygote:
        """The handle once ``process`` has created its socket; ZygoteError if it exits or takes over 30 s."""
        deadline = time.monotonic() + 30
        while not os.path.exists(socket_path):
            if process.poll() is not None:
                raise ZygoteError(f"the zygote exited with code {process.returncode}")
            if time.monotonic() > deadline:
                process.kill()
                raise ZygoteError("the zygote did not create its socket within 30 s")
            time.sleep(0.002)
        return cls(process, socket_path, folder)

    def client(self, max_concurrency: int | None = None) -> ZygoteClient:
        """A client for this server."""
        return ZygoteClient(self.socket_path, max_concurrency)

    def stop(self) -> None:
        """Terminate the server (its children die with it) and remove its socket."""
        stop_child(self.process)
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)


def start_zygote(preload: list[str], env: Mapping[str, str] | None = None) -> RunningZygote:
    """Start a zygote server subprocess that preloads ``preload``; returns at once.

    ``env`` (default: this process's environment) is the zygote's environment: a
    script runs warm only in an environment equal to it but for ``PATH`` and the
    shell's own variables (see :mod:`mltoolkit.processes.warm_script`).

    The zygote dies with the calling *thread* (see :mod:`mltoolkit.processes.lifeline`):
    call this from the thread that owns it, e.g. the main thread. The socket
    accepts connections immediately; requests are served once the imports are done.

    Raises:
        ZygoteError: the zygote exited or did not create its socket within 30 s.
    """
    folder = tempfile.mkdtemp(prefix="mltk-zygote-")
    socket_path = os.path.join(folder, "socket")
    process = subprocess.Popen(
        [sys.executable, "-m", "mltoolkit.processes.zygote", socket_path, *preload],
        stdin=subprocess.DEVNULL,
        env={**(os.environ if env is None else env), PARENT_PID_VARIABLE: str(os.getpid())},
        start_new_session=True,
    )
    return RunningZygote.when_listening(process, socket_path, folder)


def write_python_shim(
    folder: str | os.PathLike[str], socket_path: str, names: tuple[str, ...] = ("python", "python3")
) -> Path:
    """Write ``python``/``python3`` shims into ``folder`` that run scripts in the zygote.

    Put ``folder`` first on ``PATH`` for a step: ``python script.py args`` then
    runs warm; other invocations (``python -c``, options, no zygote) run the
    real interpreter, ``sys.executable``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    command = shlex.join([sys.executable, "-I", "-S", str(Path(zygote_wire.__file__).resolve()), socket_path])
    for name in names:
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    return folder


def _serve_main(argv: list[str]) -> None:
    parent = os.environ.pop(PARENT_PID_VARIABLE, None)
    if parent:
        # SIGTERM runs the server's clean-up (kill the children, remove the socket)
        die_with_parent(int(parent), signal.SIGTERM)
    ZygoteServer(argv[0], argv[1:]).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: python -m mltoolkit.processes.zygote SOCKET [MODULE...]", file=sys.stderr)
        sys.exit(2)
    _serve_main(sys.argv[1:])
