"""The ``mltoolkit`` command line: one typer app, one subcommand per module.

::

    mltoolkit run  --inputs inputs.yml [--workdir DIR] [-p key=value ...]   # the native flow
    mltoolkit spec WORKDIR WORKFLOW [INPUTS] [--toplevel DIR] [...]         # a yadage spec
    mltoolkit step STEPS.yml#/step WORKDIR [-p key=value ...]               # one yadage step
    mltoolkit archive WORKDIR OUT.zip                                       # a run as one zip
    mltoolkit validate WORKFLOW [INPUTS] [--toplevel DIR] [...]             # would a spec run here?
    mltoolkit resume WORKDIR [-p key=value ...]                             # answer a human step
    mltoolkit reproduce SOURCE [--workdir NEW] [--rtol R] [--atol A]        # re-run an archived run, compare
    mltoolkit compare RUN_A RUN_B [--rtol R] [--atol A]                     # compare two runs

``python -m flows.ml_workflow``, ``python -m flows.spec_workflow`` and
``python -m flows.spec_step`` (and ``python -m flows.archive``) are the same commands under their documented names
(:func:`run_module_command`); ``python -m flows.cli`` is ``mltoolkit``.

The rooms:

* :mod:`flows.cli.app` -- the app and one registration line per subcommand;
* :mod:`flows.cli.errors` -- the one place a failure becomes ``error: ...`` and an exit code;
* :mod:`flows.cli.options` -- every shared option and argument, defined once;
* :mod:`flows.cli.flow_run` -- what every command that runs a flow does around it;
* :mod:`flows.cli.run`, :mod:`flows.cli.spec`, :mod:`flows.cli.step` -- the subcommands.

A new subcommand is one module with its command function plus one
``app.command(...)`` line in :mod:`flows.cli.app`; one that runs a Prefect flow
also adds its name to :data:`FLOW_COMMANDS`.

This module must stay cheap to import and must not import Prefect (nor typer):
for a command that runs a flow, the entry points below first offer the command
to the kept command process (:mod:`flows.startup.warm_commands`: it runs there,
warm, in a fork that has Prefect imported), and otherwise start the API server and
the warm workers (:func:`flows.startup.prepare_cli_process`) before anything
else is imported, so they boot on the other core meanwhile.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["FLOW_COMMANDS", "main", "run_module_command"]

#: Subcommands that run a Prefect flow: their process starts the start-up helpers first.
FLOW_COMMANDS = frozenset({"run", "spec", "step", "reproduce"})

#: What asks for help or a check rather than a run (the helpers are not started for it).
_NOT_A_RUN = frozenset({"-h", "--help", "--validate"})


def _prepare_unless_help(args: Sequence[str], warm_entry: tuple[str, list[Any]] | None) -> None:
    """Start the helpers for a run: first, unless this is a warm command, offer it to the kept process."""
    if _NOT_A_RUN & set(args):
        return
    if warm_entry is not None:
        from flows.startup.warm_commands import run_in_kept_process

        run_in_kept_process(*warm_entry, {"warm": True})  # exits here when the kept process ran it
    from flows.startup import prepare_cli_process

    prepare_cli_process(warm=warm_entry is None)


def main(args: Sequence[str] | None = None, *, warm: bool = False) -> NoReturn:
    """Run ``mltoolkit`` with ``args`` (default: the process's arguments); exit with its code.

    ``warm``: this is a fork of the kept command process (:mod:`flows.startup.warm_commands`).
    """
    args = list(sys.argv[1:] if args is None else args)
    # The group has no options of its own, so its first word that is not an option is the command.
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command in FLOW_COMMANDS:
        _prepare_unless_help(args, None if warm else ("flows.cli:main", [args]))
    from flows.cli.app import root_command

    root_command().main(args, prog_name="mltoolkit")
    raise AssertionError("unreachable: a command line's main() exits")


def run_module_command(name: str, prog_name: str, args: Sequence[str] | None = None, *, warm: bool = False) -> NoReturn:
    """Run subcommand ``name`` as the program ``prog_name`` (the ``python -m flows.*`` entry points).

    ``warm``: this is a fork of the kept command process (:mod:`flows.startup.warm_commands`).
    """
    args = list(sys.argv[1:] if args is None else args)
    if name in FLOW_COMMANDS:
        _prepare_unless_help(args, None if warm else ("flows.cli:run_module_command", [name, prog_name, args]))
    from flows.cli.app import root_command

    root_command().commands[name].main(args, prog_name=prog_name)
    raise AssertionError("unreachable: a command line's main() exits")
