"""Where a command's log goes: all of it to the work directory's log file, little of it to the terminal.

Prefect logs every flow and task run (``Beginning flow run``, ``Finished in
state Completed()`` for each task, hook notices...) to the API -- the UI keeps
all of it -- and to its console handler on stderr. Our command lines instead
show their progress (:mod:`flows.cli.progress_display`) and, from the log, only
what concerns the user: the console handler gets Prefect's public setting
``PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=WARNING`` at start-up (unless it is set
already; :func:`flows.startup.prefect_settings.quiet_console_logging`), and a filter keeps Prefect's notices
about internal hooks off the terminal at any level. The full log of the command's
process goes to ``WORKDIR/_mltoolkit/run.log`` (overwritten by each run).

Installed where a command starts its flow run, never on import.
This module must not import Prefect at import time.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from mltoolkit.workdir.layout import WorkdirLayout

__all__ = ["is_hook_notice", "logging_to_workdir"]

# Prefect's notices around a state hook (flow_engine.py, task_engine.py, transactions.py)
_HOOK_NOTICE = re.compile(r"^(Running hook '.*' in response to entering state|(\w+ )?[Hh]ook '.*' finished running)")


def is_hook_notice(record: logging.LogRecord) -> bool:
    """Whether ``record`` is Prefect's notice that a state hook runs or ran."""
    return record.levelno < logging.WARNING and bool(_HOOK_NOTICE.match(record.getMessage()))


class _NoHookNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_hook_notice(record)


_FILTER = _NoHookNotices()


def _console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    return [handler for handler in logging.getLogger().handlers if isinstance(handler, PrefectConsoleHandler)]


def _file_handler(path: Path) -> logging.Handler:
    from prefect.logging.formatters import PrefectFormatter

    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(
        PrefectFormatter(
            format="%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s",
            flow_run_fmt="%(asctime)s.%(msecs)03d | %(levelname)-7s | Flow run %(flow_run_name)r - %(message)s",
            task_run_fmt="%(asctime)s.%(msecs)03d | %(levelname)-7s | Task run %(task_run_name)r - %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        )
    )
    return handler


@contextlib.contextmanager
def logging_to_workdir(workdir: Path) -> Iterator[Path]:
    """Inside the block: log everything to ``WORKDIR/_mltoolkit/run.log``, keep hook notices off the console."""
    layout = WorkdirLayout(workdir)
    layout.records.mkdir(parents=True, exist_ok=True)
    handler = _file_handler(layout.run_log)
    root = logging.getLogger()
    root.addHandler(handler)
    consoles = _console_handlers()
    for console in consoles:
        console.addFilter(_FILTER)
    try:
        yield layout.run_log
    finally:
        root.removeHandler(handler)
        handler.close()
        for console in consoles:
            console.removeFilter(_FILTER)
