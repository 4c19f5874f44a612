"""Which outputs of each stage the rest of the workflow reads.

Two publishers do not say what they publish: ``fromyaml-pub`` publishes whatever
the step writes into its YAML file, and ``manual-instructions-pub`` whatever a
person provides. What the workflow needs from such a step is what later stages
read from it: the ``output`` keys of the references that select the stage
(``{stages: fit, output: limits}``, ``{stages: 'map[*].fit', output: 'limits[0]'}``,
jq-stage bindings ``{$wflowref: ['.fit[]', '.limits']}``), in every workflow of the
spec, nested ones and cases included. :func:`outputs_read` collects them; a
human step's form asks for exactly those values and a stub run publishes them.

A selection names a stage when the stage's name is one of its plain field names
(``map[*].fit`` names ``map`` and ``fit``): a stage of the same name elsewhere in
the spec counts too, which can only add a value to ask for, never miss one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mltoolkit.yadage.model import JqStage, OutputReference, Stage, Workflow

__all__ = ["ReadOutputs", "init_outputs_read", "outputs_read", "stage_names"]

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_JQ_FIELD = re.compile(r"\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE = ("", "$", "@", ".")


@dataclass
class ReadOutputs:
    """What later stages read from one stage: output keys (each with the stages reading it), and
    whether any reads everything."""

    keys: dict[str, set[str]] = field(default_factory=dict)
    whole: bool = False

    def sorted_keys(self) -> list[str]:
        """The keys, sorted."""
        return sorted(self.keys)

    def add(self, key: str | None, reader: str) -> None:
        """Note that stage ``reader`` reads ``key`` (``None``: the whole publication)."""
        if key is None:
            self.whole = True
        else:
            self.keys.setdefault(key, set()).add(reader)


def stage_names(selection: str) -> set[str]:
    """The plain field names in a stage selection (``'map.[*].fit'`` -> ``{'map', 'fit'}``)."""
    return set(_FIELD.findall(selection))


def _output_key(output: str | None) -> str | None:
    """The top-level key an ``output`` selects (``limits[0]``, ``a.b`` -> ``limits``, ``a``); ``None``: all."""
    if output is None or output.strip() in _WHOLE:
        return None
    match = _FIELD.search(output.lstrip("$."))
    return match.group(0) if match else None


def _references(value: Any) -> Iterator[tuple[set[str], str | None]]:
    """(stages named, output key) of every reference inside a parameter value."""
    if isinstance(value, OutputReference):
        yield stage_names(value.selection), _output_key(value.output)
    elif isinstance(value, dict):
        reference = value.get("$wflowref")
        if isinstance(reference, list) and len(reference) == 2 and all(isinstance(p, str) for p in reference):
            keys = _JQ_FIELD.findall(reference[1])
            yield set(_JQ_FIELD.findall(reference[0])), keys[0] if keys else None
            return
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _stage_references(stage: Stage) -> Iterator[tuple[set[str], str | None]]:
    scheduler = stage.scheduler
    groups = [getattr(scheduler, "parameters", None), getattr(scheduler, "register_values", None)]
    if isinstance(scheduler, JqStage):
        groups.append(scheduler.bindings)
    for group in groups:
        yield from _references(list((group or {}).values()))
    yield from _references(list(stage.dependencies.expressions))


def _workflows(workflow: Workflow) -> Iterator[Workflow]:
    """``workflow`` and every workflow nested in it (stages and cases)."""
    yield workflow
    for stage in workflow.stages:
        scheduler = stage.scheduler
        nested = [getattr(scheduler, "workflow", None)]
        nested += [case.workflow for case in getattr(scheduler, "cases", None) or []]
        for inner in nested:
            if isinstance(inner, Workflow):
                yield from _workflows(inner)


def outputs_read(workflow: Workflow) -> dict[str, ReadOutputs]:
    """Stage name -> what the spec's references read from stages of that name (every stage listed)."""
    found: dict[str, ReadOutputs] = {}
    workflows = list(_workflows(workflow))
    for each in workflows:
        for stage in each.stages:
            found.setdefault(stage.name, ReadOutputs())
    for each in workflows:
        for stage in each.stages:
            for names, key in _stage_references(stage):
                for name in names & found.keys():
                    found[name].add(key, stage.name)
    return found


def init_outputs_read(workflow: Workflow) -> ReadOutputs:
    """What the top-level stages read from ``init`` (the inputs); nested workflows read their own parameters."""
    found = ReadOutputs()
    for stage in workflow.stages:
        for names, key in _stage_references(stage):
            if "init" in names:
                found.add(key, stage.name)
    return found
