"""The record of a kept API server, and private files in ``PREFECT_HOME``.

A kept server outlives its command on a machine others may share (a login
node), so what lets a client in -- the server's port and its API auth secret --
lives in a file only its owner can read: ``PREFECT_HOME/mltoolkit-api-server.json``,
mode 0600, in a folder created 0700. The server's log is 0600 too.

This module must not import Prefect.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "STATE_FILE_NAME",
    "ServerRecord",
    "make_private_folder",
    "new_auth_string",
    "open_private_log",
    "read_record",
    "remove_record",
    "write_record",
]

STATE_FILE_NAME = "mltoolkit-api-server.json"
_FILE_MODE = 0o600
_FOLDER_MODE = 0o700


@dataclass(frozen=True)
class ServerRecord:
    """What a later command needs to reuse a kept server."""

    port: int
    pid: int
    prefect_version: str
    started: float  # time.time() when it was launched
    idle_timeout: float  # seconds
    auth_string: str  # PREFECT_SERVER_API_AUTH_STRING of the server

    @property
    def api_url(self) -> str:
        """The server's ``PREFECT_API_URL``."""
        return f"http://127.0.0.1:{self.port}/api"


def new_auth_string() -> str:
    """A fresh ``user:password`` secret for Prefect's basic API auth."""
    return f"mltoolkit:{secrets.token_urlsafe(32)}"


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) readable by its owner only; leave an existing one as it is."""
    if not folder.is_dir():
        folder.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)


def open_private_log(path: Path) -> int:
    """Open ``path`` for appending, created 0600 (an existing file is made 0600); return the descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _FILE_MODE)
    os.fchmod(fd, _FILE_MODE)
    return fd


def read_record(path: Path) -> ServerRecord | None:
    """The record in ``path``, or None if it is missing, unreadable or not a record."""
    try:
        data = json.loads(path.read_text())
        return ServerRecord(
            port=int(data["port"]),
            pid=int(data["pid"]),
            prefect_version=str(data["prefect_version"]),
            started=float(data["started"]),
            idle_timeout=float(data["idle_timeout"]),
            auth_string=str(data["auth_string"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(path: Path, record: ServerRecord) -> None:
    """Write ``record`` to ``path`` atomically, mode 0600 from the first byte."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(record), handle)
    os.replace(temporary, path)


def remove_record(path: Path, pid: int | None = None) -> None:
    """Remove the record in ``path`` (only if it names ``pid``, when given)."""
    if pid is not None:
        record = read_record(path)
        if record is None or record.pid != pid:
            return
    with contextlib.suppress(OSError):
        path.unlink()
