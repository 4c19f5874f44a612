"""Turn pydantic's validation errors into one line each: where, what was found, what was expected, how to fix.

A line reads ``FILE line N (#/json/pointer): stage 'outer' > 'inner', key
scheduler.step.process: PROBLEM; HINT``. The location comes from the loaded spec
(:meth:`~mltoolkit.yadage.load.LoadedSpec.where`), so an error inside a file
reached through ``$ref`` names that file.
"""

from __future__ import annotations

from typing import Any, NoReturn

from pydantic import ValidationError

from mltoolkit.errors import SpecError, UnsupportedFeatureError
from mltoolkit.yadage.load import LoadedSpec, format_pointer
from mltoolkit.yadage.model.base import (
    ENVIRONMENT_TYPES,
    NULL_TAG,
    PROCESS_TYPES,
    PUBLISHER_TYPES,
    SCHEDULER_TYPES,
    UNKNOWN_TAG,
    UNSUPPORTED_TAG,
)

__all__ = ["raise_validation_error"]

_HINTS = {
    "missing": "add it",
    "unknown_key": "remove or rename it",
    "literal_error": "use one of the expected values",
    "union_tag_invalid": "use one of the expected values",
    "missing_type": "add it",
    "unknown_type": "use one of the expected values",
    "unsupported_feature": "rewrite that part of the spec or run it with yadage itself",
    "jq_syntax": "fix the jq program",
    "bad_selector": "fix the expression",
    "bad_parameter": "fix the value",
    "reference_selector": "keep one",
    "bad_name": "rename the stage",
    "bad_resource": "fix the resource",
    # these messages already say how to fix the problem
    "scatter_unknown": "",
    "batch_and_partition": "",
    "missing_runnable": "",
    "ambiguous_runnable": "",
}

# Our own error types: their message is the problem, and their context may point deeper.
_OWN_TYPES = frozenset(
    {
        "unknown_key",
        "missing_type",
        "unknown_type",
        "unsupported_feature",
        "bad_dependency",
        "scatter_unknown",
        "batch_and_partition",
        "ambiguous_runnable",
        "missing_runnable",
        "reference_selector",
        "bad_selector",
        "jq_syntax",
        "bad_wflowref",
        "bad_parameter",
        "bad_name",
        "bad_resource",
    }
)

# Parts of pydantic's error locations that name union members, not keys of the data.
_UNION_TAGS = frozenset(
    {"reference", "value", "literal", UNSUPPORTED_TAG, UNKNOWN_TAG, NULL_TAG}
    | set(PROCESS_TYPES + ENVIRONMENT_TYPES + PUBLISHER_TYPES + SCHEDULER_TYPES)
)


def _is_index(node: Any, part: Any) -> bool:
    return (isinstance(node, dict) and part in node) or (
        isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
    )


def _data_path(data: Any, loc: tuple[Any, ...]) -> list[Any]:
    """Map a pydantic error location to a path in the data (dropping union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if _is_index(node, part):
            node = node[part]
            path.append(part)
        elif isinstance(node, (dict, list)) and isinstance(part, str) and (part in _UNION_TAGS or part.endswith("]")):
            continue  # pydantic's tags for union members and Optional[...] / list[...] branches
        else:
            path.append(part)
            node = None
    return path


def _stage_chain(data: Any, path: list[Any]) -> tuple[list[str], int]:
    """Names of the (nested) stages ``path`` goes through, and where the innermost starts."""
    names: list[str] = []
    start = 0
    node = data
    for index, part in enumerate(path):
        if not _is_index(node, part):
            break
        parent_key = path[index - 1] if index else None
        in_list = isinstance(node, list)
        node = node[part]
        if in_list and parent_key == "stages" and isinstance(node, dict):
            names.append(str(node.get("name", f"#{part}")))
            start = index + 1
    return names, start


def _describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _problem(error: Any, path: list[Any]) -> tuple[list[Any], str]:
    """The path the problem is at, and the problem in words."""
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "missing":
        # the missing key is part of loc already; point at the mapping that lacks it
        missing_key = path.pop() if path else "?"
        return path, f"missing required key {missing_key!r}"
    if kind in _OWN_TYPES:
        return path + list(context.get("subpath", [])), error["msg"]
    if kind in ("literal_error", "union_tag_invalid"):
        expected = context.get("expected") or context.get("expected_tags") or ""
        found = error.get("input") if kind == "literal_error" else context.get("tag")
        if kind == "union_tag_invalid":
            path = path + [str(context.get("discriminator", "")).rstrip("()")]
        return path, f"found {found!r}, expected {expected}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message.replace("Input should be", "expected")
    return path, f"found {_describe_value(error.get('input'))}, {message[0].lower() + message[1:]}"


def _error_line(error: Any, data: Any, loaded: LoadedSpec | None, what: str) -> str:
    path, problem = _problem(error, _data_path(data, tuple(error["loc"])))
    names, start = _stage_chain(data, path)
    key = ".".join(str(part) for part in path[start:]) or "(the mapping itself)"
    where = loaded.where(path) if loaded is not None else f"{what} #{format_pointer(path)}"
    stage = f"stage {' > '.join(repr(n) for n in names)}, " if names else ""
    hint = _HINTS.get(error["type"], "fix it there")
    return f"{where}: {stage}key {key}: {problem}" + (f"; {hint}" if hint else "")


def raise_validation_error(exc: ValidationError, data: Any, loaded: LoadedSpec | None, what: str) -> NoReturn:
    """Raise the first problem of ``exc`` as one line (``error.problems`` lists all of them).

    Raises:
        UnsupportedFeatureError: the first problem is a construct this loader does not implement.
        SpecError: otherwise.
    """
    errors = exc.errors(include_url=False)
    # An unsupported construct needs another fix than a typo: report it first.
    errors.sort(key=lambda error: error["type"] != "unsupported_feature")
    lines = [_error_line(error, data, loaded, what) for error in errors]
    first = lines[0]
    if len(lines) > 1:
        first += f" (and {len(lines) - 1} more problem{'s' if len(lines) > 2 else ''})"
    error_type = UnsupportedFeatureError if errors[0]["type"] == "unsupported_feature" else SpecError
    error = error_type(first)
    error.problems = lines  # type: ignore[attr-defined]
    raise error from None
