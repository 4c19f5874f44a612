"""The one place where a failure of a command becomes one line on stderr and an exit code.

Every bad input (an argument, an inputs file, a spec, a dataset) ends a command
with ``error: ...`` on stderr and exit code 1, never a traceback:

* an :class:`~mltoolkit.errors.MLToolkitError` raised anywhere in a command
  carries such a line (where, what was found, what was expected, how to fix it);
* click's usage errors (unknown option, missing argument, bad value) are
  rewritten to the same form;
* a command that must stop for another reason calls :func:`exit_with_error`.

As in Prefect's own CLI (``PrefectTyper`` and ``exit_with_error``), the app class
:class:`CommandLineApp` gives every command this behaviour; it lives in the
``main`` of the click group and commands, so ``mltoolkit``, the ``python -m``
entry points and typer's ``CliRunner`` all see the same lines and codes.
Anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from flows.startup import set_exit_code
from mltoolkit.errors import MLToolkitError

__all__ = ["CommandLineApp", "OneLineErrorCommand", "OneLineErrorGroup", "exit_with_error", "one_line"]


def one_line(message: object) -> str:
    """``message`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(message).split())


def _print_error(message: object) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)


def exit_with_error(message: object, code: int = 1) -> NoReturn:
    """Print ``error: message`` as one line on stderr and end the command with ``code``."""
    _print_error(message)
    raise typer.Exit(code)


def _is_usage_error(error: Exception) -> bool:
    # Typer ships its own copy of click; its usage errors are recognised by
    # their interface (format_message + exit_code) rather than by class.
    return hasattr(error, "format_message") and hasattr(error, "exit_code")


def _exit_code_of(invoke: Callable[[], Any]) -> int:
    """Run ``invoke`` (a click ``main`` in non-standalone mode); report a failure; return the exit code."""
    try:
        result = invoke()
    except typer.Abort:
        _print_error("aborted")
        return 1
    except typer.Exit as exit_:
        return exit_.exit_code
    except MLToolkitError as error:
        _print_error(error)
        return 1
    except Exception as error:
        if not _is_usage_error(error):
            raise
        context = getattr(error, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        _print_error(f"{where}{one_line(error.format_message())} (see --help)")  # type: ignore[attr-defined]
        return 1
    return result if isinstance(result, int) else 0


class _OneLineErrors:
    """Mixin for click commands: ``main`` reports failures as one line and exits with their code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit the process with its code (return it without ``standalone_mode``)."""
        parent_main = super().main  # type: ignore[misc]
        code = _exit_code_of(
            lambda: parent_main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            ),
        )
        if not standalone_mode:
            return code
        set_exit_code(code)
        sys.exit(code)


# click declares ``main`` with overloads on ``standalone_mode``; ours has the one signature of TyperCommand.main.
class OneLineErrorGroup(_OneLineErrors, TyperGroup):  # type: ignore[misc]
    """The ``mltoolkit`` group: failures of any subcommand end as one line."""


class OneLineErrorCommand(_OneLineErrors, TyperCommand):  # type: ignore[misc]
    """A subcommand that, run as its own program (``python -m flows...``), ends failures as one line."""


class CommandLineApp(typer.Typer):
    """A typer app whose group and commands report failures as one line (see the module docstring)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("cls", OneLineErrorGroup)
        options.setdefault("add_completion", False)
        options.setdefault("pretty_exceptions_enable", False)
        # A missing command is then a usage error (one line), not the help text with exit code 2.
        options.setdefault("no_args_is_help", False)
        super().__init__(**options)

    def command(  # type: ignore[override]  # typer's keywords, passed through; only the default of cls differs
        self, name: str | None = None, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a command (as :class:`OneLineErrorCommand`, unless ``cls`` says otherwise)."""
        options.setdefault("cls", OneLineErrorCommand)
        return super().command(name, **options)
