"""No value executes: syntactic positions x payloads x {sh, bash, python}, through ``run_step``.

Every cell runs one step whose script puts the payload in one position. The step
either runs and the value arrives literally where it is used (the script writes it
to ``out``), or is refused with the one-line error -- which of the two is what the
position's rule (in the package docs) says -- and the payload's canary file never
exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mltoolkit.errors import SpecError, StepFailedError
from mltoolkit.yadage.packtivity import run_step

#: Each payload tries to create the file ``{c}``; ids name the trick.
PAYLOADS = {
    "semicolon": "x; touch {c}",
    "and": "x && touch {c}",
    "pipe": "x | touch {c}",
    "substitution": "$(touch {c})",
    "backticks": "`touch {c}`",
    "newline": "x\ntouch {c}",
    "comment-newline": "# x\ntouch {c}\n#",
    "single-breakout": "'; touch {c}; '",
    "double-breakout": '"; touch {c}; "',
    "backslashes": "\\'\\\"\\; touch {c} #\\",
    "parameter": "${{x:-$(touch {c})}}",
    "subscript": "a[$(touch {c})]",
    "heredoc-end": "x\nEOF\ntouch {c}\ncat <<EOF",
    "triple-quote": '"""; __import__(\'os\').system(\'touch {c}\'); """',
    "python-call": "__import__('os').system('touch {c}')",
    "python-breakout": '\'); __import__("os").system("touch {c}"); print(\'',
    "format-field": "{{__import__('os').system('touch {c}')}}",
    "nul-cr": "x\x00\r\ntouch {c}",
    "long": "A" * 20000 + "; touch {c}",
    "lookalikes": "x\uff1b touch {c}\u2028touch {c}\u0085\u02bc",
    "glob": "*?[a-z]; touch {c}",
    "option": "--output={c}",
    "coding": "coding:utf_7 +AAo-__import__(+ACI-os+ACI-).system(+ACI-touch {c}+ACI-)",
    "ansi-c": "$'\\x27'; touch {c}",
    "plain-path": "dir/file-1.txt",
    "plain-name": "plain_word",
    "integer": "42",
}

_PLAIN = re.compile(r"[A-Za-z0-9_./:+,-]*")


def plain(value: str) -> bool:
    return _PLAIN.fullmatch(value) is not None and not value.startswith("-")


def integer(value: str) -> bool:
    return re.fullmatch(r"[+-]?[0-9]+", value) is not None


def shell_any(value: str) -> bool:
    return "\0" not in value


def heredoc_any(value: str) -> bool:
    return shell_any(value) and "EOF" not in value.split("\n")


def py_any(value: str) -> bool:
    return True


def py_raw(value: str) -> bool:
    return not any(char in value for char in "\\'\"\n\r\0")


def py_field(value: str) -> bool:
    return value.isprintable() and not any(char in value for char in "\\'\"")


def py_name(value: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_]*", value) is not None


def py_first_comment(value: str) -> bool:
    return "coding:" not in value


# position -> (template, accepts(value), expected content of `out` given the value)
Rule = tuple[str, Callable[[str], bool], Callable[[str], str]]
SAME: Callable[[str], str] = lambda value: value  # noqa: E731
LINE: Callable[[str], str] = lambda value: value + "\n"  # noqa: E731
RAN: Callable[[str], str] = lambda value: "ran"  # noqa: E731

