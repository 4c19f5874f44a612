"""``mltoolkit resume WORKDIR -p key=value``: answer a human step of a paused spec run.

A human step (``manual-instructions-*``) pauses its flow run with a form (see
:mod:`flows.spec_human`); the run's command prints this command line. RUN is
the paused run's work directory (the run of that folder that waits now) or its
flow run id. The command reads the paused run's form from the Prefect API,
checks the values against it (every required value given, no unknown one,
mappings where a mapping is asked), and resumes the run with them, which is
what the UI's *Resume* button does. ``--show`` prints the request and the form
instead. Values are YAML, as everywhere on our command lines (``-p
window='[110, 140]'``).

It talks to the API the run uses: the configured ``PREFECT_API_URL``, else the
server the run's command keeps for this ``PREFECT_HOME`` (one is started on the
same database when none is running).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from mltoolkit.errors import CommandLineError, HumanStepError

__all__ = ["PausedForm", "check_answer", "resume"]

RunArgument = Annotated[
    str,
    typer.Argument(
        metavar="RUN", help="The paused run: its work directory, or its flow run id (printed by the run's command)."
    ),
]
Answers = Annotated[
    list[str] | None,
    typer.Option("--parameter", "-p", help="A value the human step asks for: key=value, parsed as YAML. Repeatable."),
]
Show = Annotated[bool, typer.Option("--show", help="Print what the step asks and its form; resume nothing.")]


@dataclass(frozen=True)
class PausedForm:
    """The form a paused flow run waits for: its JSON schema and its description (Markdown)."""

    schema: dict[str, Any]
    description: str

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        """Field name -> its JSON schema."""
        return dict(self.schema.get("properties") or {})

    @property
    def required(self) -> list[str]:
        """The fields without a default."""
        return list(self.schema.get("required") or [])


def _as_flow_run_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def _checked_run(text: str) -> uuid.UUID | Path:
    """RUN as a flow run id, or as an existing work directory (resolved).

    Raises:
        CommandLineError: neither a flow run id nor a folder.
    """
    run_id = _as_flow_run_id(text)
    if run_id is not None:
        return run_id
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise CommandLineError(
            f"RUN {text!r}: neither a folder nor a flow run id; give the paused run's work directory "
            "or the flow run id its command printed"
        )
    return folder.resolve()


def _paused_run_of(client: Any, workdir: Path) -> uuid.UUID:
    """The flow run of ``workdir`` that is paused now.

    Raises:
        HumanStepError: no run of that folder is paused.
    """
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    for flow_run in client.read_flow_runs(flow_run_filter=paused, sort=FlowRunSort.START_TIME_DESC):
        if flow_run.parameters.get("workdir") == str(workdir):
            return flow_run.id
    raise HumanStepError(
        f"RUN {workdir}: no paused run of this folder on the Prefect API; nothing waits for an answer "
        "(is the run still going, and does this command use its PREFECT_API_URL / PREFECT_HOME?)"
    )


def check_answer(form: PausedForm, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` checked against the form (defaults left to the form).

    Raises:
        CommandLineError: a required value is missing, a value is unknown, or a mapping is not a mapping.
    """
    fields = form.fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise CommandLineError(
            f"-p {unknown[0]}: the paused step does not ask for it; it asks for: {', '.join(fields) or 'nothing'}"
        )
    missing = [name for name in form.required if name not in values]
    if missing:
        given = " ".join(f"-p {name}=VALUE" for name in missing)
        raise CommandLineError(f"the paused step also needs {', '.join(missing)}; add {given} (values are YAML)")
    for name, value in values.items():
        if fields[name].get("type") == "object" and not isinstance(value, dict):
            raise CommandLineError(f"-p {name}: found {value!r}, expected a mapping such as '{{key: value}}'")
        if fields[name].get("type") == "boolean" and not isinstance(value, bool):
            raise CommandLineError(f"-p {name}: found {value!r}, expected true or false")
    return values


def _paused_form(client: Any, run_id: uuid.UUID) -> PausedForm | None:
    """The form the paused run ``run_id`` waits for (``None``: it waits for no input).

    Raises:
        HumanStepError: no such run, or it is not paused.
    """
    from prefect.exceptions import ObjectNotFound
    from prefect.input.actions import read_flow_run_input
    from prefect.settings import PREFECT_API_URL

    try:
        flow_run = client.read_flow_run(run_id)
    except ObjectNotFound:
        raise HumanStepError(
            f"flow run {run_id}: not found on the Prefect API at {PREFECT_API_URL.value()}; run this command "
            "with the PREFECT_API_URL (and PREFECT_HOME) of the paused run's command"
        ) from None
    state = flow_run.state
    if state is None or not state.is_paused():
        raise HumanStepError(
            f"flow run {run_id} ({flow_run.name}) is {state.name if state else 'without a state'}, not paused: "
            "no step waits for an answer"
        )
    keyset = state.state_details.run_input_keyset
    if not keyset:
        return None
    schema = read_flow_run_input(keyset["schema"], flow_run_id=run_id) or {}
    description = read_flow_run_input(keyset["description"], flow_run_id=run_id) or ""
    return PausedForm(schema if isinstance(schema, dict) else {}, str(description))


def _show(form: PausedForm | None) -> None:
    if form is None:
        typer.echo("the paused run asks for no values: resume it with no -p")
        return
    typer.echo(form.description.rstrip())
    typer.echo("")
    for name, field in form.fields.items():
        need = "required" if name in form.required else "optional"
        typer.echo(f"-p {name}=...  ({need}) {field.get('description', '')}".rstrip())


def resume(run: RunArgument, parameter: Answers = None, show: Show = False) -> None:
    """Answer a human step: resume the paused RUN (work directory or flow run id) with the -p values it asks for."""
    from mltoolkit.yamlfiles import parse_assignments

    values = parse_assignments(parameter or [])
    target = _checked_run(run)
    from flows.startup.temporary_server import start_early, wait_until_ready

    start_early()  # before Prefect is imported: the API of the paused run's command
    wait_until_ready()
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        run_id = target if isinstance(target, uuid.UUID) else _paused_run_of(client, target)
        form = _paused_form(client, run_id)
    if show:
        _show(form)
        return
    answer = check_answer(form, values) if form is not None else {}
    if form is None and values:
        raise CommandLineError(f"-p {next(iter(values))}: the paused run asks for no values; resume it without -p")
    try:
        resume_flow_run(run_id, run_input=answer or None)
    except NotPausedError:
        raise HumanStepError(f"flow run {run_id}: no longer paused (answered or ended meanwhile)") from None
    except FlowPauseTimeout:
        raise HumanStepError(f"flow run {run_id}: its pause has expired; the run cannot resume any more") from None
    except RuntimeError as error:  # the server rejected the answer
        raise HumanStepError(f"flow run {run_id}: the answer was refused: {error}") from None
    typer.echo(f"resumed flow run {run_id}" + (f" with {json.dumps(answer, default=str)}" if answer else ""))
