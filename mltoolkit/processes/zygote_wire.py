"""The zygote's wire protocol and its ``python`` shim client (standard library only).

A message is a pickled value behind an 8-byte length; up to three file
descriptors (a script's stdin, stdout, stderr) travel with the length header.
Requests are dicts with a ``kind`` (``"call"``, ``"script"`` or ``"main"``: a
function run as a process's main program); the child first answers ``{"pid": ...}``
(for a script or main also ``"warm"``: whether it runs it), then its result;
when it has ended, the zygote sends ``{"status": WAIT_STATUS}``.

This file also runs as a script, ``python -I -S zygote_wire.py SOCKET ARGV...``:
that is what the ``python`` shim on a step's ``PATH`` executes (see
:func:`mltoolkit.processes.zygote.write_python_shim`). Isolated and without
``site``, it can import nothing but the standard library, so failures are the
built-in :class:`ConnectionError` and :class:`EOFError`; :mod:`mltoolkit.processes.zygote`
turns them into :class:`~mltoolkit.errors.ZygoteError` for the rest of the toolkit.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import struct
import sys
from typing import Any

__all__ = ["recv_message", "run_script_via_zygote", "run_with_callers_stdio", "send_message", "shim_main"]

_LENGTH = struct.Struct("!Q")
_MAX_FDS = 3


def send_message(sock: socket.socket, value: Any, fds: list[int] | None = None) -> None:
    """Send ``value`` (pickled) and, with the header, the file descriptors ``fds``.

    Raises:
        ConnectionError: the header could not be written in one piece.
    """
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    frame = _LENGTH.pack(len(payload)) + payload
    if fds:
        sent = socket.send_fds(sock, [frame[: _LENGTH.size]], fds)
        if sent != _LENGTH.size:
            raise ConnectionError("short write on the zygote socket")
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


def recv_message(sock: socket.socket, with_fds: bool = False) -> tuple[Any, list[int]]:
    """Receive one message and the file descriptors sent with it.

    Raises:
        EOFError: the other side closed the connection.
    """
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


def _end_like(status: int) -> int:
    """The exit code for a child's wait status; a child killed by a signal: this process too."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # a signal that does not end a process
    return code


def run_with_callers_stdio(socket_path: str, request: dict[str, Any]) -> int | None:
    """Send ``request`` with this process's stdio, cwd, environment and umask; wait for the child's end.

    ``request`` is a ``"script"`` or ``"main"`` request without those fields.
    Returns the child's exit code (a child killed by a signal kills this process
    with it), or ``None`` when the zygote cannot run it exactly as a fresh
    interpreter would (see :mod:`mltoolkit.processes.warm_script`): run it here
    then. Signals this process receives (SIGTERM, SIGINT, SIGHUP) are forwarded to
    the child's process group.

    Raises:
        ConnectionError: the zygote is not reachable or closed the connection at once.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as error:
        sock.close()
        raise ConnectionError(f"cannot reach the zygote at {socket_path}: {error}") from None
    umask = os.umask(0o022)
    os.umask(umask)
    full_request = {**request, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}
    send_message(sock, full_request, fds=[0, 1, 2])
    try:
        started = recv_message(sock)[0]
    except EOFError:
        raise ConnectionError("the zygote closed the connection") from None
    if not started.get("warm", True):
        sock.close()
        return None
    child_pid = started["pid"]

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child_pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        reply, _ = recv_message(sock)
    except EOFError:
        return 1  # the zygote is gone (its children die with it)
    finally:
        sock.close()
    return _end_like(int(reply["status"]))


def run_script_via_zygote(socket_path: str, argv: list[str]) -> int | None:
    """Run ``python *argv`` in a zygote child with this process's stdio, cwd, environment and umask.

    Returns the script's exit code, or ``None`` when it must run in the real
    interpreter (see :func:`run_with_callers_stdio`).

    Raises:
        ConnectionError: the zygote is not reachable or closed the connection at once.
    """
    return run_with_callers_stdio(socket_path, {"kind": "script", "argv": argv})


def shim_main(socket_path: str, argv: list[str]) -> None:
    """``python ARGV...`` for a step: a ``*.py`` script runs warm, anything else in the real interpreter."""
    warm = bool(argv) and not argv[0].startswith("-") and argv[0].endswith(".py") and os.path.isfile(argv[0])
    if warm:
        with contextlib.suppress(ConnectionError):
            code = run_script_via_zygote(socket_path, argv)
            if code is not None:
                sys.exit(code)
    os.execv(sys.executable, [sys.executable, *argv])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: zygote_wire.py SOCKET [SCRIPT ARG...]", file=sys.stderr)
        sys.exit(2)
    shim_main(sys.argv[1], sys.argv[2:])
