"""How stages turn resolved parameters into parameter sets, one per step (pure functions).

* ``multistep-stage``: :func:`scatter_parameters` splits the ``scatter`` parameters
  (lists) with ``zip`` (lock-step; lists must have equal lengths) or
  ``cartesian`` (every combination, first parameter varying slowest); with
  ``batchsize: N`` each scattered list is first cut into chunks of N (the last
  may be shorter) and with ``partitionsize: P`` into P parts of near-equal size
  (sizes ``(n + k) // P`` for ``k = 0..P-1``, as yadage does), so each step gets
  *lists* of elements. Other parameters are copied to every step.
* ``jq-stage``: :func:`jq_parameter_sets` runs ``stepscript`` on the bindings;
  it must produce a list of objects, each then transformed by ``postscript``.
* ``cases``: :func:`select_case` picks the first case whose jq ``if`` is truthy
  on the step's parameters (Python truthiness of jq's first output, as yadage).

A stage schedules at most :data:`~mltoolkit.limits.SCATTER_STEPS` steps; the
count is known (a product of lengths for ``cartesian``) before any parameter set
is built, so a 1,000 x 1,000 x 1,000 scatter fails at once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.limits import SCATTER_STEPS
from mltoolkit.yadage.model import Case, Scatter
from mltoolkit.yadage.selectors import run_jq

__all__ = ["chunk", "jq_parameter_sets", "partition", "scatter_parameters", "select_case"]


def chunk(values: Sequence[Any], size: int) -> list[list[Any]]:
    """Consecutive chunks of ``size`` elements (the last one may be shorter)."""
    return [list(values[start : start + size]) for start in range(0, len(values), size)]


def partition(values: Sequence[Any], parts: int) -> list[list[Any]]:
    """``parts`` consecutive groups of near-equal size (fewer when there are fewer values)."""
    total = len(values)
    parts = min(parts, total)
    groups: list[list[Any]] = []
    end = 0
    for k in range(parts):
        begin, end = end, end + (total + k) // parts
        groups.append(list(values[begin:end]))
    return groups


def scatter_parameters(
    parameters: dict[str, Any],
    scatter: Scatter,
    *,
    batchsize: int | None = None,
    partitionsize: int | None = None,
    where: str = "multistep-stage",
) -> list[dict[str, Any]]:
    """One parameter set per step of a multistep stage.

    Raises:
        SpecError: a scattered parameter is not a list, or ``zip`` lists differ in length.
        LimitExceededError: the stage would have more steps than :data:`~mltoolkit.limits.SCATTER_STEPS`.
    """
    common = {key: value for key, value in parameters.items() if key not in scatter.parameters}
    columns: list[list[Any]] = []
    for name in scatter.parameters:
        value = parameters[name]
        if not isinstance(value, list):
            raise SpecError(
                f"{where}: scatter parameter {name!r} is {type(value).__name__} {value!r:.80}, expected a "
                "list to scatter over; make the parameter a list (e.g. {stages: ..., output: ...})"
            )
        if batchsize:
            value = chunk(value, batchsize)
        elif partitionsize:
            value = partition(value, partitionsize)
        columns.append(value)
    if scatter.method == "zip":
        lengths = {name: len(column) for name, column in zip(scatter.parameters, columns)}
        if len(set(lengths.values())) > 1:
            described = ", ".join(f"{name}: {length}" for name, length in lengths.items())
            raise SpecError(
                f"{where}: scatter method zip needs lists of equal length, found {described}; "
                "make them equal or use method: cartesian"
            )
        SCATTER_STEPS.check(len(columns[0]) if columns else 0, where, "scatter over shorter lists")
        combinations: Iterable[tuple[Any, ...]] = zip(*columns)
    else:
        count = math.prod(len(column) for column in columns)
        SCATTER_STEPS.check(count, where, f"cartesian scatter over {' x '.join(str(len(c)) for c in columns)} values")
        combinations = itertools.product(*columns)
    sets: list[dict[str, Any]] = []
    for combination in combinations:
        chosen = dict(zip(scatter.parameters, combination))
        # keep the spec's parameter order so commands and records read naturally
        sets.append({key: chosen[key] if key in chosen else common[key] for key in parameters})
    return sets


def jq_parameter_sets(
    bindings: Any,
    stepscript: str,
    postscript: str,
    *,
    where: str = "jq-stage",
) -> list[dict[str, Any]]:
    """Parameter sets of a jq stage: ``stepscript`` over the bindings, then ``postscript`` on each.

    Raises:
        SpecError: a program fails, or ``stepscript`` does not give a list of objects.
        LimitExceededError: more sets than :data:`~mltoolkit.limits.SCATTER_STEPS`, or a program
            over the jq limits.
    """
    try:
        sets = run_jq(stepscript, bindings)
    except ValueError as error:
        raise SpecError(f"{where}: stepscript: {error}; fix the jq program") from None
    if not isinstance(sets, list) or not all(isinstance(item, dict) for item in sets):
        raise SpecError(
            f"{where}: stepscript gave {type(sets).__name__} {sets!r:.100}, expected a list of "
            "objects (one per step), e.g. '[.items[] | {item: .}]'"
        )
    SCATTER_STEPS.check(len(sets), where, "the stepscript makes one step per object")
    finished: list[dict[str, Any]] = []
    for item in sets:
        try:
            after = run_jq(postscript, item)
        except ValueError as error:
            raise SpecError(f"{where}: postscript: {error}; fix the jq program") from None
        if not isinstance(after, dict):
            raise SpecError(
                f"{where}: postscript gave {type(after).__name__} {after!r:.100}, expected an object of parameters"
            )
        finished.append(after)
    return finished


def select_case(cases: Sequence[Case], parameters: Any, *, where: str = "cases") -> Case | None:
    """The first case whose ``if`` holds for ``parameters``; ``None`` when none does.

    Raises:
        SpecError: a condition fails to run.
    """
    for index, case in enumerate(cases):
        try:
            verdict = run_jq(case.condition, parameters)
        except ValueError as error:
            raise SpecError(f"{where}: case #{index} 'if': {error}; fix the condition") from None
        if verdict:
            return case
    return None
