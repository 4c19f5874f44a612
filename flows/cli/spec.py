"""``mltoolkit spec`` (also ``python -m flows.spec_workflow``): a yadage workflow spec as a Prefect flow.

Mirrors ``yadage-run``: ``WORKDIR WORKFLOW [INPUTS] --toplevel DIR -p key=value``.
Everything the command is given is checked before the first write: the spec,
the inputs, the image map, the stage names of ``--step-retries`` and the
resources the steps need (``--provide``). The spec's warnings (dependencies its
references imply) are printed on stderr.

``--validate`` only checks (:mod:`flows.cli.validate`; no Prefect, nothing
written); ``--stub`` runs every step as a stub that writes its declared outputs
empty (no image, resource or person needed; nothing cached); a human step waits
``--human-timeout`` seconds for its answer (``mltoolkit resume``).

The flows (with Prefect) are imported inside the command, not above: they must wait for the
start-up helpers (:mod:`flows.cli`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.flow_run import check_workdir, echo_cache_summary, run_flow_from_cli, warn_unquoted
from flows.cli.options import (
    DaskAddress,
    ImageMap,
    ImageMapFile,
    InputsArgument,
    NoCache,
    Parameters,
    Provide,
    Quiet,
    Refresh,
    Retries,
    RetryDelay,
    Runner,
    StepRetries,
    StepTimeout,
    Toplevel,
    UnsafeNoQuoting,
    Visualize,
    WorkdirArgument,
    WorkflowArgument,
)
from flows.cli.validate import SpecCheck, check_spec, inputs_file
from flows.runners import make_task_runner
from mltoolkit.errors import CommandLineError
from mltoolkit.workdir.layout import WorkdirLayout

if TYPE_CHECKING:
    from mltoolkit.preservation.submitted import Submission

__all__ = ["parse_step_retries", "spec", "stage_names"]

Stub = Annotated[
    bool,
    typer.Option(
        "--stub", help="Run every step as a stub that writes its declared outputs empty: checks the wiring only."
    ),
]
ValidateOnly = Annotated[
    bool, typer.Option("--validate", help="Only check whether the spec would run here (mltoolkit validate).")
]
HumanTimeout = Annotated[
    float | None,
    typer.Option(
        "--human-timeout",
        min=1,
        help="Seconds a human step (manual-instructions-*) waits for its answer [default: 86400].",
    ),
]


def spec(
    context: typer.Context,
    workdir: WorkdirArgument,
    workflow: WorkflowArgument,
    inputs: InputsArgument = None,
    toplevel: Toplevel = None,
    parameter: Parameters = None,
    image_map: ImageMap = None,
    image_map_file: ImageMapFile = None,
    unsafe_no_quoting: UnsafeNoQuoting = False,
    visualize: Visualize = False,
    runner: Runner = "thread",
    dask_address: DaskAddress = None,
    refresh: Refresh = False,
    no_cache: NoCache = False,
    retries: Retries = 0,
    retry_delay: RetryDelay = 0.0,
    step_retries: StepRetries = None,
    step_timeout: StepTimeout = None,
    provide: Provide = None,
    stub: Stub = False,
    validate: ValidateOnly = False,
    human_timeout: HumanTimeout = None,
    quiet: Quiet = False,
) -> None:
    """Run a yadage WORKFLOW (with INPUTS and -p values) in WORKDIR, like yadage-run; write its run record.
    docker-encapsulated steps run in Docker when an engine answers (DOCKER_HOST, else the default socket),
    except images named by --image-map or --image-map-file, which always run as mapped; without an engine
    the seed's danikam/sklearn runs with this toolkit's scripts. The run record says where each step ran.
    """
    if validate:  # only check (flows.cli.validate): no Prefect, nothing written
        raise typer.Exit(_check_only(context.params))
    from flows.environment_runner import chosen_task_runner
    from flows.spec_workflow import spec_workflow

    task_runner, retries_by_stage = make_task_runner(runner, dask_address), parse_step_retries(step_retries or [])
    init, validated, submission = _checked_inputs(workflow, inputs, toplevel, parameter or [], set(retries_by_stage))
    provided = _checked_requirements(validated, provide or [], image_map or [], image_map_file, stub=stub)
    workdir = check_workdir(workdir)
    warn_unquoted(unsafe_no_quoting)
    arguments = _flow_arguments(context.params, workdir, init, provided, retries_by_stage)
    arguments["submission"] = submission
    with chosen_task_runner(task_runner):
        summary = run_flow_from_cli(context, workdir, lambda: spec_workflow(**arguments), quiet=quiet)
    echo_cache_summary(workdir)
    stubs = " (all stubs: nothing ran)" if stub else ""
    typer.echo(f"{summary['status']}: {summary['steps']} steps{stubs}; record: {summary['record']}")


def _check_only(params: dict[str, Any]) -> int:
    """``--validate``: the exit code of :func:`~flows.cli.validate.check_spec` for the command line ``params``."""
    draw = WorkdirLayout(params["workdir"]).records if params["visualize"] else None
    return check_spec(SpecCheck.from_params(params), draw)


def _flow_arguments(
    params: dict[str, Any], workdir: Path, init: dict[str, Any], provided: dict[str, str], retries: dict[str, int]
) -> dict[str, Any]:
    """The spec flow's parameters from the command line's (``params``) and what was checked of them."""
    image_map_file = params["image_map_file"]
    arguments = {
        "workflow": params["workflow"],
        "workdir": str(workdir),
        "inputs": init,
        "inputs_file": None,
        "toplevel": params["toplevel"],
        "image_map": list(params["image_map"] or []),
        "image_map_file": str(image_map_file.resolve()) if image_map_file else None,
        "quote": not params["unsafe_no_quoting"],
        "use_cache": not params["no_cache"],
        "refresh_cache": params["refresh"],
        "retries": params["retries"],
        "retry_delay_seconds": params["retry_delay"],
        "step_timeout": params["step_timeout"],
        "visualize": params["visualize"],
        "step_retries": retries,
        "provide": provided,
        "stub": params["stub"],
    }
    if params["human_timeout"] is not None:
        arguments["human_timeout"] = params["human_timeout"]
    return arguments


def _checked_requirements(
    validated: Any, provide: list[str], image_map: list[str], image_map_file: Path | None, *, stub: bool = False
) -> dict[str, str]:
    """What ``--provide`` declares; stops before any step runs when a required resource is missing.

    The image map is checked either way; a stub run (``stub``) needs no resource.
    Also prints the spec's load warnings (e.g. implied dependencies).
    """
    from mltoolkit.yadage import check_requirements, parse_image_map, parse_provided

    provided = parse_provided(provide)
    image_entries = parse_image_map(list(image_map), image_map_file)
    if not stub:  # a stub needs no image and no resource
        check_requirements(validated, provided, image_entries)
    for warning in validated.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return provided


def _checked_inputs(
    workflow: str, inputs: Path | None, toplevel: str | None, parameters: list[str], retried_stages: set[str]
) -> tuple[dict[str, Any], Any, Submission]:
    """The init values, the validated spec and what was submitted, after checking the stages ``--step-retries`` names.

    Raises:
        MLToolkitError: the spec, the inputs or a ``-p`` value is invalid, or a retried stage is unknown.
    """
    from mltoolkit.preservation.submitted import Submission
    from mltoolkit.yadage import load_workflow, read_inputs, validate_workflow
    from mltoolkit.yamlfiles import parse_assignments

    overrides = parse_assignments(parameters)
    inputs = inputs_file(inputs, toplevel)
    init = read_inputs(inputs, overrides=overrides)
    spec = validate_workflow(load_workflow(workflow, toplevel))
    unknown = sorted(retried_stages - stage_names(spec))
    if unknown:
        raise CommandLineError(
            f"--step-retries: no stage named {', '.join(map(repr, unknown))} in {workflow}; "
            f"stages: {', '.join(sorted(stage_names(spec)))}"
        )
    return init, spec, Submission.from_command_line(inputs, parameters)


def parse_step_retries(items: list[str]) -> dict[str, int]:
    """``--step-retries`` values (``STAGE=N``) as ``{stage: retries}``.

    Raises:
        CommandLineError: an item is not ``STAGE=N`` with N a whole number.
    """
    retries: dict[str, int] = {}
    for item in items:
        stage, separator, count = item.partition("=")
        if not separator or not stage.strip() or not count.strip().isdigit():
            raise CommandLineError(
                f"--step-retries {item!r}: expected STAGE=N with N a whole number, e.g. classification=2"
            )
        retries[stage.strip()] = int(count)
    return retries


def stage_names(workflow: Any) -> set[str]:
    """Every stage name in a workflow, nested workflows included."""
    names: set[str] = set()
    pending = [workflow]
    while pending:
        current = pending.pop()
        for stage in current.stages:
            names.add(stage.name)
            nested = getattr(stage.scheduler, "workflow", None)
            if nested is not None:
                pending.append(nested)
            for case in getattr(stage.scheduler, "cases", None) or []:
                if getattr(case, "workflow", None) is not None:
                    pending.append(case.workflow)
    return names
