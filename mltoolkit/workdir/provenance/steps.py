"""Stages and steps of a run as actions.

Per stage a ``HowToStep`` (the workflow's ``step``) and a tool
(``SoftwareApplication``, in the workflow's ``hasPart``) with one
``FormalParameter`` per parameter name. Per step a ``CreateAction``: instrument
the stage's tool; object its parameters (a path, URL or glob naming files ->
those ``File`` entities, shared with the step that wrote them; anything else ->
``PropertyValue``); result its output files with ``sha256`` (from the record)
and ``contentSize``; start and end time; ``actionStatus`` (COMPLETED/CACHED ->
completed, FAILED... -> failed, with ``error``); ``attempts``; the Prefect task
run id as ``identifier``; ``resources`` (an ad hoc term) the environment's
resources as ``PropertyValue`` entities, each described by what became of it
(applied, provided, ignored, with any warning). A ``ControlAction`` ties it to
its ``HowToStep``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.model.softwareapplication import SoftwareApplication

from mltoolkit.workdir.provenance.draft import CrateDraft
from mltoolkit.workdir.provenance.ids import is_uri, quote_path, stage_path
from mltoolkit.workdir.provenance.values import iso, property_value, without_none
from mltoolkit.workdir.provenance.vocabulary import FAILED, action_status
from mltoolkit.workdir.record import RunStep, StepResources

__all__ = ["StepActions", "StepRun"]


@dataclass
class StepRun:
    """What one step added to the crate, and what the run's summary needs from it."""

    action: Entity
    control: Entity
    state: str
    failure: str | None
    outputs: list[str] = field(default_factory=list)
    inputs: set[str] = field(default_factory=set)


@dataclass
class _StepNames:
    scope: str
    stage: str
    name: str
    state: str
    stage_path: str
    suffix: str  # what the step's entity ids end with


