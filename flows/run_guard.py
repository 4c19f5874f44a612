"""What every flow run does around its steps: hold the work directory's lock."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from mltoolkit.workdir.locking import workdir_lock

__all__ = ["guarded_run"]


@contextlib.contextmanager
def guarded_run(workdir: str | os.PathLike[str], purpose: str) -> Iterator[None]:
    """Hold ``workdir``'s lock for the block; log when a stale lock is taken over."""
    with workdir_lock(workdir, purpose) as stale:
        if stale:
            from prefect.logging import get_run_logger

            with contextlib.suppress(Exception):
                get_run_logger().warning(
                    "took over the lock of a run that ended without releasing it (pid %s on %s)",
                    stale.get("pid"),
                    stale.get("host"),
                )
        yield
