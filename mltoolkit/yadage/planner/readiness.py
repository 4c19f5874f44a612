"""When a stage may be applied: every dependency expression ready, or every reference fulfilled.

A stage name (or a JSONPath over the scope, such as ``'map.[*].stage1'``) is
ready when the stages it selects have been applied and all their steps --
recursively, all steps of selected subworkflow instances -- have published.
Unlike yadage, a JSONPath dependency is never ready while the stage it starts
from is unapplied, and one whose stage is done but selects nothing is ready
(yadage would wait forever).

Done-ness only ever goes from False to True, so each check resumes where the
last one stopped (a cursor in the scope's selection cache).
"""

from __future__ import annotations

import re

from mltoolkit.yadage.planner.resolve import resolve_reference
from mltoolkit.yadage.planner.scopes import Scope, StageEntry
from mltoolkit.yadage.planner.selection import item_done, match_objects, select_targets
from mltoolkit.yadage.planner.state import RunState
from mltoolkit.yadage.selectors import root_stage

__all__ = ["ready"]

_NON_MONOTONIC = re.compile(r"[\[:,]\s*-|\blast\b")


def _grows_monotonically(expression: str) -> bool:
    """True when new steps/stages can only add matches (no filters, negative indexes, 'last')."""
    return not (_NON_MONOTONIC.search(expression) or "?" in expression or "`" in expression)


def _all_done_from_cursor(scope: Scope, expression: str) -> bool:
    """Move the cached cursor past the matches that are done; True when all of them are."""
    version, objects, cursor = scope.selection_cache[expression]
    while cursor < len(objects) and item_done(objects[cursor]):
        cursor += 1
    scope.selection_cache[expression] = (version, objects, cursor)
    return cursor == len(objects)


def _expression_ready(state: RunState, scope: Scope, expression: str) -> bool:
    entry = scope.entries.get(expression)
    if entry is not None:
        return entry.done
    root = root_stage(expression)
    root_entry = scope.entries.get(root) if root is not None else None
    if root_entry is not None and not root_entry.applied:
        return False
    stale = scope.selection_cache.get(expression)
    if (
        stale is not None
        and stale[0] != scope.version
        and _grows_monotonically(expression)
        and not _all_done_from_cursor(scope, expression)
    ):
        # Views only grow, so what matched before still matches: while one of those
        # is unfinished there is no need to run the (costly) query again.
        return False
    if not match_objects(state, scope, expression):
        # yadage waits for a match; a root stage that is done and selects nothing never will
        return root_entry is not None and root_entry.done
    return _all_done_from_cursor(scope, expression)


def ready(state: RunState, scope: Scope, entry: StageEntry) -> bool:
    """True when ``entry``'s stage may be applied now.

    Raises:
        SpecError: a reference of an ``expressions_fulfilled`` dependency cannot be resolved.
    """
    stage = entry.stage
    if stage is None:
        return False  # init is applied from the start
    dependencies = stage.dependencies
    if dependencies.dependency_type == "jsonpath_ready":
        return all(_expression_ready(state, scope, expression) for expression in dependencies.expressions)
    for reference in dependencies.expressions:
        targets = select_targets(state, scope, reference.selection)
        if not targets or not all(item_done(target) for target in targets):
            return False
        if not resolve_reference(state, scope, reference, f"{stage.where}: dependency"):
            return False
    return True
