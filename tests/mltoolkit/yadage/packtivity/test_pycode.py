"""Python values: literals in expressions, escaped string content, refusals (pure, no process)."""

from __future__ import annotations

import ast

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity import interpolate
from mltoolkit.yadage.packtivity.pycode import python_literal


@pytest.mark.parametrize(
    "value",
    ['it\'s "x"\n\\', "\x00\r\u2028\U0001f600", 3, -2.5, True, None, ["a", 1, [None]], {"k": ["v", 2.0]}],
)
def test_python_literal_evaluates_back_to_the_value(value):
    assert ast.literal_eval(python_literal(value)) == value


def test_python_literal_of_non_finite_floats_is_a_fixed_call():
    assert python_literal(float("inf")) == "float('inf')"


def _python(template: str, value) -> str:
    return interpolate(template, {"v": value}, language="python", where="step py")


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("x = {v}", "a'); import os #", "x = 'a\\'); import os #'"),
        ("x = {v}", 7, "x = 7"),
        ("x = {v}", ["a", 2], "x = ['a', 2]"),
        ('x = "{v}"', 'a"\n\\', 'x = "a\\"\\n\\\\"'),
        ("x = '''{v}'''", "'''", "x = '''\\'\\'\\''''"),
        ('x = f"<{v}>"', "{__import__('os')}", "x = f\"<{{__import__(\\'os\\')}}>\""),
        ('x = f"{{{v}}}"', "text", "x = f\"{'text'}\""),
        ('x = f"{{y:{{{v}}}}}"', 5, 'x = f"{y:{5}}"'),
        ('x = rb"{v}"', "a/b", 'x = rb"a/b"'),
        ('x = b"{v}"', "é'", 'x = b"\\xc3\\xa9\\x27"'),
        ("# {v}\nx = 1", "a\nimport os", "# a\\nimport os\nx = 1"),
        ("x_{v} = 1", "abc_1", "x_abc_1 = 1"),
    ],
)
def test_each_token_gets_the_value_its_own_way(template, value, expected):
    assert _python(template, value) == expected


@pytest.mark.parametrize(
    ("template", "value", "position"),
    [
        ('x = r"{v}"', 'a"', "inside a raw string"),
        ('x = r"{v}"', "a\\", "inside a raw string"),
        ('x = f"{{{v}}}"', "it's", "inside an f-string's {...} field"),
        ("x_{v} = 1", "a=exec", "glued to a name"),
        ("x = ({v}", "a b", "in a place of the Python code the runner does not read"),
        ("# {v}\n", "coding: utf_7", "in a comment on line 1 or 2"),
        ("#!/usr/bin/env python\n# x {v}", "vim: coding=utf_7", "in a comment on line 1 or 2"),
    ],
)
def test_values_that_cannot_be_made_literal_are_refused(template, value, position):
    with pytest.raises(SpecError) as refused:
        _python(template, value)
    message = str(refused.value)
    assert message.startswith("step py: parameter 'v' (line ") and position in message and "\n" not in message


def test_a_comment_after_line_2_may_say_coding():
    assert _python("x = 1\ny = 2\n# {v}", "coding: utf_7") == "x = 1\ny = 2\n# coding: utf_7"


def test_scripts_for_other_interpreters_take_plain_values_only():
    assert interpolate("plot({v})", {"v": "/data/x.csv"}, language="other") == "plot(/data/x.csv)"
    with pytest.raises(SpecError, match=r"an interpreter whose syntax the runner does not read"):
        interpolate("plot('{v}')", {"v": "a'); system('x"}, language="other")
