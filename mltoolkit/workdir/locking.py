"""One run per work directory: an advisory lock with a readable owner record.

The lock is ``WORKDIR/_mltoolkit/lock``: the file is ``flock``-ed for the whole run
and says who holds it (pid, host, start time, command). The kernel drops the
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

from mltoolkit.errors import WorkdirLockedError

__all__ = ["LOCK_FILE", "lock_holder", "workdir_lock"]

LOCK_FILE = "_mltoolkit/lock"

_held: dict[str, tuple[int, int]] = {}  # resolved workdir -> (fd, depth)
_guard = threading.Lock()


def lock_holder(workdir: str | os.PathLike[str]) -> dict | None:
    """The owner record in ``workdir``'s lock file, if any (it may be stale)."""
    try:
        return json.loads((Path(workdir) / LOCK_FILE).read_text() or "null")
    except (OSError, ValueError):
        return None


def _describe(record: dict | None) -> str:
    if not record:
        return "another process"
    started = datetime.fromtimestamp(record.get("started", 0), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {record.get('pid')} on {record.get('host')} since {started} ({record.get('command', '?')})"


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike[str], purpose: str = "") -> Iterator[dict | None]:
    """Hold the work directory's lock for the block.

    Yields the record of a stale lock that was taken over (``None`` otherwise).

    Raises:
        WorkdirLockedError: a live process holds the lock.
    """
    root = str(Path(workdir).resolve())
    with _guard:
        if root in _held:
            fd, depth = _held[root]
            _held[root] = (fd, depth + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield None
        finally:
            with _guard:
                fd, depth = _held[root]
                _held[root] = (fd, depth - 1)
        return

    path = Path(root) / LOCK_FILE
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
    try:
        yield stale
    finally:
        with _guard:
            del _held[root]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the flock
