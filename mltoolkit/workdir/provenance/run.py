"""A run record as an in-memory Workflow Run RO-Crate: the run, its engine, the root dataset.

What the crate holds beyond the workflow (``workflow.py``), the software
(``software.py``) and the steps (``steps.py``):

* one ``CreateAction`` for the run: instrument the workflow, object the inputs
  (files as ``File``, other values as ``PropertyValue``), result the files of
  the sink steps (whose outputs no other step read), start/end time,
  ``actionStatus`` (and ``error`` when it failed);
* Prefect and mltoolkit as the instrument of an ``OrganizeAction`` (the engine
  run) whose object is every step's ``ControlAction``;
* the run record itself, ``about`` the run;
* the exact copies of what the run was given (``_mltoolkit/submitted/``), each
  with its sha256 from ``submitted.json``;
* the root dataset ``./``: the run's name, description, ``dateCreated``
  (start), ``datePublished`` (end), ``conformsTo`` the four profiles,
  ``mainEntity`` the workflow, ``mentions`` every ``CreateAction``, and a
  textual ``license`` unless the record has one.

Times are written with millisecond precision (run.json keeps microseconds).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.rocrate import ROCrate

from mltoolkit.workdir.layout import RUN_RECORD_FILE, SUBMITTED_DIR, SUBMITTED_MANIFEST_FILE
from mltoolkit.workdir.provenance.draft import CrateDraft
from mltoolkit.workdir.provenance.software import add_software
from mltoolkit.workdir.provenance.steps import StepActions, StepRun
from mltoolkit.workdir.provenance.values import iso, summary, without_none
from mltoolkit.workdir.provenance.vocabulary import (
    FAILED,
    NO_LICENSE,
    PROFILES,
    action_status,
    attempts_term,
    declare_contexts,
    declare_resources,
)
from mltoolkit.workdir.provenance.workflow import add_run_inputs, add_workflow
from mltoolkit.workdir.record import RunRecord

__all__ = ["as_run_record", "build_run_crate"]


def as_run_record(record: RunRecord | Mapping[str, Any]) -> RunRecord:
    """``record`` as the typed model (a mapping in ``run.json``'s format is validated)."""
    return record if isinstance(record, RunRecord) else RunRecord.model_validate(record)


@dataclass
class _Steps:
    """Every step's entities, and the counts the run's description needs."""

    actions: list[Entity] = field(default_factory=list)
    controls: list[Entity] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    first_failure: str | None = None
    runs: list[StepRun] = field(default_factory=list)


def build_run_crate(workdir: str | os.PathLike[str], record: RunRecord | Mapping[str, Any]) -> ROCrate:
    """The run ``record`` as an in-memory :class:`~rocrate.rocrate.ROCrate` (nothing written).

    Entities whose ids are workdir-relative paths have no source, so even a
    later ``crate.write()`` could not copy data; use :func:`write_run_crate`.
    """
    record = as_run_record(record)
    draft = CrateDraft.start(Path(workdir).resolve())
    declare_contexts(draft.crate)
    # Outputs first: a parameter naming a file a step wrote is that File even
    # if a later cleanup deleted it, and order in the list must not matter.
    draft.keys.register_outputs(relative for step in record.steps for relative in step.outputs)
    software = add_software(draft, record.software)
    workflow = add_workflow(draft, record)
    run_id = record.flow_run_id or str(uuid.uuid4())
    run_action = _run_action(draft, record, workflow.entity, run_id)
    actions = StepActions(draft, workflow.entity, software.applications, workflow.tool_version)
    steps = _Steps()
    for position, step in enumerate(record.steps):
        _note(steps, actions.add(position, step))
    _conclude_run(draft, record, run_action, steps)
    if software.engine:
        _engine_run(draft, record, software.engine, run_id, run_action, steps.controls)
    draft.files.link_examples()
    _add_run_record(draft, run_action)
    _add_submitted(draft, run_action)
    run_action["description"] = (
        f"{record.flow or 'workflow'} run {record.flow_run_id or ''} "
        f"({record.status or 'unknown status'}) of {len(record.steps)} step(s): {summary(steps.states)}"
    )
    _describe_root(draft, record, [run_action, *steps.actions], steps.states)
    draft.add(attempts_term(draft.crate))
    if any(step.resources is not None and step.resources.requested for step in record.steps):
        draft.add(declare_resources(draft.crate))
    return draft.crate


def _note(steps: _Steps, run: StepRun) -> None:
    steps.actions.append(run.action)
    steps.controls.append(run.control)
    steps.states[run.state] += 1
    steps.runs.append(run)
    if run.failure and steps.first_failure is None:
        steps.first_failure = run.failure


def _run_action(draft: CrateDraft, record: RunRecord, workflow: Entity, run_id: str) -> Entity:
    """The run's CreateAction: the workflow applied to the run's inputs."""
    inputs, formal_inputs = add_run_inputs(draft, record.inputs or {})
    if formal_inputs:
        workflow["input"] = formal_inputs
    return draft.crate.add_action(
        workflow,
        identifier=f"#workflow-run-{quote(run_id)}",
        object=inputs,
        properties=without_none(
            {
                "name": f"Run of {workflow.get('name') or 'the workflow'}",
                "identifier": record.flow_run_id,
                "startTime": iso(record.started),
                "endTime": iso(record.ended),
                "actionStatus": action_status(record.status),
            }
        ),
    )


def _conclude_run(draft: CrateDraft, record: RunRecord, run_action: Entity, steps: _Steps) -> None:
    """The run's result (the sink steps' files) and, when it failed, its error."""
    # The record does not say which files are the workflow's outputs: take
    # everything the sink steps (no output read by another step) wrote.
    consumed = set().union(*(run.inputs for run in steps.runs))
    finals = [
        draft.files[key]
        for run in steps.runs
        if run.outputs and consumed.isdisjoint(run.outputs)
        for key in run.outputs
    ]
    if finals:
        run_action["result"] = finals
    if action_status(record.status) == FAILED:
        failed = sum(count for state, count in steps.states.items() if action_status(state) == FAILED)
        first = steps.first_failure
        run_action["error"] = str(
            record.error or (f"{failed} step(s) failed; first: {first}" if first else "the run failed")
        )


def _engine_run(
    draft: CrateDraft, record: RunRecord, engine: list[Entity], run_id: str, run_action: Entity, controls: list[Entity]
) -> None:
    """Provenance Run Crate's OrganizeAction: the engine orchestrating the step runs."""
    names = " + ".join(str(application.get("name")) for application in engine)
    draft.crate.add_action(
        engine,
        identifier=f"#engine-run-{quote(run_id)}",
        object=controls,
        result=run_action,
        properties=without_none(
            {
                "@type": "OrganizeAction",
                "name": f"Run of {names}",
                "startTime": iso(record.started),
                "endTime": iso(record.ended),
                "actionStatus": action_status(record.status),
            }
        ),
    )


def _add_run_record(draft: CrateDraft, run_action: Entity) -> None:
    if not (draft.root / RUN_RECORD_FILE).is_file():
        return
    entity = draft.files.get(RUN_RECORD_FILE)
    entity["name"] = "mltoolkit run record"
    entity["about"] = run_action
    draft.files.add_facts(RUN_RECORD_FILE, with_hash=False)


def _add_submitted(draft: CrateDraft, run_action: Entity) -> None:
    """The copies of what was submitted, with the sha256 their manifest recorded (no hashing of a large dataset)."""
    manifest = draft.root / SUBMITTED_MANIFEST_FILE
    try:
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):  # none (an older run) or damaged: nothing to describe
        return
    for relative, digest in {**files, manifest.name: None}.items():
        key = f"{SUBMITTED_DIR}/{relative}"
        if not (draft.root / key).is_file():
            continue
        entity = draft.files.get(key)
        entity["description"] = "what the run was given, copied byte for byte when it started"
        entity["about"] = run_action
        draft.files.add_facts(key, with_hash=digest is None)
        if digest is not None:
            entity["sha256"] = digest


def _describe_root(draft: CrateDraft, record: RunRecord, actions: list[Entity], states: Counter[str]) -> None:
    root = draft.crate.root_dataset
    flow = record.flow or "workflow"
    root["name"] = f"{flow} run {record.flow_run_id or ''}".strip()
    root["description"] = (
        f"Provenance of one {flow} run of mltoolkit ({record.status or 'unknown status'}): "
        f"{sum(states.values())} step(s): {summary(states)}. "
        f"The work directory is the crate; the run record is {RUN_RECORD_FILE}."
    )
    if record.started:
        root["dateCreated"] = iso(record.started)
    # RO-Crate requires datePublished; the end of the run is when it was complete.
    if record.ended:
        root["datePublished"] = iso(record.ended)
    root["conformsTo"] = [
        draft.add(
            ContextEntity(
                draft.crate, profile_id, properties={"@type": "CreativeWork", "name": name, "version": version}
            )
        )
        for profile_id, (name, version) in PROFILES.items()
    ]
    # Process Run Crate: every CreateAction SHOULD be listed under mentions.
    root["mentions"] = actions
    root["license"] = str(record.license or NO_LICENSE)
