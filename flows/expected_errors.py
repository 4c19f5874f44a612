"""Log expected failures as the one line they carry, not as a traceback.

Prefect logs a failing task or flow with its traceback. For our own errors
(:class:`~mltoolkit.errors.MLToolkitError`: bad input, a step whose command
failed, a corrupt file) the message already says where, what and how to fix it,
and the step's log file has the details, so the traceback is dropped; any other
exception keeps it.

The filter is installed where a run starts, never on import: by the command
lines before they run a flow, by each flow's body (deployments run flows without
our command lines) and by the step task bodies (with the process and Dask
runners they run in worker processes of their own).
"""

from __future__ import annotations

import logging

from mltoolkit.errors import MLToolkitError

__all__ = ["install_expected_error_filter"]

_LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "prefect.engine")


class _DropTracebackOfExpectedErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], MLToolkitError):
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = _DropTracebackOfExpectedErrors()


def install_expected_error_filter() -> None:
    """Attach the filter to Prefect's run loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
