"""The ``mltoolkit`` app: one registration line per subcommand (each subcommand is its own module)."""

from __future__ import annotations

from typing import cast

import typer.main
from typer.core import TyperGroup

from flows.cli import archive, run, server, spec, step
from flows.cli.errors import CommandLineApp

__all__ = ["app", "root_command"]

app = CommandLineApp(
    name="mltoolkit",
    help="A preserved ML analysis and any yadage workflow spec, run as Prefect flows.",
)
app.command("run")(run.run)
app.command("spec")(spec.spec)
app.command("step")(step.step)
app.command("archive")(archive.archive)
app.add_typer(server.app, name="server")


def root_command() -> TyperGroup:
    """The click group of :data:`app` (what ``mltoolkit`` runs; its ``commands`` are the subcommands)."""
    return cast(TyperGroup, typer.main.get_command(app))
