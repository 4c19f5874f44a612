"""Checks across the stages of a workflow, after each stage has validated on its own.

Within each workflow (nested ones included): stage names are unique; every
dependency and reference names an existing stage (or ``init``); no stage depends
on itself or, through others, in a cycle (found with :mod:`graphlib`, whose
``CycleError`` names the cycle); and a stage that reads outputs of another stage
depends on it, directly or through others -- otherwise it would race with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.model.references import OutputReference
from mltoolkit.yadage.model.workflow import Stage, Workflow
from mltoolkit.yadage.selectors import root_stage

__all__ = ["Locate", "check_workflow"]

#: Turns a path in the spec's data into "file line N (#/pointer)".
Locate = Callable[[list[Any]], str]

_INIT = "init"


@dataclass
class _Graph:
    """The dependencies of one workflow's stages."""

    names: dict[str, int]  # stage name -> index
    direct: dict[str, set[str]]  # stage -> the stages its dependencies name
    open_ended: set[str]  # stages with a dependency that may select any stage
    reach: dict[str, set[str]]  # stage -> every stage it depends on, directly or not

    @property
    def listing(self) -> str:
        return ", ".join([_INIT, *self.names])


def check_workflow(workflow: Workflow, path: list[Any], locate: Locate) -> None:
    """Run every cross-stage check on ``workflow`` (at ``path`` in the data) and its nested workflows.

    Also records where each stage and nested workflow is defined (for later messages).

    Raises:
        SpecError: the first problem found, as one line.
    """
    names = _check_unique_names(workflow, path, locate)
    direct, open_ended = _direct_dependencies(workflow, path, locate, names)
    reach = _transitive_dependencies(path, locate, names, direct)
    graph = _Graph(names, direct, open_ended, reach)
    for index, stage in enumerate(workflow.stages):
        stage_path = path + ["stages", index]
        for sub, reference in _references_of(stage):
            _check_reference(stage, stage_path + sub, reference, locate, graph)
        for sub_path, sub_workflow in _nested_workflows(stage, stage_path):
            sub_workflow.locate(locate(sub_path))
            check_workflow(sub_workflow, sub_path, locate)


def _check_unique_names(workflow: Workflow, path: list[Any], locate: Locate) -> dict[str, int]:
    """Stage name -> index; each stage learns where it is defined."""
    names: dict[str, int] = {}
    for index, stage in enumerate(workflow.stages):
        stage_path = path + ["stages", index]
        stage.locate(locate(stage_path))
        if stage.name in names:
            raise SpecError(
                f"{locate(stage_path + ['name'])}: stage name {stage.name!r} is used twice "
                f"(also stage #{names[stage.name]}); stage names must be unique within a workflow"
            )
        names[stage.name] = index
    return names


def _dependency_roots(stage: Stage) -> list[tuple[int, str | None]]:
    """(position, stage the expression starts from) of each dependency; ``None`` when unknowable."""
    expressions = stage.dependencies.expressions
    if stage.dependencies.dependency_type == "jsonpath_ready":
        return [(index, root_stage(expression)) for index, expression in enumerate(expressions)]
    return [(index, root_stage(reference.selection)) for index, reference in enumerate(expressions)]


def _direct_dependencies(
    workflow: Workflow, path: list[Any], locate: Locate, names: dict[str, int]
) -> tuple[dict[str, set[str]], set[str]]:
    """Stage -> the stages it names as dependencies; and the stages with an open-ended dependency."""
    listing = ", ".join([_INIT, *names])
    direct: dict[str, set[str]] = {}
    open_ended: set[str] = set()
    for index, stage in enumerate(workflow.stages):
        deps: set[str] = set()
        for position, root in _dependency_roots(stage):
            where = locate(path + ["stages", index, "dependencies", "expressions", position])
            if root is None:
                open_ended.add(stage.name)
            elif root != _INIT and root not in names:
                raise SpecError(
                    f"{where}: stage {stage.name!r} depends on unknown stage {root!r}; expected one of: {listing}"
                )
            elif root == stage.name:
                raise SpecError(f"{where}: stage {stage.name!r} depends on itself; remove that dependency")
            else:
                deps.add(root)
        direct[stage.name] = deps
    return direct, open_ended


def _transitive_dependencies(
    path: list[Any], locate: Locate, names: dict[str, int], direct: dict[str, set[str]]
) -> dict[str, set[str]]:
    """Stage -> every stage it depends on, directly or not (``init`` always).

    Raises:
        SpecError: the stages depend on each other in a cycle, so none of them could start.
    """
    try:
        order = list(TopologicalSorter(direct).static_order())
    except CycleError as error:
        # graphlib lists each stage before the one that depends on it; say it the other way round
        cycle = list(reversed(error.args[1]))
        where = locate(path + ["stages", names[cycle[0]], "dependencies"])
        raise SpecError(
            f"{where}: stages depend on each other in a cycle ({' -> '.join(cycle)}); "
            "none of them could ever start: remove one dependency"
        ) from None
    reach: dict[str, set[str]] = {}
    for name in order:  # dependencies come first
        found = {_INIT}
        for dep in direct.get(name, ()):
            found |= {dep} | reach.get(dep, set())
        reach[name] = found
    return reach


def _references_of(stage: Stage) -> list[tuple[list[Any], OutputReference]]:
    """(path inside the stage, reference) of every output reference the stage reads."""
    scheduler = stage.scheduler
    found: list[tuple[list[Any], OutputReference]] = []
    for group in ("parameters", "register_values"):
        for key, value in (getattr(scheduler, group, None) or {}).items():
            if isinstance(value, OutputReference):
                found.append((["scheduler", group, key], value))
    if stage.dependencies.dependency_type == "expressions_fulfilled":
        for index, value in enumerate(stage.dependencies.expressions):
            found.append((["dependencies", "expressions", index], value))
    return found


def _check_reference(stage: Stage, path: list[Any], reference: OutputReference, locate: Locate, graph: _Graph) -> None:
    """A reference names a known stage, and a parameter's reference one the stage depends on."""
    root = root_stage(reference.selection)
    if root is None:
        return
    if root != _INIT and root not in graph.names:
        raise SpecError(
            f"{locate(path)}: stage {stage.name!r} reads outputs of unknown stage {root!r}; "
            f"expected one of: {graph.listing}"
        )
    reads_parameter = path[-3:-1] == ["scheduler", "parameters"]
    if reads_parameter and stage.name not in graph.open_ended and root not in graph.reach[stage.name]:
        dependencies = stage.dependencies
        named = ", ".join(dependencies.expressions) if dependencies.dependency_type == "jsonpath_ready" else None
        raise SpecError(
            f"{locate(path)}: stage {stage.name!r} reads outputs of stage {root!r} but does not depend on it "
            f"(dependencies: {named if named is not None else 'expressions'}); add {root!r} to its dependencies"
        )


def _nested_workflows(stage: Stage, stage_path: list[Any]) -> Iterator[tuple[list[Any], Workflow]]:
    """(path, workflow) of every workflow the stage runs: its own, and those of its cases."""
    scheduler = stage.scheduler
    workflow = getattr(scheduler, "workflow", None)
    if workflow is not None:
        yield stage_path + ["scheduler", "workflow"], workflow
    for index, case in enumerate(getattr(scheduler, "cases", None) or []):
        if case.workflow is not None:
            yield stage_path + ["scheduler", "cases", index, "workflow"], case.workflow
