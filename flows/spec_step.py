"""One yadage step in isolation, like ``packtivity-run``: develop and debug a step without its workflow.

::

    python -m flows.spec_step STEPS.yml#/data_prep_step WORKDIR -p dataset=... -p outfile=...

runs the step spec with the given parameters (``{workdir}`` in a value becomes
WORKDIR) as one Prefect task run and prints what it published, as JSON.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not {"-h", "--help"} & set(sys.argv[1:]):
    # Why here, before the imports below: see flows/startup.py.
    from flows.startup import prepare_cli_process

    prepare_cli_process()

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from prefect import flow, task
from prefect.logging import get_run_logger

from flows.cli_support import check_workdir, one_line_errors, run_app, run_flow_from_cli
from flows.startup.compute_pool import active_pool, pool_for_flow
from flows.expected_errors import install_expected_error_filter
from flows.run_guard import guarded_run
from mltoolkit.yadage import StepOptions, load_step_ref, parse_image_map, run_step, validate_step
from mltoolkit.yadage.planner import fill_workdir

install_expected_error_filter()

__all__ = ["app", "main", "spec_step"]


@task(name="spec-step", task_run_name="{name}")
def _run_one(
    name: str, step_ref: str, toplevel: str | None, parameters: dict[str, Any], workdir: str, options: StepOptions
) -> Any:
    logger = get_run_logger()
    step = validate_step(load_step_ref(step_ref, toplevel))
    result = run_step(
        step, parameters, workdir, options=options, name=name, on_output=lambda line: logger.info("%s", line)
    )
    return result.published


@flow(name="spec-step", description="Run one yadage step spec with given parameters (like packtivity-run).")
async def spec_step(
    step: str,
    workdir: str,
    parameters: dict[str, Any] | None = None,
    toplevel: str | None = None,
    image_map: list[str] | None = None,
    quote: bool = True,
    step_timeout: float | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
) -> Any:
    """Run the step ``step`` (``steps.yml#/name``) in ``workdir``; return what it published."""
    root = Path(workdir).resolve()
    values = fill_workdir(dict(parameters or {}), str(root))
    with guarded_run(root, "spec-step"), pool_for_flow():
        pool = active_pool()
        options = StepOptions(
            quote=quote,
            image_map=parse_image_map(list(image_map or []), None),
            zygote_socket=pool.socket_path if pool else None,
            timeout=step_timeout,
            shared_dirs=(str(root),),
        )
        name = step.rpartition("/")[2] or root.name
        runner = _run_one.with_options(retries=retries, retry_delay_seconds=retry_delay_seconds)
        return runner(name, step, toplevel, values, str(root), options)


app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Run one yadage step spec in isolation (like packtivity-run).",
)


@app.command()
@one_line_errors
def main(
    step: Annotated[str, typer.Argument(help="The step: STEPS.yml#/step_name.")],
    workdir: Annotated[Path, typer.Argument(help="The step's folder (created if missing).")],
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Parameter key=value (YAML).")
    ] = None,
    toplevel: Annotated[str | None, typer.Option("--toplevel", "-t", help="Folder STEPS.yml resolves against.")] = None,
    image_map: Annotated[
        list[str] | None, typer.Option("--image-map", help="Run a Docker image's steps locally: IMAGE=local.")
    ] = None,
    unsafe_no_quoting: Annotated[
        bool, typer.Option("--unsafe-no-quoting", help="Paste values into the command unquoted, like yadage (unsafe).")
    ] = False,
    step_timeout: Annotated[
        float | None, typer.Option("--step-timeout", min=0.001, help="Kill the step after this many seconds.")
    ] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries if the step fails.")] = 0,
    retry_delay: Annotated[float, typer.Option("--retry-delay", min=0, help="Seconds before a retry.")] = 0.0,
) -> None:
    """Run STEP in WORKDIR with the -p parameters; print what it published as JSON."""
    from mltoolkit.yamlfiles import parse_assignments

    parameters = parse_assignments(parameter or [])
    validate_step(load_step_ref(step, toplevel))
    parse_image_map(list(image_map or []), None)
    workdir = check_workdir(workdir)
    if unsafe_no_quoting:
        typer.echo("warning: --unsafe-no-quoting: parameter values go into the command unquoted", err=True)
    published = run_flow_from_cli(
        workdir,
        "python -m flows.spec_step",
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


if __name__ == "__main__":
    run_app(app, prog_name="python -m flows.spec_step")
