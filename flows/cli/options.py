"""Every option and argument the subcommands share: one definition and one help text each.

A command declares a parameter with one of these types and its default, e.g.
``retries: Retries = 0``; the flag names, the help and the checks (``min=0``)
come from here, so ``mltoolkit run --help`` and ``mltoolkit spec --help`` say the
same thing about the same option.

This module must not import Prefect (``mltoolkit --help`` stays fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.runners import RUNNERS

__all__ = [
    "AbsoluteTolerance",
    "DaskAddress",
    "ImageMap",
    "ImageMapFile",
    "ImageTolerance",
    "InputsArgument",
    "InputsFile",
    "NoCache",
    "OptionalWorkdirOption",
    "Parameters",
    "Provide",
    "Quiet",
    "Refresh",
    "RelativeTolerance",
    "Retries",
    "RetryDelay",
    "Runner",
    "StepRetries",
    "StepTimeout",
    "Toplevel",
    "TrustArchive",
    "UnsafeNoQuoting",
    "Visualize",
    "WorkdirArgument",
    "WorkdirOption",
    "WorkflowArgument",
]

# --- where: work directory, spec files, inputs ---------------------------------------------

_WORKDIR_HELP = "The run's folder (created if missing)."
WorkdirOption = Annotated[Path, typer.Option("--workdir", "-w", help=_WORKDIR_HELP)]
#: ``--workdir`` of a command that picks a default folder itself (``reproduce``).
OptionalWorkdirOption = Annotated[Path | None, typer.Option("--workdir", "-w", help=_WORKDIR_HELP)]
WorkdirArgument = Annotated[Path, typer.Argument(help="The run's folder (created if missing).")]
WorkflowArgument = Annotated[str, typer.Argument(help="Workflow file, relative to --toplevel.")]
Toplevel = Annotated[
    str | None,
    typer.Option(
        "--toplevel",
        "-t",
        help="Folder the spec file and its $refs resolve against "
        "(default: the workflow file's folder; for a step, the current folder).",
    ),
]
InputsFile = Annotated[
    Path | None,
    typer.Option("--inputs", "-i", help="YAML file with 'dataset' and 'classifiers'.", dir_okay=False),
]
InputsArgument = Annotated[
    Path | None, typer.Argument(help="YAML file of init values (looked up in --toplevel first).", dir_okay=False)
]
Parameters = Annotated[
    list[str] | None,
    typer.Option(
        "--parameter", "-p", help="An input value key=value, parsed as YAML; overrides the inputs file. Repeatable."
    ),
]

# --- how steps run: runner, cache, retries, timeouts -----------------------------------------

Runner = Annotated[str, typer.Option("--runner", help=f"Task runner: {', '.join(RUNNERS)}.")]
DaskAddress = Annotated[
    str | None, typer.Option("--dask-address", help="Use an existing Dask scheduler (with --runner dask).")
]
Refresh = Annotated[bool, typer.Option("--refresh", help="Re-run every step, then cache the new results.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Neither reuse nor store cached steps.")]
Retries = Annotated[int, typer.Option("--retries", min=0, help="Retries of a failed step.")]
RetryDelay = Annotated[float, typer.Option("--retry-delay", min=0, help="Seconds before a retry.")]
StepRetries = Annotated[
    list[str] | None, typer.Option("--step-retries", help="Retries for one stage's steps: STAGE=N (repeatable).")
]
StepTimeout = Annotated[
    float | None, typer.Option("--step-timeout", min=0.001, help="Kill a step after this many seconds.")
]

# --- what the terminal shows -----------------------------------------------------------------

Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress display (warnings, errors and the final summary still show; "
        "the full log is in WORKDIR/_mltoolkit/run.log).",
    ),
]

# --- yadage steps: environments and quoting --------------------------------------------------

ImageMap = Annotated[
    list[str] | None,
    typer.Option(
        "--image-map",
        help="Run a docker-encapsulated image's steps on this machine instead of in Docker: IMAGE=local "
        "(as is), IMAGE=local:/container/path=/host/path,... (paths rewritten like bind mounts) or "
        "IMAGE=toolkit (this toolkit's scripts and Python). An entry you give applies whether or not a "
        "Docker engine answers; the built-in entry for the seed's danikam/sklearn applies only when none "
        "answers. Repeatable.",
    ),
]
ImageMapFile = Annotated[
    Path | None,
    typer.Option(
        "--image-map-file",
        help="YAML file of image-map entries (IMAGE: local, or {kind: local, mounts: {/c: /h}}); "
        "like --image-map, they apply with or without Docker; --image-map entries override them.",
        dir_okay=False,
    ),
]
UnsafeNoQuoting = Annotated[
    bool,
    typer.Option(
        "--unsafe-no-quoting", help="Paste parameter values into shell commands unquoted, like yadage (unsafe)."
    ),
]
Visualize = Annotated[bool, typer.Option("--visualize", help="Draw WORKDIR/_mltoolkit/workflow.{png,svg,dot}.")]
Provide = Annotated[
    list[str] | None,
    typer.Option(
        "--provide",
        help="A resource steps may need that this machine provides: NAME or NAME=VALUE, "
        "e.g. CVMFS=/cvmfs, GRIDProxy=/tmp/x509up_u1000. Repeatable.",
    ),
]

# --- reproduce and compare: tolerances and trust ---------------------------------------------

RelativeTolerance = Annotated[
    float, typer.Option("--rtol", min=0, help="Relative tolerance of numbers (scores, values in JSON/YAML files).")
]
AbsoluteTolerance = Annotated[float, typer.Option("--atol", min=0, help="Absolute tolerance of numbers.")]
ImageTolerance = Annotated[
    float,
    typer.Option("--image-tolerance", min=0, max=1, help="Share of a figure's pixels (0..1) that may differ."),
]
TrustArchive = Annotated[
    bool,
    typer.Option(
        "--trust-archive",
        help="Load the archived pickles to compare models (a pickle runs code when loaded: only for archives "
        "you trust); without it, models are compared by the score and predictions recorded beside them.",
    ),
]
