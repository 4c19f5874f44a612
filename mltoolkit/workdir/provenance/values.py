"""Record values as JSON-LD values: times, parameter values and their types."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from typing import Any

__all__ = ["additional_type", "iso", "property_value", "scalars", "summary", "without_none"]


def iso(value: Any) -> Any:
    """A record time as ISO 8601 with millisecond precision, when it has an offset.

    rocrate-validator's Process Run Crate shapes only accept ``.fff+hh:mm``
    (ISO 8601 allows more digits; run.json keeps the microseconds). Naive or
    unparsable times pass through unchanged rather than guessing a zone.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return value.isoformat()
    else:
        return value
    if parsed.utcoffset() is None:
        return parsed.isoformat() if isinstance(value, datetime) else value
    return parsed.isoformat(timespec="milliseconds")


def without_none(properties: dict[str, Any]) -> dict[str, Any]:
    """``properties`` without the ones whose value is ``None``."""
    return {key: value for key, value in properties.items() if value is not None}


def scalars(values: Any) -> bool:
    """Every item of ``values`` is a string, boolean or number."""
    return all(isinstance(item, (str, bool, int, float)) for item in values)


def additional_type(value: Any, is_file: bool) -> str:
    """Bioschemas ``additionalType`` of a parameter: ``File`` or a schema.org DataType."""
    if is_file:
        return "File"
    if isinstance(value, list) and not scalars(value):
        return "Text"
    sample = value[0] if isinstance(value, list) and value else value
    if isinstance(sample, bool):
        return "Boolean"
    if isinstance(sample, int):
        return "Integer"
    if isinstance(sample, float):
        return "Float"
    return "Text"  # strings, and structures, which are stored as JSON text


def property_value(value: Any) -> Any:
    """A PropertyValue ``value``: scalars and lists of scalars as they are, the rest as JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and scalars(value):
        return list(value)
    return json.dumps(value, sort_keys=True, default=str)


def summary(states: Counter[str]) -> str:
    """``"2 completed, 1 failed"``: how many steps ended in each state."""
    return ", ".join(f"{count} {state.lower()}" for state, count in sorted(states.items())) or "none"
