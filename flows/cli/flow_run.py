"""What every command that runs a flow does around it: check the work directory, lock it, run, report.

Ctrl-C (SIGINT) or SIGTERM during the flow run stops it within a second or two:
every running step's process group is stopped at once (steps not yet started are
refused), the warm workers are stopped, the flow run is cancelled (Prefect
records it as crashed), the work directory's lock is released and the command
ends with one line and exit code 130 (143 for SIGTERM). Finished steps keep
their cached results, so the same command again resumes where the run stopped.
A second Ctrl-C while this happens interrupts at once.

This module must not import Prefect at import time (see :mod:`flows.cli`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
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


def _stop_steps_and_workers() -> None:
    """Stop every running step (and refuse new ones) and the warm workers."""
    import threading

    from flows.startup.compute_pool import active_pool
    from mltoolkit.processes.warden import stop_run
    from mltoolkit.yadage.packtivity.execute import cancel_running_steps

    cancel_running_steps()
    # steps that worker processes (process pool, local Dask cluster) run carry this run's token
    threading.Thread(target=stop_run, name="stop worker steps", daemon=True).start()
    pool = active_pool()
    if pool is not None:  # the native flow's step bodies run in its children
        pool.shutdown()


async def _interruptible(start_flow: Callable[[], Coroutine[Any, Any, Any]], interrupted: list[int]) -> Any:
    """Await the flow; on SIGINT or SIGTERM stop its steps and cancel it (recorded in ``interrupted``).

    A plain signal handler, not the event loop's: a flow may block the loop while it
    waits for a step (the native flow does), and the steps must stop at once.
    """
    import threading

    loop = asyncio.get_running_loop()
    flow_task = asyncio.current_task()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next one acts at once
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        interrupted.append(signum)
        # in a thread: this handler may have interrupted the main thread anywhere, locks held
        threading.Thread(target=_stop_steps_and_workers, name="stop steps", daemon=True).start()
        if flow_task is not None:
            loop.call_soon_threadsafe(flow_task.cancel)

    for signum in previous:
        signal.signal(signum, on_signal)
    try:
        return await start_flow()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_interrupted(signum: int) -> None:
    name = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    exit_with_error(
        f"{name}: the running steps were stopped and the flow run cancelled; "
        "finished steps are kept: run the same command again to resume",
        code=128 + signum,
    )


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
    failure, already logged by Prefect, ends the command with one line too. Ctrl-C
    and SIGTERM stop the run quickly and resumably (see the module docstring).
    """
    from flows.cache_keys import prefetch_code_facts
    from flows.startup import temporary_server
    from mltoolkit.processes.warden import start_warden

    install_expected_error_filter()  # where the run starts: our errors are logged as their one line
    prefetch_code_facts()  # read while the flow run starts: its first cache key needs them
    start_warden()  # before any worker process starts, so that they share this run's token
    with holding_workdir_lock(workdir, command_line(context)):
        try:
            temporary_server.wait_until_ready()
        except MLToolkitError:
            raise
        except RuntimeError as exc:  # the start-up helpers' own failures (server did not come up)
            exit_with_error(exc)
        interrupted: list[int] = []
        try:
            with logging_to_workdir(workdir), showing_progress(quiet):
                result = asyncio.run(_interruptible(start_flow, interrupted))
        except MLToolkitError:
            if not interrupted:
                raise
        except (Exception, asyncio.CancelledError) as exc:
            if not interrupted:
                exit_with_error(f"flow run failed: {type(exc).__name__}: {exc}")
        if interrupted:
            _exit_interrupted(interrupted[0])
        return result


def echo_cache_summary(workdir: Path) -> None:
    """Print which steps were reused and which ran, and why (from the run record)."""
    from mltoolkit.preservation import summary_line
    from mltoolkit.workdir.record import read_run_record

    typer.echo(summary_line(read_run_record(workdir).steps))
