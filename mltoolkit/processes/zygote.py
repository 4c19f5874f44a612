"""A warm Python process that forks a fresh child for each piece of work.

Importing scikit-learn and matplotlib costs ~1.3 s, more than the seed's whole
analysis. The *zygote* imports them once and then forks a child per request, so
each step starts in a few milliseconds with everything already imported (the
idea of ``multiprocessing``'s fork server, over a plain Unix socket so it works
for any caller, including shell scripts).

Two kinds of request:

* **call** -- run ``module:function(*args, **kwargs)`` in a child and return the
  pickled result (or re-raise its exception in the caller): :class:`ZygoteClient`.
* **script** -- run ``python SCRIPT ARGS...`` in a child with the caller's stdin,
  stdout, stderr (passed over the socket), working directory and environment,
  and return its exit code. A ``python`` shim on ``PATH`` (:func:`write_python_shim`)
  sends such commands here, so step scripts such as the seed's
  ``python /fun_with_ml/classification.py ...`` start warm; anything the zygote
  cannot run exactly like a fresh interpreter falls back to the real one.

The server's children are killed when their caller goes away. This file only
uses the standard library: the shim runs it as a script with ``python -I -S``.
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
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "ZygoteClient",
    "ZygoteError",
    "ZygoteServer",
    "ZygoteTimeout",
    "run_script_via_zygote",
    "start_zygote",
    "write_python_shim",
]

_LENGTH = struct.Struct("!Q")
_MAX_FDS = 3


class ZygoteError(RuntimeError):
    """The zygote cannot be reached or a child died without answering."""


class ZygoteTimeout(ZygoteError, TimeoutError):
    """A call ran longer than its timeout; its process group was killed."""


# --- framing ---------------------------------------------------------------------------


def _send_message(sock: socket.socket, value: Any, fds: list[int] | None = None) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    frame = _LENGTH.pack(len(payload)) + payload
    if fds:
        sent = socket.send_fds(sock, [frame[: _LENGTH.size]], fds)
        if sent != _LENGTH.size:
            raise ZygoteError("short write on the zygote socket")
        sock.sendall(frame[_LENGTH.size :])
    else:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise EOFError("zygote connection closed")
        chunks.extend(chunk)
    return bytes(chunks)


def _recv_message(sock: socket.socket, with_fds: bool = False) -> tuple[Any, list[int]]:
    fds: list[int] = []
    if with_fds:
        header, fds, _flags, _address = socket.recv_fds(sock, _LENGTH.size, _MAX_FDS)
        if not header:
            raise EOFError("zygote connection closed")
        if len(header) < _LENGTH.size:
            header += _recv_exact(sock, _LENGTH.size - len(header))
    else:
        header = _recv_exact(sock, _LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    return pickle.loads(_recv_exact(sock, length)), fds


# --- server ------------------------------------------------------------------------------


class ZygoteServer:
    """Accept connections on a Unix socket; fork one child per connection."""

    def __init__(self, socket_path: str, preload: list[str]) -> None:
        self.socket_path = socket_path
        self.preload = preload

    def serve_forever(self) -> None:
        """Bind, import the preload modules, then fork a child per request until killed."""
        parent = os.getppid()  # before the slow imports: the starter may die during them
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        listener.settimeout(1.0)
        while True:
            self._reap_children()
            if os.getppid() != parent:
                # Our starter died without stopping us (e.g. SIGKILL): nobody ever
                # will, so leave instead of idling forever as an orphan.
                self._remove_socket()
                return
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = 0
                try:
                    _serve_child(connection)
                except BaseException:  # the child must never return into the accept loop
                    code = 1
                finally:
                    os._exit(code)
            connection.close()

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.socket_path))

    @staticmethod
    def _reap_children() -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def _exit_when_caller_leaves(connection: socket.socket) -> None:
    def watch() -> None:
        try:
            while connection.recv(1):
                pass
        except OSError:
            pass
        os._exit(143)

    threading.Thread(target=watch, daemon=True).start()


def _serve_child(connection: socket.socket) -> None:
    request, fds = _recv_message(connection, with_fds=True)
    kind = request.get("kind")
    if kind == "call":
        # its own process group, so a timeout kills whatever the call started too
        os.setpgid(0, 0)
        _send_message(connection, {"pid": os.getpid()})
        _exit_when_caller_leaves(connection)
        try:
            module_name, _, qualname = request["function"].partition(":")
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
            reply = {"ok": True, "value": target(*request["args"], **request["kwargs"])}
        except BaseException as error:  # sent back and re-raised in the caller
            reply = {"ok": False, "error": error, "traceback": traceback.format_exc()}
        try:
            _send_message(connection, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            _send_message(
                connection,
                {
                    "ok": False,
                    "error": ZygoteError(f"result of {request['function']} cannot be pickled: {error}"),
                    "traceback": "",
                },
            )
    elif kind == "script":
        _run_script_child(connection, request, fds)
    else:
        _send_message(connection, {"ok": False, "error": ZygoteError(f"unknown request {kind!r}")})


def _run_script_child(connection: socket.socket, request: dict, fds: list[int]) -> None:
    for target_fd, source_fd in zip((0, 1, 2), fds):
        os.dup2(source_fd, target_fd)
        os.close(source_fd)
    os.setpgid(0, 0) if request.get("new_group") else None
    _send_message(connection, {"pid": os.getpid()})
    _exit_when_caller_leaves(connection)
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
    _send_message(connection, {"exit_code": code})


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
            ZygoteTimeout: the call did not finish in time.
        """
        if callable(function):
            name = f"{function.__module__}:{function.__qualname__}"
        else:
            name = function
        with self._slots, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(self.socket_path)
            except OSError as error:
                raise ZygoteError(f"cannot reach the zygote at {self.socket_path}: {error}") from None
            _send_message(sock, {"kind": "call", "function": name, "args": args, "kwargs": kwargs})
            child_pid = None
            try:
                child_pid = _recv_message(sock)[0]["pid"]
                sock.settimeout(timeout)
                reply, _ = _recv_message(sock)
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

    Returns the script's exit code. Signals this process receives (SIGTERM,
    SIGINT, SIGHUP) are forwarded to the child.

    Raises:
        ZygoteError: the zygote is not reachable.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as error:
        sock.close()
        raise ZygoteError(f"cannot reach the zygote at {socket_path}: {error}") from None
    request = {"kind": "script", "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    _send_message(sock, request, fds=[0, 1, 2])
    try:
        child_pid = _recv_message(sock)[0]["pid"]
    except EOFError:
        raise ZygoteError("the zygote closed the connection") from None

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        reply, _ = _recv_message(sock)
    except EOFError:
        return 1  # killed: the child died without reporting an exit code
    finally:
        sock.close()
    return int(reply["exit_code"])


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
        """Terminate the server and remove its socket."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)


def start_zygote(preload: list[str]) -> RunningZygote:
    """Start a zygote server subprocess that preloads ``preload``; returns at once.

    The socket accepts connections immediately; requests are served once the
    imports are done.
    """
    folder = tempfile.mkdtemp(prefix="mltk-zygote-")
    socket_path = os.path.join(folder, "socket")
    process = subprocess.Popen(
        [sys.executable, "-m", "mltoolkit.processes.zygote", "serve", socket_path, *preload],
        stdin=subprocess.DEVNULL,
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
    client = Path(__file__).resolve()
    for name in names:
        shim = folder / name
        shim.write_text(
            f'#!/bin/sh\nexec {shlex.join([sys.executable, "-I", "-S", str(client), "client", socket_path])} "$@"\n'
        )
        shim.chmod(0o755)
    return folder


def _client_main(socket_path: str, argv: list[str]) -> None:
    warm = bool(argv) and not argv[0].startswith("-") and argv[0].endswith(".py") and os.path.isfile(argv[0])
    if warm:
        try:
            sys.exit(run_script_via_zygote(socket_path, argv))
        except ZygoteError:
            pass
    os.execv(sys.executable, [sys.executable, *argv])


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        ZygoteServer(sys.argv[2], sys.argv[3:]).serve_forever()
    elif len(sys.argv) >= 3 and sys.argv[1] == "client":
        _client_main(sys.argv[2], sys.argv[3:])
    else:
        print("usage: zygote.py serve SOCKET [MODULE...] | client SOCKET SCRIPT [ARG...]", file=sys.stderr)
        sys.exit(2)
