"""A plain executor for :class:`~mltoolkit.yadage.planner.WorkflowRun`: no Prefect, no server.

It is the reference for what an orchestrator adapter does (plan, run each step
with :func:`~mltoolkit.yadage.packtivity.run_step`, record, repeat) and the
baseline benchmarks compare against. Independent steps run on a thread pool
when ``max_workers > 1``; a failed step does not stop independent branches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from mltoolkit.errors import MLToolkitError
from mltoolkit.yadage.model import Workflow
from mltoolkit.yadage.packtivity import StepOptions, StepResult, run_step
from mltoolkit.yadage.planner import PlannedStep, WorkflowRun

__all__ = ["run_planned_step", "run_workflow"]


def run_planned_step(
    planned: PlannedStep,
    options: StepOptions | None = None,
    on_output: Callable[[str], None] | None = None,
) -> StepResult:
    """Run one planned step with :func:`run_step` (names and folder from the plan)."""
    return run_step(
        planned.step,
        planned.parameters,
        planned.workdir,
        options=options,
        name=planned.name,
        stage=planned.stage,
        on_output=on_output,
    )


def run_workflow(
    workflow: Workflow,
    init: dict[str, Any],
    workdir: str | os.PathLike[str],
    *,
    options: StepOptions | None = None,
    init_dir: str | os.PathLike[str] | None = None,
    max_workers: int = 1,
    on_output: Callable[[PlannedStep, str], None] | None = None,
) -> WorkflowRun:
    """Run a whole workflow to the end; returns the run (check ``run.status``, ``run.problems()``).

    Step failures (:class:`~mltoolkit.errors.MLToolkitError`) are recorded on the
    run, not raised; unexpected exceptions propagate.
    """
    options = options or StepOptions()
    if not options.shared_dirs:
        options.shared_dirs = (str(Path(workdir).resolve()),)
    run = WorkflowRun(workflow, init, workdir, init_dir=init_dir)

    def execute(planned: PlannedStep) -> StepResult:
        callback = (lambda line: on_output(planned, line)) if on_output else None
        return run_planned_step(planned, options, callback)

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        running: dict[Future, PlannedStep] = {}
        while True:
            for stage in run.advance():
                for planned in stage.steps:
                    run.mark_running(planned.id)
                    running[pool.submit(execute, planned)] = planned
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                planned = running.pop(future)
                try:
                    result = future.result()
                except MLToolkitError as error:
                    run.record_failure(planned.id, str(error))
                else:
                    run.record_success(planned.id, result.published)
    return run
