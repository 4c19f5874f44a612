"""Which steps a stage's steps wait for: the steps its dependency expressions select.

A stage depends on stages (a name, or a JSONPath such as ``'map.[*].stage1'``);
its steps therefore depend on every step of those stages, and on every step
inside a selected subworkflow instance. ``init`` is not a step: in the root it
adds nothing, in a subworkflow instance it stands for the instance's inputs, so
it leads to the steps the stage that started the instance depended on.

Executors use this to tell their engine about the edges of the workflow graph
(Prefect's ``wait_for``), the same edges ``--visualize`` draws.
"""

from __future__ import annotations

from mltoolkit.yadage.model import Stage
from mltoolkit.yadage.planner.scopes import InitNode, Scope, StepNode
from mltoolkit.yadage.planner.selection import select_targets
from mltoolkit.yadage.planner.state import RunState

__all__ = ["upstream_steps"]


def upstream_steps(state: RunState, scope: Scope, stage: Stage) -> list[str]:
    """Ids of the steps ``stage`` (in ``scope``) depends on, each once, in selection order."""
    found: dict[str, None] = {}
    for expression in stage.dependencies.expressions:
        selection = expression if isinstance(expression, str) else expression.selection
        for target in select_targets(state, scope, selection):
            _collect(state, target, found)
    return list(found)


def _collect(state: RunState, target: object, found: dict[str, None]) -> None:
    if isinstance(target, InitNode):
        parent_entry = target.entry.scope.parent_entry
        if parent_entry is not None and parent_entry.stage is not None:
            found.update(dict.fromkeys(upstream_steps(state, parent_entry.scope, parent_entry.stage)))
    elif isinstance(target, StepNode):
        found[target.record.id] = None
    elif isinstance(target, Scope):
        for name, entry in target.entries.items():
            if name == "init":
                continue  # the instance's inputs: already upstream of whatever selected it
            for item in entry.items:
                _collect(state, item, found)
