"""Helpers shared by the typer command lines: one-line errors and exit code 1.

Every bad input (an argument, an inputs file, a spec, a dataset) ends the command
with one line ``error: ...`` on stderr and exit code 1, never a traceback:
:class:`~mltoolkit.errors.MLToolkitError` carries such a line, and click's usage
errors are rewritten to the same form.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from flows.startup import set_exit_code
from mltoolkit.errors import MLToolkitError

__all__ = [
    "check_workdir",
    "exit_with_error",
    "holding_workdir_lock",
    "one_line_errors",
    "run_app",
    "run_flow_from_cli",
]

F = TypeVar("F", bound=Callable[..., Any])


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def exit_with_error(message: object, code: int = 1) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(code)


def one_line_errors(command: F) -> F:
    """Decorate a typer command so an :class:`MLToolkitError` exits 1 with its one line."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MLToolkitError as error:
            exit_with_error(error)

    return wrapper  # type: ignore[return-value]


def run_app(app: typer.Typer, args: list[str] | None = None, prog_name: str | None = None) -> NoReturn:
    """Run ``app`` as a program: usage errors become one line and exit code 1."""
    code = _run(app, args, prog_name)
    set_exit_code(code)
    sys.exit(code)


def _run(app: typer.Typer, args: list[str] | None, prog_name: str | None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except typer.Exit as exit_:
        return exit_.exit_code
    except MLToolkitError as error:
        typer.echo(f"error: {_one_line(error)}", err=True)
        return 1
    except Exception as error:
        # Typer ships its own copy of click; its usage errors are recognised by
        # their interface (format_message + exit_code) rather than by class.
        if not (hasattr(error, "format_message") and hasattr(error, "exit_code")):
            raise
        context = getattr(error, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        typer.echo(f"error: {where}{_one_line(error.format_message())} (see --help)", err=True)
        return 1
    return result if isinstance(result, int) else 0


def check_workdir(workdir: Path) -> Path:
    """Create ``workdir`` if needed and make sure it is a writable folder; return it resolved.

    Raises:
        WorkdirError: it is a file, cannot be created or is not writable.
    """
    from mltoolkit.errors import WorkdirError

    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir}: is a file, expected a folder; pick another path")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkdirError(f"--workdir {workdir}: cannot create folder ({exc.strerror}); pick another path") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise WorkdirError(f"--workdir {workdir}: folder is not writable; pick another path")
    return workdir.resolve()


@contextlib.contextmanager
def holding_workdir_lock(workdir: Path, program: str) -> Iterator[None]:
    """Hold ``workdir``'s lock around a command's flow run.

    Taken by the command line, before the flow starts, so a second command on a
    busy work directory fails at once (one line naming the holder) instead of
    after Prefect created a flow run; the flow's own acquisition in this process
    is then shared. A lock left by a killed run is taken over, with a warning.

    Raises:
        WorkdirLockedError: a live process holds the lock.
    """
    from mltoolkit.workdir.locking import workdir_lock

    command = f"{program} {shlex.join(sys.argv[1:])}".strip()
    with workdir_lock(workdir, command) as stale:
        if stale:
            typer.echo(
                f"warning: took over the lock of a run that ended without releasing it "
                f"(pid {stale.get('pid')} on {stale.get('host')}: {_one_line(stale.get('command', '?'))})",
                err=True,
            )
        yield


def run_flow_from_cli(workdir: Path, program: str, start_flow: Callable[[], Any]) -> Any:
    """Run a flow for a command line: hold the workdir lock, wait for the API, run, report.

    ``start_flow`` returns the flow call's coroutine. An :class:`MLToolkitError` from
    the flow propagates (its one line is printed by :func:`one_line_errors`); any other
    failure, already logged by Prefect, ends the command with one line too.
    """
    import asyncio

    from flows.startup import temporary_server

    with holding_workdir_lock(workdir, program):
        try:
            temporary_server.wait_until_ready()
        except RuntimeError as exc:
            exit_with_error(exc)
        try:
            return asyncio.run(start_flow())
        except MLToolkitError:
            raise
        except Exception as exc:
            exit_with_error(f"flow run failed: {type(exc).__name__}: {exc}")
