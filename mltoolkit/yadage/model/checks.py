"""Checks across the stages of a workflow, after each stage has validated on its own.

Within each workflow (nested ones included): stage names are unique; every
dependency and reference names an existing stage (or ``init``); no stage depends
on itself or, through others, in a cycle (found with :mod:`graphlib`, whose
``CycleError`` names the cycle).

A stage that reads outputs of another stage but does not depend on it, directly
or through its dependencies, would race with it (yadage starts it anyway, and it
reads whatever has been published so far). Published specs do this, so the
dependency is added -- the stage waits for the one it reads -- and a warning
naming both stages is given once (:attr:`Workflow.warnings`).
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

__all__ = ["Locate", "Warn", "check_workflow"]

#: Turns a path in the spec's data into "file line N (#/pointer)".
Locate = Callable[[list[Any]], str]
#: Takes one warning line.
Warn = Callable[[str], None]

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


def check_workflow(workflow: Workflow, path: list[Any], locate: Locate, warn: Warn | None = None) -> None:
    """Run every cross-stage check on ``workflow`` (at ``path`` in the data) and its nested workflows.

    Also records where each stage and nested workflow is defined (for later
    messages), and adds the dependencies that references imply, each with a
    warning line handed to ``warn``.

    Raises:
        SpecError: the first problem found, as one line.
    """
    names = _check_unique_names(workflow, path, locate)
    direct, open_ended = _direct_dependencies(workflow, path, locate, names)
    reach = _transitive_dependencies(path, locate, names, direct)
    graph = _Graph(names, direct, open_ended, reach)
    readers: list[tuple[Stage, list[Any], OutputReference]] = []
    for index, stage in enumerate(workflow.stages):
        stage_path = path + ["stages", index]
        for sub, reference in _references_of(stage):
            _check_reference(stage, stage_path + sub, reference, locate, graph)
            if sub[:2] == ["scheduler", "parameters"] and stage.name not in open_ended:
                readers.append((stage, stage_path + sub, reference))
    _add_implied_dependencies(readers, path, locate, graph, warn or (lambda line: None))
    for index, stage in enumerate(workflow.stages):
        for sub_path, sub_workflow in _nested_workflows(stage, path + ["stages", index]):
            sub_workflow.locate(locate(sub_path))
            check_workflow(sub_workflow, sub_path, locate, warn)


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
    path: list[Any],
    locate: Locate,
    names: dict[str, int],
    direct: dict[str, set[str]],
    implied: dict[tuple[str, str], str] | None = None,
) -> dict[str, set[str]]:
    """Stage -> every stage it depends on, directly or not (``init`` always).

    ``implied``: (stage, dependency) -> where the reference that implies it is, for messages.

    Raises:
        SpecError: the stages depend on each other in a cycle, so none of them could start.
    """
    try:
        order = list(TopologicalSorter(direct).static_order())
    except CycleError as error:
        # graphlib lists each stage before the one that depends on it; say it the other way round
        cycle = list(reversed(error.args[1]))
        where = locate(path + ["stages", names[cycle[0]], "dependencies"])
        reading = [
            f"{stage!r} reads outputs of {dependency!r} ({origin})"
            for (stage, dependency), origin in (implied or {}).items()
            if stage in cycle and dependency in cycle
        ]
        because = f", because {'; '.join(reading)}" if reading else ""
        raise SpecError(
            f"{where}: stages depend on each other in a cycle ({' -> '.join(cycle)}){because}; "
            "none of them could ever start: remove one dependency"
        ) from None
    reach: dict[str, set[str]] = {}
    for name in order:  # dependencies come first
        found = {_INIT}
        for dep in direct.get(name, ()):
            found |= {dep} | reach.get(dep, set())
        reach[name] = found
    return reach


def _add_implied_dependencies(
    readers: list[tuple[Stage, list[Any], OutputReference]],
    path: list[Any],
    locate: Locate,
    graph: _Graph,
    warn: Warn,
) -> None:
    """Make each stage depend on the stages its parameters read from; warn once per pair.

    One dependency at a time, reach recomputed after each: a dependency added to a
    stage may already give its dependants what they read.

    Raises:
        SpecError: an added dependency closes a cycle.
    """
    implied: dict[tuple[str, str], str] = {}
    pending = list(readers)
    while pending:
        stage, where_path, reference = pending.pop(0)
        root = root_stage(reference.selection)
        if root is None or root in graph.reach[stage.name]:
            continue
        if root == stage.name:
            raise SpecError(
                f"{locate(where_path)}: stage {stage.name!r} reads its own outputs, which exist only after it "
                "ran; read them in a later stage"
            )
        implied[(stage.name, root)] = locate(where_path)
        graph.direct[stage.name].add(root)
        graph.reach.update(_transitive_dependencies(path, locate, graph.names, graph.direct, implied))
        _depend_on(stage, root, reference)
        warn(
            f"{locate(where_path)}: stage {stage.name!r} reads outputs of stage {root!r} but does not depend "
            f"on it, directly or through its dependencies; added the dependency, so {stage.name!r} waits for "
            f"{root!r} (yadage would start it without waiting); add {root!r} to its dependencies to say so"
        )


def _depend_on(stage: Stage, root: str, reference: OutputReference) -> None:
    """Add a dependency on ``root`` to ``stage``, in the form its dependencies are written in."""
    dependencies = stage.dependencies
    if dependencies.dependency_type == "jsonpath_ready":
        dependencies.expressions.append(root)
    else:  # expressions_fulfilled: ready once what the stage reads can be read
        dependencies.expressions.append(reference)


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
    """A reference names a known stage (or ``init``).

    Raises:
        SpecError: it names a stage the workflow does not have.
    """
    root = root_stage(reference.selection)
    if root is not None and root != _INIT and root not in graph.names:
        raise SpecError(
            f"{locate(path)}: stage {stage.name!r} reads outputs of unknown stage {root!r}; "
            f"expected one of: {graph.listing}"
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
