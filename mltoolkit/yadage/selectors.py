"""Phase 3 of the spec loader: stage selection and output references.

yadage parameters can take values from earlier steps::

    input_data: {step: data_prep, output: prepped_data}            # one step, one value
    ml_inputs:  {stages: classification, output: ml_output,         # every step of the stage(s),
                 flatten: true}                                     # one value each, as a list

``stages``/``step`` is a JSONPath over the *scope* (the stages of the workflow
the referring stage belongs to): a plain stage name selects that stage's steps in
order; ``'map.[*].stage1'`` selects ``stage1`` inside every instance of the
subworkflow stage ``map``, in instance order. ``output`` is a JSONPath into each
selected step's published values (the whole result when absent) and must match
exactly once. ``unwrap: true`` turns a one-element list into its element;
``flatten: true`` splices list values into the combined list.

This module holds the pure pieces (parsing with a cache, combining values); the
scope bookkeeping lives in :mod:`mltoolkit.yadage.planner`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from mltoolkit.errors import JqProgramError, SpecError

__all__ = [
    "combine_outputs",
    "compile_jq",
    "is_plain_name",
    "parse_jsonpath",
    "root_stage",
    "run_jq",
    "select_output",
]

_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def is_plain_name(text: str) -> bool:
    """True when ``text`` is a bare stage name rather than a JSONPath expression."""
    return bool(_PLAIN_NAME.match(text))


@functools.lru_cache(maxsize=1024)
def parse_jsonpath(expression: str) -> Any:
    """Parse a JSONPath expression (cached: jsonpath-ng parsing costs milliseconds).

    Raises:
        ValueError: the expression is not valid JSONPath.
    """
    from jsonpath_ng import parse

    try:
        return parse(expression)
    except Exception as error:  # jsonpath-ng raises several unrelated types
        raise ValueError(f"{expression!r} is not a valid JSONPath expression ({error})") from None


def _flatten_child(node: Any) -> list[Any]:
    from jsonpath_ng.jsonpath import Child

    if isinstance(node, Child):
        return _flatten_child(node.left) + _flatten_child(node.right)
    return [node]


def root_stage(expression: str) -> str | None:
    """The stage name a selection starts from (``'map.[*].stage1'`` -> ``'map'``), if knowable.

    ``None`` for expressions that start anywhere (``$..stage1``) or do not parse.
    """
    if is_plain_name(expression):
        return expression
    try:
        parsed = parse_jsonpath(expression)
    except ValueError:
        return None
    from jsonpath_ng.jsonpath import Fields, Root, This

    parts = [part for part in _flatten_child(parsed) if not isinstance(part, (Root, This))]
    if parts and isinstance(parts[0], Fields) and len(parts[0].fields) == 1:
        name = parts[0].fields[0]
        return name if name != "*" else None
    return None


def select_output(result: Any, output: str | None, *, what: str) -> Any:
    """The single value ``output`` (a JSONPath, or a plain key) selects in a step's result.

    Raises:
        SpecError: no match or several matches; the message names ``what``.
    """
    if output is None or output in ("$", ""):
        return result
    if isinstance(result, dict) and output in result:
        return result[output]
    try:
        matches = parse_jsonpath(output).find(result)
    except ValueError as error:
        raise SpecError(f"{what}: {error}; fix 'output'") from None
    if not matches:
        keys = ", ".join(map(str, result)) if isinstance(result, dict) else type(result).__name__
        raise SpecError(
            f"{what}: output {output!r} matches nothing in the published values "
            f"(published: {keys or 'nothing'}); fix 'output' or the step's publisher"
        )
    if len(matches) > 1:
        raise SpecError(
            f"{what}: output {output!r} matches {len(matches)} values, expected exactly one; "
            "make the JSONPath select a single value"
        )
    return matches[0].value


def combine_outputs(values: Iterable[Any], *, flatten: bool, unwrap: bool) -> Any:
    """Combine per-step values into one list as yadage does.

    List values are kept as elements, or spliced in with ``flatten``; with
    ``unwrap`` a single-element result becomes that element.
    """
    combined: list[Any] = []
    for value in values:
        if flatten and isinstance(value, list):
            combined.extend(value)
        else:
            combined.append(value)
    if unwrap and len(combined) == 1:
        return combined[0]
    return combined


@functools.lru_cache(maxsize=512)
def compile_jq(program: str) -> Any:
    """Compile a jq program (cached).

    Raises:
        ValueError: the program does not compile; the message is jq's, on one line.
    """
    import jq

    try:
        return jq.compile(program)
    except ValueError as error:
        message = " ".join(str(error).split())
        raise ValueError(f"jq program {program.strip()!r} does not compile: {message}") from None


def run_jq(program: str, value: Any, *, multiple: bool = False) -> Any:
    """Run a jq program on a JSON-like value: its first output, or all outputs with ``multiple``.

    The program runs in a helper process, stopped after ``MLTOOLKIT_JQ_TIMEOUT`` seconds
    or ``MLTOOLKIT_JQ_MEMORY_MB`` of memory (:mod:`mltoolkit.processes.bounded_jq`).

    Raises:
        ValueError: the program fails to compile or to run.
        LimitExceededError: it went over the time or memory limit (a ``ValueError`` too).
    """
    from mltoolkit.processes.bounded_jq import run_jq_bounded

    try:
        return run_jq_bounded(program, value, multiple=multiple)
    except JqProgramError as error:
        outcome = "does not compile" if error.compiling else "failed"
        raise ValueError(f"jq program {program.strip()!r} {outcome}: {error}") from None
