"""Fast start-up of our command lines: what a command does first, before importing Prefect.

The package: :mod:`~flows.startup.temporary_server` picks or starts the API
server (:mod:`~flows.startup.api_server`, recorded by :mod:`~flows.startup.server_state`,
configured as Prefect's settings say: :mod:`~flows.startup.prefect_settings`);
:mod:`~flows.startup.compute_pool` runs step bodies in a warm zygote.

:func:`prepare_cli_process` starts the slow-to-boot helpers at once, so they boot
on the other core while this process imports Prefect: the temporary Prefect API
server (unless one is configured) and the warm compute pool. It also arranges a
fast process exit: once every exit handler has run (Prefect's log and event
flush, stopping the helpers), the interpreter's own teardown -- freeing every
object of Prefect, scikit-learn and matplotlib one by one, ~0.4 s -- is skipped.

Nothing in this package imports Prefect at import time.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

__all__ = ["prepare_cli_process", "set_exit_code"]

_exit_code = 1  # an exit without set_exit_code() is an unexpected crash


def set_exit_code(code: int) -> None:
    """Record the code the process will exit with (see :func:`prepare_cli_process`)."""
    global _exit_code
    _exit_code = code


def _exit_without_teardown() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(_exit_code)


def prepare_cli_process(*, compute_pool: bool = True, warm: bool = False) -> None:
    """Start the API server and compute pool early and set up the fast exit.

    Must be called before ``prefect`` is imported -- or, in a warm command
    (``warm=True``, :mod:`flows.startup.warm_commands`), in a fork of a process
    that imported it with the same environment: Prefect then reads its settings
    again once the API server is chosen.
    """
    from flows.startup.prebuilt_settings import refresh_imported_prefect
    from flows.startup.prefect_settings import quiet_console_logging
    from flows.startup.temporary_server import start_early

    quiet_console_logging()  # before Prefect reads its logging settings
    # Registered first, so it runs last: after Prefect's handlers and ours.
    atexit.register(_exit_without_teardown)
    start_early(prefect_imported=warm)
    if warm:
        refresh_imported_prefect()
    if compute_pool:
        from flows.startup.compute_pool import start_pool

        start_pool(fork=warm)
