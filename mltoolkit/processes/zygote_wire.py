"""The zygote's wire protocol and its ``python`` shim client (standard library only).

A message is a pickled value behind an 8-byte length; up to three file
descriptors (a script's stdin, stdout, stderr) travel with the length header.
Requests are dicts with a ``kind`` (``"call"`` or ``"script"``); the child first
answers ``{"pid": ...}``, then its result.

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

__all__ = ["recv_message", "run_script_via_zygote", "send_message", "shim_main"]

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


def run_script_via_zygote(socket_path: str, argv: list[str]) -> int:
    """Run ``python *argv`` in a zygote child with this process's stdio, cwd and environment.

    Returns the script's exit code. Signals this process receives (SIGTERM,
    SIGINT, SIGHUP) are forwarded to the child.

    Raises:
        ConnectionError: the zygote is not reachable or closed the connection at once.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as error:
        sock.close()
        raise ConnectionError(f"cannot reach the zygote at {socket_path}: {error}") from None
    request = {"kind": "script", "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    send_message(sock, request, fds=[0, 1, 2])
    try:
        child_pid = recv_message(sock)[0]["pid"]
    except EOFError:
        raise ConnectionError("the zygote closed the connection") from None

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        reply, _ = recv_message(sock)
    except EOFError:
        return 1  # killed: the child died without reporting an exit code
    finally:
        sock.close()
    return int(reply["exit_code"])


def shim_main(socket_path: str, argv: list[str]) -> None:
    """``python ARGV...`` for a step: a ``*.py`` script runs warm, anything else in the real interpreter."""
    warm = bool(argv) and not argv[0].startswith("-") and argv[0].endswith(".py") and os.path.isfile(argv[0])
    if warm:
        with contextlib.suppress(ConnectionError):
            sys.exit(run_script_via_zygote(socket_path, argv))
    os.execv(sys.executable, [sys.executable, *argv])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: zygote_wire.py SOCKET [SCRIPT ARG...]", file=sys.stderr)
        sys.exit(2)
    shim_main(sys.argv[1], sys.argv[2:])
