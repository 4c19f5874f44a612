"""Reference resolution: the values a stage's parameters and bindings read from published steps.

* ``{stages|step: SELECTION, output: KEY}`` reads ``KEY`` from every selected
  step (:func:`~mltoolkit.yadage.selectors.select_output`), combined as yadage
  does (``flatten``, ``unwrap``); a selection that matches subworkflow instances
  reads the value ``KEY`` registered inside each of them.
* ``{expression_type: fromvalue, key: K}`` reads a value registered in the scope.
* jq-stage bindings may hold ``{$wflowref: [NODES_JQ, RESULT_JQ]}``: a jq program
  over the scope's view selects steps, another runs on each one's published values.

Every value handed out is a copy: steps can never change what others published.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.model import OutputReference, Stage, ValueReference
from mltoolkit.yadage.planner.scopes import Scope, StepNode
from mltoolkit.yadage.planner.selection import select_targets
from mltoolkit.yadage.planner.state import RunState
from mltoolkit.yadage.selectors import combine_outputs, run_jq, select_output

__all__ = ["resolve_bindings", "resolve_parameters", "resolve_reference", "resolve_value"]


def _published_targets(state: RunState, scope: Scope, reference: OutputReference, what: str) -> list[Any]:
    """The steps and instances a reference selects; every selected step must have published."""
    targets = select_targets(state, scope, reference.selection)
    for target in targets:
        if isinstance(target, StepNode) and not target.done:
            record = target.record
            raise SpecError(
                f"{what}: reads step {record.id} of stage {record.stage!r}, which has not published "
                f"(state {record.state}); add {record.stage!r} to the stage's dependencies"
            )
    return targets


def resolve_reference(state: RunState, scope: Scope, reference: OutputReference, what: str) -> Any:
    """The value(s) ``reference`` reads in ``scope``.

    Raises:
        SpecError: a selected step has not published, ``step:`` selects other than one step,
            or ``output`` does not match exactly once.
    """
    targets = _published_targets(state, scope, reference, what)
    if reference.single:
        steps = [target for target in targets if isinstance(target, StepNode)]
        if len(steps) != 1:
            raise SpecError(
                f"{what}: step: {reference.selection!r} selects {len(steps)} steps, expected exactly "
                "one; use 'stages:' to collect values from several steps"
            )
        return copy.deepcopy(
            select_output(steps[0].result, reference.output, what=f"{what} (step {steps[0].record.id})")
        )
    values: list[Any] = []
    for target in targets:
        if isinstance(target, StepNode):
            values.append(select_output(target.result, reference.output, what=f"{what} (step {target.record.id})"))
        elif isinstance(target, Scope) and reference.output in target.values:
            where = f"{what} (value {reference.output!r} registered in {target.pointer})"
            values.append(resolve_value(state, target, target.values[reference.output], where))
    return copy.deepcopy(combine_outputs(values, flatten=reference.flatten, unwrap=reference.unwrap))


def resolve_value(state: RunState, scope: Scope, value: Any, what: str) -> Any:
    """A parameter value with its reference (if it is one) resolved.

    Raises:
        SpecError: as :func:`resolve_reference`; or a ``fromvalue`` key is not registered.
    """
    if isinstance(value, OutputReference):
        return resolve_reference(state, scope, value, what)
    if isinstance(value, ValueReference):
        if value.key not in scope.values:
            known = ", ".join(scope.values) or "none"
            raise SpecError(
                f"{what}: no value {value.key!r} registered in scope {scope.pointer or '/'} "
                f"(registered: {known}); register it with register_values in an earlier stage"
            )
        return resolve_value(state, scope, scope.values[value.key], f"{what} (value {value.key!r})")
    return copy.deepcopy(value)


def resolve_parameters(state: RunState, scope: Scope, stage: Stage, parameters: dict[str, Any]) -> dict[str, Any]:
    """A stage's parameters with every reference resolved."""
    return {
        key: resolve_value(state, scope, value, f"{stage.where}: stage {stage.name!r} parameter {key!r}")
        for key, value in parameters.items()
    }


def _rebuild(value: Any, marker: str, replace: Callable[[dict], Any]) -> Any:
    """A copy of a JSON-like tree where every mapping that has the key ``marker`` is ``replace(mapping)``."""
    if isinstance(value, list):
        return [_rebuild(item, marker, replace) for item in value]
    if not isinstance(value, dict):
        return value
    if marker in value:
        return replace(value)
    return {key: _rebuild(item, marker, replace) for key, item in value.items()}


def _step_result(state: RunState, node_view: dict, result_script: str, where: str) -> Any:
    """``result_script`` run on what the step a $wflowref selected (``{_nodeid: ...}``) published."""
    node = state.find_node(node_view["_nodeid"])
    if node is None or not node.done:
        raise SpecError(
            f"{where}: $wflowref selects step {node_view['_nodeid']}, which has not "
            "published; add its stage to the dependencies"
        )
    try:
        return run_jq(result_script, node.result, multiple=True)
    except ValueError as error:
        raise SpecError(f"{where}: {error}") from None


def _wflowref(state: RunState, scope: Scope, value: dict, where: str) -> Any:
    """The value of ``{$wflowref: [NODES_JQ, RESULT_JQ]}``: the selected steps' results."""
    node_script, result_script = value["$wflowref"]
    try:
        structure = run_jq(node_script, scope.view, multiple=True)
    except ValueError as error:
        raise SpecError(f"{where}: {error}") from None
    return _rebuild(structure, "_nodeid", lambda node_view: _step_result(state, node_view, result_script, where))


def resolve_bindings(state: RunState, scope: Scope, bindings: Any, stage: Stage) -> Any:
    """jq-stage bindings with every ``{$wflowref: [NODES_JQ, RESULT_JQ]}`` replaced.

    Raises:
        SpecError: a jq program fails, or a selected step has not published.
    """
    where = f"{stage.where}: stage {stage.name!r} bindings"
    return _rebuild(bindings, "$wflowref", lambda value: _wflowref(state, scope, value, where))
