"""``mltoolkit validate WORKFLOW [INPUTS]``: would this yadage spec run here? Nothing runs.

Like ``yadage-validate`` and ``reana-client validate``, with this machine's
answers (:mod:`mltoolkit.yadage.validate`): it loads and validates the spec,
reads the inputs and ``-p`` values, and prints every stage with what it waits
for, where its steps would run (Docker, an image-map entry, this machine, a
person) and the resources they need; then the spec's warnings (dependencies its
references imply); ``--draw DIR`` also draws the stages and their dependencies
(``DIR/workflow.{dot,svg,png}``). What would stop a run here -- an image with
no engine and no image-map entry, a resource nothing provides, an init value
the inputs lack -- ends the command with one ``error:`` line each and exit
code 1; otherwise it exits 0.

``mltoolkit spec WORKDIR WORKFLOW [INPUTS] --validate`` (and ``python -m
flows.spec_workflow ... --validate``) is the same check for a run command line
(init files in ``WORKDIR/init``; ``--visualize`` draws into ``WORKDIR/_mltoolkit/``).
Neither starts a Prefect server nor imports Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.options import (
    ImageMap,
    ImageMapFile,
    InputsArgument,
    Parameters,
    Provide,
    Toplevel,
    WorkflowArgument,
)

__all__ = ["SpecCheck", "check_spec", "inputs_file", "validate"]

Draw = Annotated[
    Path | None,
    typer.Option(
        "--draw", help="Also draw the stages and dependencies into DIR/workflow.{dot,svg,png}.", file_okay=False
    ),
]


def inputs_file(inputs: Path | None, toplevel: str | None) -> Path | None:
    """``INPUTS`` as the spec commands read it: looked up in ``--toplevel`` first, then as given."""
    if inputs is not None and not inputs.is_absolute() and toplevel and (Path(toplevel) / inputs).is_file():
        return Path(toplevel) / inputs
    return inputs


@dataclass
class SpecCheck:
    """What to check: the spec command line's arguments (nothing of how to run)."""

    workflow: str
    inputs: Path | None = None
    toplevel: str | None = None
    parameters: tuple[str, ...] = ()
    image_map: tuple[str, ...] = ()
    image_map_file: Path | None = None
    provide: tuple[str, ...] = ()
    workdir: Path | None = None  # its init/ folder holds init files

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SpecCheck:
        """The check of a ``validate`` or ``spec`` command line (typer's parsed ``params``)."""
        return cls(
            params["workflow"],
            params["inputs"],
            params["toplevel"],
            tuple(params["parameter"] or ()),
            tuple(params["image_map"] or ()),
            params["image_map_file"],
            tuple(params["provide"] or ()),
            params.get("workdir"),
        )


def check_spec(check: SpecCheck, draw: Path | None = None) -> int:
    """Print the validation report of ``check``; draw it into ``draw``; 0 when the spec would run here, else 1.

    Raises:
        MLToolkitError: the spec, the inputs, a ``-p`` value, the image map or a ``--provide`` is malformed.
    """
    from mltoolkit.yadage import (
        WorkflowRun,
        docker_available,
        load_workflow,
        parse_image_map,
        parse_provided,
        read_inputs,
        validate_workflow,
        write_workflow_pictures,
    )
    from mltoolkit.yadage.validate import validation_report
    from mltoolkit.yamlfiles import parse_assignments

    overrides = parse_assignments(check.parameters)
    given = check.inputs is not None or bool(overrides)
    init = read_inputs(inputs_file(check.inputs, check.toplevel), overrides=overrides)
    loaded = load_workflow(check.workflow, check.toplevel)
    spec = validate_workflow(loaded)
    image_map = parse_image_map(list(check.image_map), check.image_map_file)
    report = validation_report(
        spec,
        source=str(loaded.source),
        image_map=image_map,
        provided=parse_provided(check.provide),
        docker=docker_available(),
        init=init if given else None,
    )
    for line in report.lines():
        typer.echo(line)
    if draw is not None:
        run = WorkflowRun(spec, init, check.workdir or draw)
        pictures = write_workflow_pictures(run, draw)
        typer.echo(f"picture: {', '.join(str(path) for path in pictures.values())}")
    for problem in report.problems:
        typer.echo(f"error: {' '.join(problem.split())}", err=True)
    return 0 if report.ok else 1


def validate(
    context: typer.Context,
    workflow: WorkflowArgument,
    inputs: InputsArgument = None,
    toplevel: Toplevel = None,
    parameter: Parameters = None,
    image_map: ImageMap = None,
    image_map_file: ImageMapFile = None,
    provide: Provide = None,
    draw: Draw = None,
) -> None:
    """Check a yadage WORKFLOW (with INPUTS and -p values) without running it; exit 1 if it would not run here."""
    raise typer.Exit(check_spec(SpecCheck.from_params(context.params), draw))
