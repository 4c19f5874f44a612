"""Applying a stage: its parameter sets, what runs for each, their folders -> a :class:`PlannedStage`.

* ``singlestep-stage`` adds one step named after the stage (folder
  ``<scope folder>/<stage>``); ``multistep-stage`` and ``jq-stage`` add
  ``<stage>_<i>`` (folder ``<scope folder>/<stage>_<i>``). A stage that runs a
  ``workflow`` adds a *scope* per instance instead, with pointer
  ``<parent>/<stage>/<n>`` (``/map/0``), its own ``init`` (the instance's
  parameters) and folder (``WORKDIR/map_0``).
* ``{workdir}`` in any string parameter becomes the step's (or instance's) folder.
* ``register_values`` stores expressions in the scope, for ``fromvalue`` references.

Everything is computed before anything is recorded, so a problem (zip of
unequal lists, a missing output, a folder outside the work directory...) leaves
the run as it was and fails only that stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.model import JqStage, MultistepStage, SinglestepStage, Stage, StepSpec, Workflow
from mltoolkit.yadage.planner.folders import folder_name, step_folder
from mltoolkit.yadage.planner.records import PlannedStage, PlannedStep
from mltoolkit.yadage.planner.resolve import resolve_bindings, resolve_parameters
from mltoolkit.yadage.planner.scopes import Scope, StageEntry
from mltoolkit.yadage.planner.state import RunState
from mltoolkit.yadage.planner.upstream import upstream_steps
from mltoolkit.yadage.planner.values import fill_workdir
from mltoolkit.yadage.schedulers import jq_parameter_sets, scatter_parameters, select_case

__all__ = ["apply_stage"]


@dataclass
class _Choice:
    """One step or subworkflow instance the stage will add."""

    index: int | None
    parameters: dict[str, Any]
    runnable: StepSpec | Workflow
    name: str
    folder: Path


def _parameter_sets(state: RunState, scope: Scope, stage: Stage, where: str) -> list[tuple[int | None, dict[str, Any]]]:
    """(index, parameters) of each step the scheduler asks for; index ``None`` for a single step."""
    scheduler = stage.scheduler
    if isinstance(scheduler, SinglestepStage):
        return [(None, resolve_parameters(state, scope, stage, scheduler.parameters))]
    if isinstance(scheduler, MultistepStage):
        resolved = resolve_parameters(state, scope, stage, scheduler.parameters)
        expanded = scatter_parameters(
            resolved,
            scheduler.scatter,
            batchsize=scheduler.batchsize,
            partitionsize=scheduler.partitionsize,
            where=where,
        )
        return list(enumerate(expanded))
    if isinstance(scheduler, JqStage):
        bindings = resolve_bindings(state, scope, scheduler.bindings, stage)
        return list(enumerate(jq_parameter_sets(bindings, scheduler.stepscript, scheduler.postscript, where=where)))
    raise SpecError(f"{where}: unknown scheduler {type(scheduler).__name__}")  # the model admits no other


def _runnable(stage: Stage, parameters: dict[str, Any], where: str) -> StepSpec | Workflow | None:
    """What runs with ``parameters``: the stage's step or workflow, or the first matching case's (``None``: none)."""
    scheduler = stage.scheduler
    if not isinstance(scheduler, (SinglestepStage, MultistepStage, JqStage)):
        raise SpecError(f"{where}: unknown scheduler {type(scheduler).__name__}")  # the model admits no other
    cases = getattr(scheduler, "cases", None)
    if not cases:
        return scheduler.step or scheduler.workflow
    case = select_case(cases, parameters, where=where)
    return None if case is None else case.step or case.workflow


def _choices(state: RunState, scope: Scope, stage: Stage, where: str) -> list[_Choice]:
    """What runs for each parameter set (the matching case, if any) and in which folder."""
    choices: list[_Choice] = []
    for index, parameters in _parameter_sets(state, scope, stage, where):
        runnable = _runnable(stage, parameters, where)
        if runnable is None:
            continue
        name = folder_name(stage.name, index)
        folder = step_folder(state.workdir, scope.directory, name, where=where)
        if state.folder_in_use(folder):
            raise SpecError(
                f"{where}: step folder {folder} is already used by another step; rename the stage "
                "(a stage 'x' with several steps uses x_0, x_1, ...)"
            )
        choices.append(_Choice(index, parameters, runnable, name, folder))
    return choices


def _values_to_register(scope: Scope, stage: Stage, where: str) -> dict[str, Any]:
    registered: dict[str, Any] = {}
    for key, value in (getattr(stage.scheduler, "register_values", None) or {}).items():
        if key in scope.values:
            raise SpecError(
                f"{where}: register_values: {key!r} is already registered in scope "
                f"{scope.pointer or '/'}; values cannot be overwritten, pick another name"
            )
        registered[key] = value
    return registered


def _add(state: RunState, entry: StageEntry, choice: _Choice) -> PlannedStep | None:
    """Record one step (and return it planned) or start one subworkflow instance (``None``)."""
    filled = fill_workdir(choice.parameters, str(choice.folder))
    if not isinstance(choice.runnable, StepSpec):
        state.add_instance(entry, choice.runnable, filled, choice.folder)
        return None
    record = state.add_step(entry, choice.index, choice.name, choice.folder, filled)
    return PlannedStep(
        id=record.id,
        scope=record.scope,
        stage=record.stage,
        index=choice.index,
        name=choice.name,
        workdir=choice.folder,
        parameters=filled,
        step=choice.runnable,
        where=entry.stage.where if entry.stage is not None else "",
    )


def apply_stage(state: RunState, scope: Scope, entry: StageEntry) -> PlannedStage | None:
    """Apply a ready stage: record its steps and instances; the steps to run, or ``None`` if it added none.

    Raises:
        SpecError: the stage cannot be planned; the run is left unchanged.
    """
    stage = entry.stage
    if stage is None:
        raise SpecError("the init stage is applied from the start")
    where = f"{stage.where}: stage {stage.name!r}"
    choices = _choices(state, scope, stage, where)
    registered = _values_to_register(scope, stage, where)
    scope.values.update(registered)
    planned = [step for step in (_add(state, entry, choice) for choice in choices) if step is not None]
    state.finish_applying(entry)
    if not planned:
        return None
    scheduler_type = getattr(stage.scheduler, "scheduler_type", "singlestep-stage")
    upstream = tuple(upstream_steps(state, scope, stage))
    return PlannedStage(
        scope=scope.pointer, stage=stage.name, steps=planned, scheduler_type=scheduler_type, upstream=upstream
    )
