"""What a stage selection names in a scope: stage entries, steps, subworkflow instances.

A selection is a stage name or a JSONPath over the scope's view
(``'map.[*].stage1'``); matches are cached per scope until the scope (or one
inside it) gains steps or instances.
"""

from __future__ import annotations

from typing import Any

from mltoolkit.yadage.planner.scopes import EntryView, Scope, StageEntry, StepNode
from mltoolkit.yadage.planner.state import RunState
from mltoolkit.yadage.selectors import parse_jsonpath

__all__ = ["item_done", "match_objects", "select_targets"]


def item_done(item: Any) -> bool:
    """True when a step has published, or a stage or instance has finished all its steps."""
    if isinstance(item, (StepNode, Scope, StageEntry)):
        return item.done
    return True


def match_objects(state: RunState, scope: Scope, expression: str) -> list[Any]:
    """Entries, steps and scopes a JSONPath selects in ``scope`` (cached per structure version)."""
    cached = scope.selection_cache.get(expression)
    if cached is not None and cached[0] == scope.version:
        return cached[1]
    objects: list[Any] = []
    for match in parse_jsonpath(expression).find(scope.view):
        value = match.value
        if isinstance(value, EntryView):
            objects.append(value.entry)
        elif isinstance(value, dict) and "_nodeid" in value:
            objects.append(state.find_node(value["_nodeid"]))
        elif isinstance(value, dict) and "_offset" in value:
            objects.append(state.find_scope(value["_offset"]))
    scope.selection_cache[expression] = (scope.version, objects, 0)
    return objects


def select_targets(state: RunState, scope: Scope, selection: str) -> list[Any]:
    """Steps and subworkflow scopes a stage selection names, in order."""
    entry = scope.entries.get(selection)
    if entry is not None:
        return list(entry.items)
    targets: list[Any] = []
    for matched in match_objects(state, scope, selection):
        if isinstance(matched, StageEntry):
            targets.extend(matched.items)
        else:
            targets.append(matched)
    return targets
