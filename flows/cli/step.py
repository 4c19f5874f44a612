"""``mltoolkit step`` (also ``python -m flows.spec_step``): one yadage step in isolation, like packtivity-run."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.cli.flow_run import check_workdir, run_flow_from_cli, warn_unquoted
from flows.cli.options import (
    ImageMap,
    Parameters,
    Retries,
    RetryDelay,
    StepTimeout,
    Toplevel,
    UnsafeNoQuoting,
    WorkdirArgument,
)

__all__ = ["step"]

Step = Annotated[str, typer.Argument(help="The step: STEPS.yml#/step_name.")]


def step(
    context: typer.Context,
    step: Step,
    workdir: WorkdirArgument,
    parameter: Parameters = None,
    toplevel: Toplevel = None,
    image_map: ImageMap = None,
    unsafe_no_quoting: UnsafeNoQuoting = False,
    step_timeout: StepTimeout = None,
    retries: Retries = 0,
    retry_delay: RetryDelay = 0.0,
) -> None:
    """Run one yadage STEP in WORKDIR with the -p parameters, like packtivity-run; print what it published."""
    # Imported here, not above: importing Prefect must wait for the start-up helpers (flows.cli).
    from flows.spec_step import spec_step
    from mltoolkit.yadage import load_step_ref, parse_image_map, validate_step
    from mltoolkit.yamlfiles import parse_assignments

    parameters = parse_assignments(parameter or [])
    validate_step(load_step_ref(step, toplevel))
    parse_image_map(list(image_map or []), None)
    workdir = check_workdir(workdir)
    warn_unquoted(unsafe_no_quoting)
    published = run_flow_from_cli(
        context,
        workdir,
        lambda: spec_step(
            step=step,
            workdir=str(workdir),
            parameters=parameters,
            toplevel=toplevel,
            image_map=list(image_map or []),
            quote=not unsafe_no_quoting,
            step_timeout=step_timeout,
            retries=retries,
            retry_delay_seconds=retry_delay,
        ),
    )
    typer.echo(json.dumps(published, indent=2))
