"""Human steps in a Prefect flow run: the run pauses with a form, a person resumes it with their values.

A human step (``manual-instructions-*``, see
:mod:`mltoolkit.yadage.packtivity.manual`) is asked with Prefect's own
primitive, :func:`prefect.flow_runs.apause_flow_run` with ``wait_for_input``:

* the flow run goes to ``Paused``; its form (:func:`answer_form`: one field per
  value to provide, or a confirmation) and the request as Markdown (the
  form's description) are stored with the run, so the Prefect UI shows the
  instructions above a *Resume* form;
* the terminal shows the same request and how to resume: the UI, or
  ``mltoolkit resume WORKDIR -p key=value`` (:mod:`flows.cli.resume`), or
  ``prefect.flow_runs.resume_flow_run(id, run_input={...})`` from Python;
* the answer comes back validated against the form; the step's task run
  (:func:`publish_human_step`, named after its stage) keeps it in the step's
  folder and publishes it (or, with an ordinary publisher, what the person left
  in the folder).

Nobody answering within the timeout fails the step with one line; the pause of
a flow run that expired cannot be resumed, so no further person is asked in
that run. Human steps are never cached: each run asks again.

Why the run pauses only when nothing else is left to run: Prefect's server
refuses to start any task run while its flow run is paused (its orchestration
rule ``PreventRunningTasksFromStoppedFlows``: a new task run gets a ``Paused``
state named ``NotReady`` and waits for the resume), while task runs already
running go on. Pausing as soon as a human step is ready would therefore hold up
every independent branch at its next step for as long as the person takes. So
the scheduler (:mod:`flows.spec_scheduler`) keeps ready human steps waiting
until no other step is running or ready -- every branch that does not need the
person runs to its end first -- and then asks, one human step at a time.

Why a pause, not a suspension: ``suspend_flow_run`` ends the flow run's process
and needs a deployment whose worker starts the run again once it is resumed;
``mltoolkit spec`` runs its flow in the command's own process, with no
deployment. ``pause_flow_run`` keeps that process waiting (it polls the API
every few seconds), which works for a command-line run, in a deployment's run
alike, and needs nothing else; the cost is a process that stays up while the
person takes their time (``--human-timeout``).
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import apause_flow_run
from prefect.input import RunInput
from prefect.logging import get_run_logger

from flows.run_record import now_iso
from flows.spec_tasks import StepOutcome, task_run_label
from mltoolkit.errors import HumanStepError
from mltoolkit.workdir.artifacts import sha256_file
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage import HumanRequest, PlannedStep, ReadOutputs, planned_request
from mltoolkit.yadage.packtivity.manual import publish_answer, write_answer, write_request

__all__ = [
    "CONFIRMATION",
    "answer_form",
    "ask_and_submit",
    "ask_person",
    "human_record",
    "pause_key",
    "publish_human_step",
    "resume_command",
]

#: The form field of a human step that publishes what its publisher finds: the person confirms.
CONFIRMATION = "done"


def answer_form(request: HumanRequest) -> type[RunInput]:
    """The Prefect run input model of a human step, with the request as its description (Markdown)."""
    fields: dict[str, Any] = {}
    for index, item in enumerate(request.fields):
        if item.required:
            spec = pydantic.Field(alias=item.key, title=item.key, description=item.description)
            fields[f"value_{index}"] = (Any, spec)
        else:
            spec = pydantic.Field(default_factory=dict, alias=item.key, title=item.key, description=item.description)
            fields[f"value_{index}"] = (dict[str, Any], spec)
    if not fields:
        done = pydantic.Field(True, title="done", description="I have done what the instructions ask")
        fields[CONFIRMATION] = (bool, done)
    model = pydantic.create_model("HumanStepAnswer", __base__=RunInput, **fields)
    return model.with_initial_data(description=request.markdown())


def pause_key(request: HumanRequest) -> str:
    """The pause's key: unique per step of the run, in the form Prefect accepts (lowercase, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{request.stage}-{request.name}".lower()).strip("-")
    digest = hashlib.sha256(f"{request.stage}\0{request.name}".encode()).hexdigest()[:8]
    return f"human-{slug[:60]}-{digest}"


def resume_command(request: HumanRequest, run: str) -> str:
    """The ``mltoolkit resume`` command line that answers ``request`` (``run``: the run's work directory or id)."""
    values = " ".join(f"-p {item.key}=VALUE" for item in request.fields if item.required)
    return f"mltoolkit resume {shlex.quote(run)}{' ' + values if values else ''}"


