"""Lists inside lists on the command line: the words yadage's shell makes, without its expansions.

packtivity 0.17.1 fills a command with ``cmd.format(**{k: " ".join(str(x) for x in v)})``,
so an element that is itself a list lands as its Python text, unquoted, and ``sh -c``
splits it: run with yadage-run 0.21.2 (local backend) on a step
``for w in {files}; do echo "<$w>"; done`` with ``files: [[a, b], [c], plain, ["it's", 'x y'],
{k: v}]``, the step printed ``<[a,> <b]> <[c]> <plain> <[it's,> <x y]> <{k:> <v}>`` (a
mapping is the one thing kept as one word here, see :mod:`mltoolkit.yadage.packtivity.shell`).
``tests/specs/batched_fromyaml/yadage_words/`` holds what yadage-run wrote for that fixture.

These tests run yadage's own rendering through ``sh`` as the reference, and check that
ours gives the same words -- while a value that yadage's shell would run stays words.
"""

from __future__ import annotations

import subprocess

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity import interpolate

PRINT_WORDS = "printf '<%s>\\n' {value}"


def _words_of_shell_text(text: str, cwd) -> list[str]:
    done = subprocess.run(["sh", "-c", text], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def _as_yadage_renders(template: str, value) -> str:
    """packtivity's string-interpolated-cmd handler, verbatim in effect."""
    flat = " ".join(str(item) for item in value) if isinstance(value, list) else value
    return template.format(value=flat)


@pytest.mark.parametrize(
    "value",
    [
        [["a", "b"], ["c"]],
        [["signal_0.root", "signal_1.root"], ["data_0.root"]],
        [["it's", "x y"], "plain"],
        [[1, 2.5, True, None]],
        [["a", {"k": "v"}]],
        [[["deeper", "still"]], []],
        [['say "hi"', "back\\slash"]],
    ],
)
def test_nested_values_become_the_words_yadages_shell_makes(tmp_path, value):
    ours = interpolate(PRINT_WORDS, {"value": value})
    theirs = _as_yadage_renders(PRINT_WORDS, value)
    assert _words_of_shell_text(ours, tmp_path) == _words_of_shell_text(theirs, tmp_path)


@pytest.mark.parametrize(
    "payload",
    ["$(touch PWNED)", "`touch PWNED`", "a; touch PWNED", "x && touch PWNED", "$HOME", "a|touch PWNED", "> PWNED"],
)
def test_a_nested_value_yadage_would_run_stays_words(tmp_path, payload):
    value = [["safe", payload]]
    ours = interpolate(PRINT_WORDS, {"value": value})
    words = _words_of_shell_text(ours, tmp_path)
    assert not (tmp_path / "PWNED").exists()
    # the shell's split of the Python text, with no expansion: the payload's own words, bracketed
    import shlex

    assert words == [f"<{word}>" for word in shlex.split(str(value[0]))]


def test_a_nested_value_keeps_its_glob_active_as_in_yadage(tmp_path):
    (tmp_path / "c").write_text("")
    # '[c]' is a bracket pattern: it matches the file 'c' in yadage's shell, and here
    ours = interpolate(PRINT_WORDS, {"value": [["c"], ["x", "y"]]})
    assert _words_of_shell_text(ours, tmp_path) == ["<c>", "<[x,>", "<y]>"]


def test_inside_quotes_a_nested_value_stays_its_python_text(tmp_path):
    text = interpolate('printf "<%s>\\n" "{value}"', {"value": [["a", "b"], ["c"]]})
    assert _words_of_shell_text(text, tmp_path) == ["<['a', 'b'] ['c']>"]


@pytest.mark.parametrize("value", [{"k": "v", "n": 1}, [{"k": "v"}, "x"]])
def test_a_mapping_stays_one_word_of_its_python_text(tmp_path, value):
    # yadage's shell would split it; no published workflow relies on that, and one word parses
    words = _words_of_shell_text(interpolate(PRINT_WORDS, {"value": value}), tmp_path)
    expected = [f"<{item}>" for item in (value if isinstance(value, list) else [value])]
    assert words == expected


def test_a_nested_value_the_shell_cannot_split_is_refused_in_one_line():
    with pytest.raises(SpecError) as caught:
        interpolate(PRINT_WORDS, {"value": [['it\'s "both"']]}, where="stage 'x' step x")
    message = str(caught.value)
    assert "parameter 'value'" in message and "a shell cannot split" in message and "\n" not in message
