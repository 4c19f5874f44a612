"""What every command that runs a flow does around it: check the work directory, lock it, run, report.

This module must not import Prefect at import time (see :mod:`flows.cli`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import typer

from flows.cli.errors import exit_with_error, one_line
from flows.cli.progress_display import showing_progress
from flows.cli.run_log import logging_to_workdir
from flows.expected_errors import install_expected_error_filter
from mltoolkit.errors import MLToolkitError, WorkdirError

__all__ = [
    "check_workdir",
    "command_line",
    "echo_cache_summary",
    "holding_workdir_lock",
    "run_flow_from_cli",
    "warn_unquoted",
]


def check_workdir(workdir: Path) -> Path:
    """Create ``workdir`` if needed and make sure it is a writable folder; return it resolved.

    Raises:
        WorkdirError: it is a file, cannot be created or is not writable.
    """
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir}: is a file, expected a folder; pick another path")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkdirError(f"--workdir {workdir}: cannot create folder ({exc.strerror}); pick another path") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise WorkdirError(f"--workdir {workdir}: folder is not writable; pick another path")
    return workdir.resolve()


def command_line(context: typer.Context) -> str:
    """The command as the user typed it (program name and arguments), for the work directory's lock."""
    return f"{context.find_root().info_name} {shlex.join(sys.argv[1:])}".strip()


def warn_unquoted(unsafe_no_quoting: bool) -> None:
    """Say once, on stderr, that ``--unsafe-no-quoting`` is on."""
    if unsafe_no_quoting:
        typer.echo(
            "warning: --unsafe-no-quoting: parameter values go into shell commands unquoted, "
            "as yadage does; only use it with inputs you trust",
            err=True,
        )


@contextlib.contextmanager
def holding_workdir_lock(workdir: Path, command: str) -> Iterator[None]:
    """Hold ``workdir``'s lock around a command's flow run.

    Taken by the command line, before the flow starts, so a second command on a
    busy work directory fails at once (one line naming the holder) instead of
    after Prefect created a flow run; the flow's own acquisition in this process
    is then shared. A lock left by a killed run is taken over, with a warning.

    Raises:
        WorkdirLockedError: a live process holds the lock.
    """
    from mltoolkit.workdir.locking import workdir_lock

    with workdir_lock(workdir, command) as stale:
        if stale:
            typer.echo(
                f"warning: took over the lock of a run that ended without releasing it "
                f"(pid {stale.get('pid')} on {stale.get('host')}: {one_line(stale.get('command', '?'))})",
                err=True,
            )
        yield


def run_flow_from_cli(
    context: typer.Context,
    workdir: Path,
    start_flow: Callable[[], Coroutine[Any, Any, Any]],
    quiet: bool = False,
) -> Any:
    """Run a flow for a command line: hold the workdir lock, wait for the API, run, return its result.

    While the flow runs, its progress shows on stderr (not with ``quiet``: see
    :mod:`flows.cli.progress_display`) and its full log goes to the work
    directory's log file (:mod:`flows.cli.run_log`).
    ``start_flow`` returns the flow call's coroutine. An :class:`MLToolkitError` from
    the flow propagates (:mod:`flows.cli.errors` prints its line); any other
    failure, already logged by Prefect, ends the command with one line too.
    """
    import asyncio

    from flows.startup import temporary_server

    install_expected_error_filter()  # where the run starts: our errors are logged as their one line
    with holding_workdir_lock(workdir, command_line(context)):
        try:
            temporary_server.wait_until_ready()
        except MLToolkitError:
            raise
        except RuntimeError as exc:  # the start-up helpers' own failures (server did not come up)
            exit_with_error(exc)
        try:
            with logging_to_workdir(workdir), showing_progress(quiet):
                return asyncio.run(start_flow())
        except MLToolkitError:
            raise
        except Exception as exc:
            exit_with_error(f"flow run failed: {type(exc).__name__}: {exc}")


def echo_cache_summary(workdir: Path) -> None:
    """Print which steps were reused and which ran, and why (from the run record)."""
    from mltoolkit.preservation import summary_line
    from mltoolkit.workdir.record import read_run_record

    typer.echo(summary_line(read_run_record(workdir).steps))
