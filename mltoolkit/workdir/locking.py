"""One run per work directory: an advisory lock with a readable owner record.

The lock is the work directory's lock file (``WorkdirLayout.lock``): it is
``flock``-ed for the whole run and says who holds it (pid, host, start time,
command); nobody but its owner may write it. The kernel drops the
``flock`` when its holder dies, so a lock left by a killed run is recognised as
stale and taken over; a live holder makes a second run fail at once with a
message naming it. Nested acquisitions in one process (a command line, then the
flow it starts) share the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mltoolkit.errors import WorkdirLockedError
from mltoolkit.workdir.layout import LOCK_FILE, WorkdirLayout

__all__ = ["LOCK_FILE", "LockHolder", "lock_holder", "workdir_lock"]

_held: dict[str, tuple[int, int]] = {}  # resolved workdir -> (fd, depth)
_guard = threading.Lock()

#: The owner record a lock file holds: ``pid``, ``host``, ``started`` (epoch seconds), ``command``.
LockHolder = dict[str, Any]


def lock_holder(workdir: str | os.PathLike[str]) -> LockHolder | None:
    """The owner record in ``workdir``'s lock file, if any (it may be stale)."""
    try:
        return json.loads(WorkdirLayout(workdir).lock.read_text() or "null")
    except (OSError, ValueError):
        return None


def _describe(record: LockHolder | None) -> str:
    if not record:
        return "another process"
    started = datetime.fromtimestamp(record.get("started", 0), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {record.get('pid')} on {record.get('host')} since {started} ({record.get('command', '?')})"


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike[str], purpose: str = "") -> Iterator[LockHolder | None]:
    """Hold the work directory's lock for the block.

    Yields the record of a stale lock that was taken over (``None`` otherwise).

    Raises:
        WorkdirLockedError: a live process holds the lock.
    """
    root = str(Path(workdir).resolve())
    if _join_held(root):
        try:
            yield None
        finally:
            _leave_held(root)
        return
    fd, stale = _acquire(root, purpose)
    try:
        yield stale
    finally:
        _release(root, fd)


def _join_held(root: str) -> bool:
    """Share the lock when this process already holds it; ``False`` when it does not."""
    with _guard:
        if root not in _held:
            return False
        fd, depth = _held[root]
        _held[root] = (fd, depth + 1)
        return True


def _leave_held(root: str) -> None:
    with _guard:
        fd, depth = _held[root]
        _held[root] = (fd, depth - 1)


def _acquire(root: str, purpose: str) -> tuple[int, LockHolder | None]:
    """Take the lock (never waiting), write this process's owner record; return the fd and a stale record."""
    path = WorkdirLayout(root).lock
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkdirLockedError(
            f"workdir {root}: in use by {_describe(lock_holder(root))}; wait for that run to "
            "finish or use another --workdir"
        ) from None
    stale = lock_holder(root)
    stale = stale if stale and stale.get("pid") != os.getpid() else None
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": purpose or " ".join(sys.argv)[:300],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    with _guard:
        _held[root] = (fd, 1)
    return fd, stale


def _release(root: str, fd: int) -> None:
    with _guard:
        del _held[root]
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)  # releases the flock
