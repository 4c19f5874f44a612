"""The ``mltoolkit`` app: one registration line per subcommand (each subcommand is its own module)."""

from __future__ import annotations

import functools
from typing import cast

import typer.main
from typer.core import TyperGroup

from flows.cli import archive, compare, reproduce, resume, run, server, spec, step, validate
from flows.cli.errors import CommandLineApp

__all__ = ["app", "root_command"]

app = CommandLineApp(
    name="mltoolkit",
    help="A preserved ML analysis and any yadage workflow spec, run as Prefect flows.",
)
app.command("run")(run.run)
app.command("spec")(spec.spec)
app.command("step")(step.step)
app.command("validate")(validate.validate)
app.command("resume")(resume.resume)
app.command("archive")(archive.archive)
app.command("reproduce")(reproduce.reproduce)
app.command("compare")(compare.compare)
app.add_typer(server.app, name="server")


@functools.cache
def root_command() -> TyperGroup:
    """The click group of :data:`app` (what ``mltoolkit`` runs; its ``commands`` are the subcommands).

    Built once per process, on import: the kept command process imports this module before it
    forks commands, so they find it built.
    """
    return cast(TyperGroup, typer.main.get_command(app))


root_command()