class StepActions:
    """Adds steps to a crate; stages and their tools are created once and shared by a stage's steps."""

    def __init__(self, draft: CrateDraft, workflow: Entity, software: list[Entity], tool_version: str | None) -> None:
        self._draft = draft
        self._workflow = workflow
        self._software = software
        self._tool_version = tool_version
        self._stages: dict[str, tuple[Entity, Entity]] = {}  # stage path -> (HowToStep, tool)
        self._tool_inputs: dict[str, Entity] = {}  # FormalParameter id -> entity

    def add(self, position: int, step: RunStep) -> StepRun:
        """The step's CreateAction and ControlAction (``position``: its place in the record)."""
        names = self._names(position, step)
        howto, tool = self._stage(names.stage_path, names.stage)
        outputs = {self._draft.keys.output_key(str(relative)): digest for relative, digest in step.outputs.items()}
        objects, inputs = self._objects(step, names, tool, outputs)
        results = self._results(outputs)
        properties = self._properties(step, names)
        action = self._draft.crate.add_action(
            tool, identifier=f"#step-run{names.suffix}", object=objects, result=results, properties=properties
        )
        if step.resources is not None and step.resources.requested:
            action["resources"] = self._resources(step.resources, names)
        control = self._draft.crate.add_action(
            howto,
            identifier=self._draft.ids.unique(f"#control{names.suffix}", position),
            object=action,
            properties={"@type": "ControlAction", "name": f"orchestrate {names.name}"},
        )
        failure = f"{names.name}: {properties['error']}" if "error" in properties else None
        return StepRun(action, control, names.state, failure, list(outputs), inputs)

    def _names(self, position: int, step: RunStep) -> _StepNames:
        scope = step.scope or ""
        stage = step.stage or step.name or "step"
        name = step.name or stage
        key = self._draft.ids.unique(f"#step-run{quote_path(step.id or f'{scope}/{name}')}", position)
        return _StepNames(
            scope=scope,
            stage=stage,
            name=name,
            state=(step.state or "PENDING").upper(),
            stage_path=stage_path(scope, stage),
            suffix=key[len("#step-run") :],
        )

    def _objects(
        self, step: RunStep, names: _StepNames, tool: Entity, outputs: dict[str, str]
    ) -> tuple[list[Entity], set[str]]:
        """The step's parameters as entities, and the keys of the files it read."""
        objects: list[Entity] = []
        inputs: set[str] = set()
        for raw_name, value in step.parameters.items():
            parameter = str(raw_name)
            keys = self._draft.keys.of_value(value)
            if keys is not None and not outputs.keys().isdisjoint(keys):
                # A parameter naming where the step writes (yadage's outfile,
                # outdir) is a value the step was given, not a file it consumed.
                keys = None
            formal = self._tool_input(names.stage_path, tool, parameter, value, keys is not None)
            value_id = f"#value{names.suffix}:{quote(parameter)}"
            objects.extend(self._draft.realise(parameter, value, keys, value_id, formal))
            inputs.update(keys or ())
        return objects, inputs

    def _resources(self, resources: StepResources, names: _StepNames) -> list[Entity]:
        """One PropertyValue per requested resource, described by what became of it."""
        entities: list[Entity] = []
        for position, item in enumerate(resources.requested):
            pairs = list(item.items()) if isinstance(item, dict) else [(str(item), True)]
            for key, value in pairs:
                fate = [
                    f"{label} {text}"
                    for label, text in (
                        ("applied:", resources.applied.get(key)),
                        ("provided by", resources.provided.get(key)),
                        ("ignored:", resources.ignored.get(key)),
                    )
                    if text
                ] + [warning for warning in resources.warnings if warning.startswith(key)]
                identifier = self._draft.ids.unique(f"#resource{names.suffix}:{quote(str(key))}", position)
                properties = {"@type": "PropertyValue", "name": str(key), "value": property_value(value)}
                if fate:
                    properties["description"] = "; ".join(fate)
                entities.append(self._draft.add(ContextEntity(self._draft.crate, identifier, properties=properties)))
        return entities

    def _results(self, outputs: dict[str, str]) -> list[Entity]:
        results: list[Entity] = []
        for key, digest in outputs.items():
            entity = self._draft.files.get(key)
            if digest:
                entity["sha256"] = str(digest)
            self._draft.files.add_facts(key, with_hash=False)  # the record has the sha256
            results.append(entity)
        return results

    def _properties(self, step: RunStep, names: _StepNames) -> dict[str, Any]:
        details = [f"stage {names.stage}"]
        if step.index is not None:
            details.append(f"index {step.index}")
        if names.scope:
            details.append(f"scope {names.scope}")
        details.append(f"state {names.state}")
        status = action_status(names.state)
        properties = without_none(
            {
                "name": f"Run of step {names.name}" + (f" ({names.scope})" if names.scope else ""),
                "description": ", ".join(details),
                "identifier": step.task_run_id,
                "startTime": iso(step.started),
                "endTime": iso(step.ended),
                "actionStatus": status,
                "attempts": step.attempts,
            }
        )
        if status == FAILED:
            properties["error"] = str(step.error) if step.error else f"step ended in state {names.state}"
        elif step.error:
            properties["description"] += f"; error: {step.error}"
        return properties

    def _stage(self, path: str, stage: str) -> tuple[Entity, Entity]:
        """The ``HowToStep`` and tool of a stage (one per stage, shared by its scattered steps)."""
        entry = self._stages.get(path)
        if entry is None:
            tool = self._tool(path, stage)
            howto = self._draft.add(
                ContextEntity(
                    self._draft.crate,
                    f"#stage{path}",
                    properties={
                        "@type": "HowToStep",
                        "name": stage,
                        "position": len(self._stages),
                        "workExample": tool,
                    },
                )
            )
            self._workflow.append_to("step", howto)
            self._workflow.append_to("hasPart", tool)
            entry = self._stages[path] = (howto, tool)
        return entry

    def _tool(self, path: str, stage: str) -> Entity:
        workflow = self._workflow
        description = f"The tool that runs stage {path.lstrip('/')} of {workflow.get('name')}"
        tool = self._draft.add(
            SoftwareApplication(
                self._draft.crate,
                f"#tool{path}",
                properties=without_none(
                    {
                        "name": stage,
                        "description": description,
                        # Its source is the workflow file (flow functions, or steps.yml next to workflow.yml).
                        "url": workflow.id if is_uri(workflow.id) else None,
                        "version": self._tool_version,
                    }
                ),
            )
        )
        if self._software:
            tool["softwareRequirements"] = self._software
        return tool

    def _tool_input(self, path: str, tool: Entity, name: str, value: Any, is_file: bool) -> Entity:
        identifier = f"#input{path}:{quote(name)}"
        formal = self._tool_inputs.get(identifier)
        if formal is None:
            formal = self._draft.formal_parameter(identifier, name, value, is_file)
            tool.append_to("input", formal)
            self._tool_inputs[identifier] = formal
        return formal
