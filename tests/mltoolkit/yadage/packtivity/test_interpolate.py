"""Filling placeholders: format syntax, lists, quoting on and off, unknown names."""

from __future__ import annotations

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity import interpolate, quote_keep_globs


def test_quote_keep_globs_and_interpolate_details():
    assert quote_keep_globs("/a b/*.pkl") == "'/a b/'*.pkl"
    assert quote_keep_globs("f[0-9].txt") == "f[0-9].txt"
    assert quote_keep_globs("[1, 2]") == "'[1, 2]'"
    assert quote_keep_globs("") == "''"
    assert (
        interpolate("echo {n:03d} {xs[1]} {{literal}} {workdir}", {"n": 7, "xs": ["a", "b c"]}, workdir="/w")
        == "echo 007 'b c' {literal} /w"
    )
    assert interpolate("echo {xs}", {"xs": [1, "a b"]}, quote=False) == "echo 1 a b"
    assert interpolate("print('{v}')", {"v": "it's"}, language="python") == "print('it\\'s')"
    assert interpolate("# it's a comment\necho {v}", {"v": "a;b"}) == "# it's a comment\necho 'a;b'"
    with pytest.raises(
        SpecError, match=r"uses \{missing\} but the step has no such parameter \(parameters: a, workdir\)"
    ):
        interpolate("echo {missing}", {"a": 1}, workdir="/w")
    with pytest.raises(SpecError, match=r"malformed braces .*write literal braces as \{\{ and \}\}"):
        interpolate("awk 'END {{ print }' }", {})
