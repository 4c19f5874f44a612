"""Which drawn node feeds which: the arrows of the picture.

An arrow ``A -> B`` means B's stage depends on A's: one of B's stage's
dependencies (a stage name or a JSONPath such as ``'map.[*].stage1'``) selects
A, or selects a subworkflow instance that contains A. The expressions are
evaluated with the planner's own JSONPath parser over a *view* of each scope
that has the planner's shape: ``{stage: [entry, ...]}``, where an entry is a
step or a nested scope's view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mltoolkit.yadage.model import Stage, Workflow
from mltoolkit.yadage.planner import StepRecord
from mltoolkit.yadage.selectors import parse_jsonpath

__all__ = ["ScopeView", "StageEntries", "collapsed_id", "dependency_edges", "init_id", "placeholder_id"]

_NODE = "_nodeid"  # an entry that is one node
_OFFSET = "_offset"  # a nested scope's view, by its pointer


def init_id(pointer: str) -> str:
    """The id of a scope's virtual ``init`` node (step ids are ``<scope>/<name>``)."""
    return f"{pointer}/init"


def placeholder_id(pointer: str, stage: str) -> str:
    """The id of the box of a stage without steps (only a stage named ``<x>#stage`` could clash)."""
    return f"{pointer}/{stage}#stage"


def collapsed_id(pointer: str, stage: str) -> str:
    """The id of the one box a collapsed stage becomes."""
    return f"{pointer}/{stage}#collapsed"


class StageEntries(list[dict[str, Any]]):
    """A stage's list in a scope view; remembers which stage it is, as the planner's view does."""

    __slots__ = ("scope", "stage")

    def __init__(self, scope: str, stage: str) -> None:
        super().__init__()
        self.scope = scope
        self.stage = stage

    def add_node(self, node_id: str) -> None:
        """Add the entry of one node (a step or an ``init``)."""
        self.append({_NODE: node_id})

    def add_scope(self, view: dict[str, Any]) -> None:
        """Add the entry of a nested scope (a :attr:`ScopeView.view`)."""
        self.append(view)


@dataclass(eq=False)
class ScopeView:
    """One scope (the root or a subworkflow instance such as ``/map/0``) as the arrows see it."""

    pointer: str
    workflow: Workflow
    view: dict[str, Any] = field(init=False)
    #: stage name -> pointers of the subworkflow instances it started
    instances: dict[str, list[str]] = field(default_factory=dict)
    #: ids of every step in this scope, nested scopes included
    steps_below: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.view = {_OFFSET: self.pointer}
        self.add_stage("init").add_node(init_id(self.pointer))

    def add_stage(self, name: str) -> StageEntries:
        """The (new, empty) list of ``name``'s entries."""
        entries = StageEntries(self.pointer, name)
        self.view[name] = entries
        return entries


class _Resolver:
    def __init__(self, scopes: Mapping[str, ScopeView]) -> None:
        self.scopes = scopes

    def _scope_targets(self, view: Mapping[str, Any]) -> list[str]:
        scope = self.scopes[view[_OFFSET]]
        # an instance without steps yet is still a dependency: point at its init
        return list(scope.steps_below) or [init_id(scope.pointer)]

    def _values(self, pointer: str, expression: str) -> list[Any]:
        view = self.scopes[pointer].view
        direct = view.get(expression)
        if isinstance(direct, StageEntries):
            return [direct]
        try:
            return [match.value for match in parse_jsonpath(expression).find(view)]
        except (ValueError, TypeError):
            # the model validated every expression; one it still cannot parse draws no arrow
            return []

    def targets(self, pointer: str, expression: str) -> list[str]:
        """Node ids that ``expression`` selects in scope ``pointer`` (as the planner selects them)."""
        found: list[str] = []
        for value in self._values(pointer, expression):
            if isinstance(value, StageEntries):
                if not value:
                    found.append(placeholder_id(value.scope, value.stage))
                for item in value:
                    found.extend([item[_NODE]] if _NODE in item else self._scope_targets(item))
            elif isinstance(value, dict) and _NODE in value:
                found.append(value[_NODE])
            elif isinstance(value, dict) and _OFFSET in value:
                found.extend(self._scope_targets(value))
        return found


def _expressions(stage: Stage) -> Iterable[str]:
    dependencies = stage.dependencies
    for expression in dependencies.expressions:
        if dependencies.dependency_type == "jsonpath_ready":
            yield str(expression)
        else:
            yield str(getattr(expression, "selection", ""))


def dependency_edges(
    scopes: Mapping[str, ScopeView],
    steps_of: Mapping[tuple[str, str], list[StepRecord]],
    display: Mapping[str, str],
) -> list[tuple[str, str]]:
    """The arrows between *drawn* nodes, each once, in workflow order.

    ``steps_of`` maps ``(scope, stage)`` to that stage's records; ``display`` maps
    every node id (step, init, placeholder) to the drawn node showing it (itself,
    or the box of a collapsed stage). Ids are mapped before pairing, so a collapsed
    1,000-step stage yields one arrow per neighbour rather than 1,000.
    """
    resolver = _Resolver(scopes)
    found: dict[tuple[str, str], None] = {}
    for pointer, scope in scopes.items():
        for stage in scope.workflow.stages:
            dependants = dict.fromkeys(display[record.id] for record in steps_of.get((pointer, stage.name), ()))
            dependants.update(dict.fromkeys(display[init_id(sub)] for sub in scope.instances.get(stage.name, ())))
            if not dependants:
                dependants[display[placeholder_id(pointer, stage.name)]] = None
            sources: dict[str, None] = {}
            for expression in _expressions(stage):
                sources.update(dict.fromkeys(display[t] for t in resolver.targets(pointer, expression) if t in display))
            for source in sources:
                for dependant in dependants:
                    if source != dependant:  # arrows inside a collapsed stage vanish
                        found[(source, dependant)] = None
    return list(found)
