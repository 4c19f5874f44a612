"""One yadage step in isolation, like ``packtivity-run``: develop and debug a step without its workflow.

::

    python -m flows.spec_step STEPS.yml#/data_prep_step WORKDIR -p dataset=... -p outfile=...

(the same as ``mltoolkit step``; the command line is :mod:`flows.cli.step`) runs the
step spec with the given parameters (``{workdir}`` in a value becomes WORKDIR) as
one Prefect task run and prints what it published, as JSON.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Delegated before the imports below, so that the command starts the API server
    # and the warm workers before Prefect is imported (see flows/startup/__init__.py), and
    # this module is imported once, under its own name.
    from flows.cli import run_module_command

    run_module_command("step", prog_name="python -m flows.spec_step")

from pathlib import Path
from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from flows.expected_errors import install_expected_error_filter
from flows.json_flow import json_flow
from flows.run_guard import guarded_run
from flows.startup.compute_pool import active_pool, pool_for_flow
from flows.step_log import CappedStepLog
from mltoolkit.workdir.layout import step_private_dir
from mltoolkit.yadage import StepOptions, load_step_ref, parse_image_map, run_step, validate_step
from mltoolkit.yadage.planner import fill_workdir

__all__ = ["spec_step"]


@task(name="spec-step", task_run_name="{name}")
def _run_one(
    name: str, step_ref: str, toplevel: str | None, parameters: dict[str, Any], workdir: str, options: StepOptions
) -> Any:
    logger = get_run_logger()
    step = validate_step(load_step_ref(step_ref, toplevel))
    log = CappedStepLog(logger, step_private_dir(workdir) / f"{name}.run.log")
    result = run_step(step, parameters, workdir, options=options, name=name, on_output=log)
    return result.published


@json_flow(name="spec-step", description="Run one yadage step spec with given parameters (like packtivity-run).")
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
    install_expected_error_filter()  # where the run starts: our errors are logged as their one line
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
