"""A step's output in Prefect's log, within bounds; the step's own log file keeps all of it.

Every line Prefect logs is a row in the API's database and a message the UI
loads: a step that printed 1 GB grew ``prefect.db`` from 3 MB to 450 MB. So
each step sends at most :data:`MAX_LINES` lines and :data:`MAX_BYTES` bytes to
Prefect's log (each line cut at :data:`MAX_LINE_CHARS`), then says once where
the rest is. The step's log file (``<step folder>/_packtivity/<name>.run.log``,
written by the step runner) always has the full output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_BYTES", "MAX_LINES", "MAX_LINE_CHARS", "CappedStepLog"]

#: Lines of one step's output sent to Prefect's log.
MAX_LINES = 1000
#: Characters of one step's output sent to Prefect's log.
MAX_BYTES = 256 * 1024
#: Characters of one line sent to Prefect's log.
MAX_LINE_CHARS = 2000


class CappedStepLog:
    """An ``on_output`` callback: forwards a step's lines to ``logger`` until a limit, then says where the rest is."""

    def __init__(
        self,
        logger: Any,
        log_file: str | os.PathLike[str],
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.logger = logger
        self.log_file = Path(log_file)
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.lines = 0
        self.sent = 0
        self.capped = False

    def __call__(self, line: str) -> None:
        """Send ``line`` to the log, unless the step already sent its share."""
        if self.capped:
            return
        if len(line) > MAX_LINE_CHARS:
            line = f"{line[:MAX_LINE_CHARS]} [... {len(line) - MAX_LINE_CHARS} more characters in {self.log_file}]"
        self.lines += 1
        self.sent += len(line)
        if self.lines > self.max_lines or self.sent > self.max_bytes:
            self.capped = True
            self.logger.warning(
                "the step's output goes on beyond %d lines / %d kB; the rest is not sent to Prefect's log, "
                "only to the step's log file: %s",
                self.max_lines,
                self.max_bytes // 1024,
                self.log_file,
            )
            return
        self.logger.info("%s", line)