SHELL_POSITIONS: dict[str, Rule] = {
    "word": ("printf '%s' {v} > out", shell_any, SAME),
    "word-part": ("printf '%s' pre{v}post > out", shell_any, lambda v: f"pre{v}post"),
    "double-quotes": ("printf '%s' \"{v}\" > out", shell_any, SAME),
    "single-quotes": ("printf '%s' '{v}' > out", shell_any, SAME),
    "assignment": ("x={v}\nprintf '%s' \"$x\" > out", shell_any, SAME),
    "for-list": ("for w in {v}; do printf '%s' \"$w\"; done > out", shell_any, SAME),
    "substitution": ("printf '%s' \"$(printf '%s' {v})\" > out", shell_any, SAME),
    "substitution-quoted": ('x="$(printf \'%s\' "{v}")"\nprintf \'%s\' "$x" > out', shell_any, SAME),
    "heredoc": ("cat > out <<EOF\n{v}\nEOF\n", heredoc_any, LINE),
    "heredoc-quoted": ("cat > out <<'EOF'\n{v}\nEOF\n", heredoc_any, LINE),
    "heredoc-partly-quoted": ('cat > out <<E"OF"\n{v}\nEOF\n', heredoc_any, LINE),
    "comment": ("# note: {v}\nprintf '%s' ran > out", shell_any, RAN),
    "backticks": ("printf '%s' `printf '%s' {v}` > out", plain, SAME),
    "parameter-default": ("printf '%s' \"${{UNSET_VARIABLE:-{v}}}\" > out", plain, SAME),
    "arithmetic": ("printf '%s' $(( {v} + 0 )) > out", integer, lambda v: str(int(v))),
    "command-name": ("{v} >/dev/null 2>&1\nprintf '%s' ran > out", plain, RAN),
    "sh-c-code": ("sh -c 'printf \"%s\" {v}' > out", plain, SAME),
    "eval": ("eval \"printf '%s' {v}\" > out", plain, SAME),
    "piped-into-sh": ("printf 'printf %%s %s' {v} | sh > out", plain, SAME),
    "heredoc-into-python": ("python3 - > out <<EOF\nimport sys; sys.stdout.write('{v}')\nEOF\n", plain, SAME),
    "python-c-code": ("python3 -c \"import sys; sys.stdout.write('{v}')\" > out", plain, SAME),
    "read-name": ("read {v} < /dev/null\nprintf '%s' ran > out", plain, RAN),
}
BASH_POSITIONS: dict[str, Rule] = {
    **SHELL_POSITIONS,
    "double-brackets-arithmetic": ("[[ {v} -eq 42 ]] && printf '%s' 42 > out || printf '%s' 42 > out", integer, SAME),
    "ansi-c-quotes": ("printf '%s' $'{v}' > out", plain, SAME),
}
_EMIT = (
    "def emit(x):\n"
    "    with open('out', 'w', encoding='utf-8', newline='') as f:\n"
    "        f.write(x if isinstance(x, str) else repr(x))\n"
)
PYTHON_POSITIONS: dict[str, Rule] = {
    "expression": (_EMIT + "emit({v})", py_any, SAME),
    "assignment": (_EMIT + "value = {v}\nemit(value)", py_any, SAME),
    "dict-value": (_EMIT + "emit({{'k': {v}}}['k'])", py_any, SAME),
    "double-quotes": (_EMIT + 'emit("{v}")', py_any, SAME),
    "single-quotes": (_EMIT + "emit('{v}')", py_any, SAME),
    "triple-double": (_EMIT + 'emit("""{v}""")', py_any, SAME),
    "triple-single": (_EMIT + "emit('''{v}''')", py_any, SAME),
    "f-string-text": (_EMIT + 'emit(f"<{v}>")', py_any, lambda v: f"<{v}>"),
    "f-string-field": (_EMIT + 'emit(f"{{{v}}}")', py_field, SAME),
    "raw-string": (_EMIT + 'emit(r"{v}")', py_raw, SAME),
    "bytes": (_EMIT + 'emit(b"{v}".decode())', py_any, SAME),
    "comment": (_EMIT + "# note: {v}\nemit('ran')", py_any, RAN),
    "comment-line-1": ("# note: {v}\n" + _EMIT + "emit('ran')", py_first_comment, RAN),
    "glued-name": (_EMIT + "value_{v} = 1\nemit([k for k in dir() if k.startswith('value_')][0][6:])", py_name, SAME),
}
GRID = {"sh": SHELL_POSITIONS, "bash": BASH_POSITIONS, "python": PYTHON_POSITIONS}
CELLS = [
    pytest.param(interpreter, position, payload, id=f"{interpreter}-{position}-{payload}")
    for interpreter, positions in GRID.items()
    for position in positions
    for payload in PAYLOADS
]


#: Python cells run without the site module: it changes nothing in how the script is read, and
#: halves the start-up time of the few hundred interpreters the grid starts.
INTERPRETERS = {"sh": "sh", "bash": "bash", "python": "python -S"}


def make_script_step(make_step, template: str, interpreter: str):
    return make_step(script=template + "\n", interpreter=INTERPRETERS[interpreter])


@pytest.mark.parametrize(("interpreter", "position", "payload"), CELLS)
def test_no_payload_runs_in_any_position(make_step, tmp_path: Path, interpreter, position, payload):
    template, accepts, expected = GRID[interpreter][position]
    canary = tmp_path / "CANARY"
    value = PAYLOADS[payload].format(c=canary)
    step = make_script_step(make_step, template, interpreter)
    workdir = tmp_path / "step"
    if accepts(value):
        try:
            run_step(step, {"v": value}, workdir, name="cell", stage="grid")
        except StepFailedError as error:  # pragma: no cover - shows the step's own output
            pytest.fail(f"the step failed instead of receiving the value: {error}")
        assert (workdir / "out").read_bytes().decode("utf-8") == expected(value)
    else:
        with pytest.raises(SpecError) as refused:
            run_step(step, {"v": value}, workdir, name="cell", stage="grid")
        message = str(refused.value)
        assert "\n" not in message and message.startswith("stage 'grid' step cell: parameter 'v' (line ")
        assert not (workdir / "_packtivity").exists(), "a refused step must not start"
    assert not canary.exists(), "the payload ran"


def test_the_grid_is_as_large_as_promised():
    assert len(PAYLOADS) >= 20
    assert all(len(positions) >= 12 for positions in GRID.values())
    assert len(CELLS) == sum(len(positions) for positions in GRID.values()) * len(PAYLOADS)
