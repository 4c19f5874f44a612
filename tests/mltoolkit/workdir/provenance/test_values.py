"""Record values as JSON-LD values: times with milliseconds, parameter types, property values."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from mltoolkit.workdir.provenance.values import additional_type, iso, property_value, summary, without_none


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-01-02T03:04:05.123456+00:00", "2026-01-02T03:04:05.123+00:00"),
        (datetime(2026, 1, 2, 3, 4, 5, 987654, tzinfo=UTC), "2026-01-02T03:04:05.987+00:00"),
        ("2026-01-02T03:04:05", "2026-01-02T03:04:05"),  # naive: no zone is guessed
        ("yesterday", "yesterday"),
        (date(2026, 1, 2), "2026-01-02"),
        (None, None),
    ],
)
def test_times_keep_milliseconds_and_their_offset(value, expected):
    assert iso(value) == expected


@pytest.mark.parametrize(
    "value, is_file, expected",
    [
        ("x", True, "File"),
        (True, False, "Boolean"),
        (3, False, "Integer"),
        ([1.5, 2.0], False, "Float"),
        ("rbf_svm", False, "Text"),
        ([{"a": 1}], False, "Text"),
        ({"name": "tree"}, False, "Text"),
    ],
)
def test_parameter_types(value, is_file, expected):
    assert additional_type(value, is_file) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a", "a"),
        (2, 2),
        ((1, "b"), [1, "b"]),
        ({"name": "tree", "params": {"max_depth": 5}}, '{"name": "tree", "params": {"max_depth": 5}}'),
        ([{"a": 1}], '[{"a": 1}]'),
    ],
)
def test_property_values_are_scalars_lists_or_json_text(value, expected):
    assert property_value(value) == expected


def test_summary_and_without_none():
    assert summary(Counter({"FAILED": 1, "COMPLETED": 2})) == "2 completed, 1 failed"
    assert summary(Counter()) == "none"
    assert without_none({"a": None, "b": 0, "c": ""}) == {"b": 0, "c": ""}
