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
import pickle
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
from mltoolkit.processes.lifeline import PARENT_PID_VARIABLE, die_with_parent, set_parent_death_signal, stop_child
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
    """Accept connections on a Unix socket; fork one child per connection."""

    def __init__(self, socket_path: str, preload: list[str]) -> None:
        self.socket_path = socket_path
        self.preload = preload
        self._children: set[int] = set()

    def serve_forever(self) -> None:
        """Bind, import the preload modules, then fork a child per request until terminated."""
        signal.signal(signal.SIGTERM, self._exit_on_signal)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            # Listening before the imports lets callers connect at once; their
            # requests wait in the backlog until the imports are done.
            listener.listen(64)
            for module in self.preload:
                importlib.import_module(module)
            # Children share the imported modules' memory copy-on-write; a garbage
            # collection in a child would touch (and so copy) every object.
            gc.collect()
            gc.freeze()
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGCHLD, self._reap_children)
            while True:
                connection, _ = listener.accept()  # blocks: an idle zygote uses no CPU
                self._fork_child(listener, connection)
        finally:
            self._kill_children()
            self._remove_socket()

    def _fork_child(self, listener: socket.socket, connection: socket.socket) -> None:
        # SIGCHLD waits until the pid is recorded, so a child that ends at once is
        # reaped after it is added, never left in the set (and later killed by pid)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        pid = os.fork()
        if pid:
            self._children.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            connection.close()
            return
        code = 0
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            set_parent_death_signal(signal.SIGKILL)  # forked by the main thread: dies with the zygote
            listener.close()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            _serve_child(connection)
        except BaseException:  # the child must never return into the accept loop
            code = 1
        finally:
            os._exit(code)

    def _reap_children(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._children.discard(pid)

    def _kill_children(self) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in list(self._children):
            # a call child leads its own process group: take whatever it started too
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)

    def _exit_on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Exit here rather than raise: a SIGTERM may land inside the preload imports,
        # where an exception could be reported on the caller's stderr. Once: a parent
        # with several threads may deliver its death signal more than once.
        signal.signal(signum, signal.SIG_IGN)
        self._kill_children()
        self._remove_socket()
        os._exit(128 + signum)

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.socket_path))


def _exit_when_caller_leaves(connection: socket.socket, own_group: bool) -> None:
    def watch() -> None:
        try:
            while connection.recv(1):
                pass
        except OSError:
            pass
        if own_group:  # take whatever the call started with it
            with contextlib.suppress(OSError):
                os.killpg(0, signal.SIGKILL)
        os._exit(143)

    threading.Thread(target=watch, daemon=True).start()


def _serve_child(connection: socket.socket) -> None:
    request, fds = recv_message(connection, with_fds=True)
    kind = request.get("kind")
    if kind == "call":
        _run_call_child(connection, request)
    elif kind == "script":
        _run_script_child(connection, request, fds)
    else:
        send_message(connection, {"ok": False, "error": ZygoteError(f"unknown request {kind!r}")})


def _run_call_child(connection: socket.socket, request: dict) -> None:
    # its own process group, so a timeout kills whatever the call started too
    os.setpgid(0, 0)
    send_message(connection, {"pid": os.getpid()})
    _exit_when_caller_leaves(connection, own_group=True)
    try:
        module_name, _, qualname = request["function"].partition(":")
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        reply = {"ok": True, "value": target(*request["args"], **request["kwargs"])}
    except BaseException as error:  # sent back and re-raised in the caller
        reply = {"ok": False, "error": error, "traceback": traceback.format_exc()}
    try:
        send_message(connection, reply)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        problem = ZygoteError(f"result of {request['function']} cannot be pickled: {error}")
        send_message(connection, {"ok": False, "error": problem, "traceback": ""})


def _run_script_child(connection: socket.socket, request: dict, fds: list[int]) -> None:
    for target_fd, source_fd in zip((0, 1, 2), fds):
        os.dup2(source_fd, target_fd)
        os.close(source_fd)
    if request.get("new_group"):
        os.setpgid(0, 0)
    send_message(connection, {"pid": os.getpid()})
    _exit_when_caller_leaves(connection, own_group=bool(request.get("new_group")))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    script = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path[0:0] = [os.path.dirname(os.path.abspath(script))]
    code: int = 0
    try:
        import runpy

        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
    send_message(connection, {"exit_code": code})


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
        if reply["ok"]:
            return reply["value"]
        raise reply["error"]


def run_script_via_zygote(socket_path: str, argv: list[str]) -> int:
    """Run ``python *argv`` in a zygote child with this process's stdio, cwd and environment.

    Returns the script's exit code (see :func:`mltoolkit.processes.zygote_wire.run_script_via_zygote`).

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

    def __init__(self, process: subprocess.Popen, socket_path: str, folder: str) -> None:
        self.process = process
        self.socket_path = socket_path
        self.folder = folder

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


def start_zygote(preload: list[str], environment: Mapping[str, str] | None = None) -> RunningZygote:
    """Start a zygote server subprocess that preloads ``preload``; returns at once.

    ``environment`` adds variables to the zygote's (and so every child's) environment.

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
        env={**os.environ, **(environment or {}), PARENT_PID_VARIABLE: str(os.getpid())},
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(socket_path):
        if process.poll() is not None:
            raise ZygoteError(f"the zygote exited with code {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            raise ZygoteError("the zygote did not create its socket within 30 s")
        time.sleep(0.002)
    return RunningZygote(process, socket_path, folder)


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
