"""Helpers shared by the typer command lines: one-line errors and exit code 1.

Every bad input (an argument, an inputs file, a spec, a dataset) ends the command
with one line ``error: ...`` on stderr and exit code 1, never a traceback:
:class:`~mltoolkit.errors.MLToolkitError` carries such a line, and click's usage
errors are rewritten to the same form.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, NoReturn, TypeVar

import click
import typer

from flows.startup import set_exit_code
from mltoolkit.errors import MLToolkitError

__all__ = ["exit_with_error", "one_line_errors", "run_app"]

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
    except click.exceptions.UsageError as error:
        where = f"{error.ctx.command_path}: " if error.ctx is not None else ""
        hint = " (see --help)"
        typer.echo(f"error: {where}{_one_line(error.format_message())}{hint}", err=True)
        return 1
    except click.exceptions.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except MLToolkitError as error:
        typer.echo(f"error: {_one_line(error)}", err=True)
        return 1
    return result if isinstance(result, int) else 0