def _ui_link(flow_run_id: str) -> str:
    from prefect.utilities.urls import url_for

    url = url_for("flow-run", obj_id=flow_run_id)
    return f" ({url})" if url else ""


def _announce(request: HumanRequest, flow_run_id: str, run_root: str, timeout: float) -> None:
    """Show the request and how to resume on the terminal, and say it in the flow run's log."""
    lines = [
        "",
        request.text(),
        f"  the flow run {flow_run_id} is paused; resume it with the form in the Prefect UI{_ui_link(flow_run_id)},",
        f"  or run: {resume_command(request, run_root)}",
        f"  (values are YAML; without an answer within {timeout:g} s the step fails: --human-timeout)",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    get_run_logger().warning(
        "%s waits for a person: resume the paused run in the UI or with: %s",
        request.label,
        resume_command(request, run_root),
    )


async def ask_person(
    request: HumanRequest, run_root: str, *, timeout: float, poll_interval: float = 2.0
) -> dict[str, Any]:
    """Pause the current flow run (of work directory ``run_root``) until a person answers ``request``; the answer.

    Raises:
        HumanStepError: nobody answered within ``timeout`` seconds.
    """
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else "?"
    write_request(request)
    _announce(request, flow_run_id, run_root, timeout)
    seconds = max(1, math.ceil(timeout))
    try:
        answer = await apause_flow_run(
            wait_for_input=answer_form(request),
            timeout=seconds,
            poll_interval=max(1, math.ceil(min(poll_interval, seconds))),
            key=pause_key(request),
        )
    except FlowPauseTimeout:
        raise HumanStepError(
            f"{request.label}: nobody answered within {timeout:g} s (--human-timeout); a flow run whose pause "
            "expired cannot resume: run the workflow again (a longer --human-timeout gives people more time)"
        ) from None
    return answer.model_dump(by_alias=True)


async def ask_and_submit(
    planned: PlannedStep,
    reads: Mapping[str, ReadOutputs],
    run_root: str,
    timeout: float,
    poll_interval: float,
    annotations: dict[str, dict[str, Any]],
) -> Any:
    """Ask a person for a human step's answer (the run pauses), then submit the task run that publishes it.

    ``reads``: what later stages read (the form's fields); ``annotations`` gets the
    step's run record ``human`` field when asking and again once answered.
    Returns the task run's future.

    Raises:
        HumanStepError: nobody answered within ``timeout`` seconds.
        SpecError: the request cannot be filled in (the command of a manual environment).
    """
    asked = now_iso()
    request = planned_request(planned, reads)
    annotations[planned.id] = {"human": human_record(request, None, asked, None)}
    answer = await ask_person(request, run_root, timeout=timeout, poll_interval=poll_interval)
    annotations[planned.id] = {"human": human_record(request, answer, asked, now_iso())}
    task = publish_human_step.with_options(name=planned.stage)
    return task.submit(task_run_label(planned), planned, request, answer, asked, run_root)


def human_record(request: HumanRequest, answer: dict[str, Any] | None, asked: str, answered: str | None) -> dict:
    """The run record's ``human`` field of a step."""
    return {
        "instructions": dict(request.instructions),
        "asks_for": [item.key for item in request.fields],
        "asked": asked,
        "answered": answered,
        "answer": answer,
    }


def _folder_files(folder: Path, root: Path) -> dict[str, str]:
    """Files a person left in the step's folder: workdir-relative path -> sha256."""
    layout = WorkdirLayout(root)
    return {layout.relative(path): sha256_file(path) for path in sorted(folder.rglob("*")) if path.is_file()}


@task(name="human-step", task_run_name="{label}", cache_policy=NO_CACHE, persist_result=False)
def publish_human_step(
    label: str, planned: PlannedStep, request: HumanRequest, answer: dict[str, Any], asked: str, run_root: str
) -> StepOutcome:
    """Publish what a person answered to a human step (kept in ``_packtivity/<name>.answer.json``)."""
    write_answer(request, answer)
    published = publish_answer(planned.step, request, answer)
    return StepOutcome(
        published=published,
        files=_folder_files(planned.workdir, Path(run_root)),
        root=run_root,
        started=asked,
        ended=now_iso(),
    )
