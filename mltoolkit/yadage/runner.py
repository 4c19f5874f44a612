"""A plain executor for :class:`~mltoolkit.yadage.planner.WorkflowRun`: no Prefect, no server.

It is the reference for what an orchestrator adapter does (plan, run each step
with :func:`~mltoolkit.yadage.packtivity.run_step`, record, repeat) and the
baseline benchmarks compare against. Independent steps run on a thread pool
when ``max_workers > 1``; a failed step does not stop independent branches.
With ``options.stub`` every step is a stub (:mod:`~mltoolkit.yadage.packtivity.stub`);
a human step is put to ``ask`` (a function that answers it), or fails without one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from mltoolkit.errors import MLToolkitError
from mltoolkit.yadage.model import Workflow
from mltoolkit.yadage.packtivity import StepOptions, StepResult, run_step
from mltoolkit.yadage.packtivity.manual import (
    HumanRequest,
    human_request,
    publish_answer,
    write_answer,
    write_request,
)
from mltoolkit.yadage.packtivity.stub import StubPlan, run_stub_step
from mltoolkit.yadage.planner import PlannedStep, WorkflowRun
from mltoolkit.yadage.readers import ReadOutputs, outputs_read

__all__ = ["Ask", "planned_request", "run_planned_step", "run_workflow", "stub_plan"]

#: Answers a human step: the values the person gives (see :mod:`~mltoolkit.yadage.packtivity.manual`).
Ask = Callable[[PlannedStep, HumanRequest], Mapping[str, Any]]


def run_planned_step(
    planned: PlannedStep,
    options: StepOptions | None = None,
    on_output: Callable[[str], None] | None = None,
) -> StepResult:
    """Run one planned step with :func:`run_step` (names and folder from the plan); a stub with ``options.stub``."""
    if options is not None and options.stub is not None:
        return run_stub_step(
            planned.step,
            planned.parameters,
            planned.workdir,
            name=planned.name,
            stage=planned.stage,
            reads=options.stub.reads.get(planned.stage),
        )
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
    ask: Ask | None = None,
) -> WorkflowRun:
    """Run a whole workflow to the end; returns the run (check ``run.status``, ``run.problems()``).

    Step failures (:class:`~mltoolkit.errors.MLToolkitError`) are recorded on the
    run, not raised; unexpected exceptions propagate. ``ask`` answers human steps
    (without it they fail: nobody can be asked).
    """
    options = options or StepOptions()
    if not options.shared_dirs:
        options.shared_dirs = (str(Path(workdir).resolve()),)
    run = WorkflowRun(workflow, init, workdir, init_dir=init_dir)
    reads = options.stub.reads if options.stub is not None else outputs_read(workflow)

    def execute(planned: PlannedStep) -> StepResult:
        if planned.step.human and ask is not None and options.stub is None:
            return _answer(planned, ask, reads)
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


def planned_request(planned: PlannedStep, reads: Mapping[str, ReadOutputs]) -> HumanRequest:
    """What the planned human step asks (``reads``: :func:`~mltoolkit.yadage.readers.outputs_read` of the spec)."""
    return human_request(
        planned.step,
        planned.parameters,
        planned.workdir,
        name=planned.name,
        stage=planned.stage,
        reads=reads.get(planned.stage),
    )


def _answer(planned: PlannedStep, ask: Ask, reads: Mapping[str, ReadOutputs]) -> StepResult:
    """Ask a human step's question, keep the question and answer in its folder, publish."""
    request = planned_request(planned, reads)
    write_request(request)
    answer = ask(planned, request)
    write_answer(request, answer)
    return StepResult(publish_answer(planned.step, request, answer), None, None, "", "human")


def stub_plan(workflow: Workflow) -> StubPlan:
    """The stub plan of ``workflow``: what later stages read from each stage."""
    return StubPlan(outputs_read(workflow))
