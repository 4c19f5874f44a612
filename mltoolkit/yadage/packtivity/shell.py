"""Shell values: quoted for where they land, or refused where that cannot be proven safe.

:func:`fill_shell` takes a template whose placeholders are markers, reads it with
:mod:`.shell_lexer` (so the values never influence how it is read), asks
:mod:`.shell_commands` what each command does with its words, and puts each value
in: escaped for its quoting when the place is data, checked against the plain
character set (or the integers) where it is not.

A list inside a list is a case of its own. yadage pastes it as its Python text,
unquoted -- ``[['a', 'b'], ['c']]`` becomes ``['a', 'b'] ['c']`` -- so the shell
splits that text into the words ``[a,``, ``b]`` and ``[c]``, and published
workflows rely on those words (a step receiving ``input_file`` lists of lists by
``batchsize`` writes files named after them). As a shell word such a value
therefore becomes exactly those words -- the text split with the shell's quoting
rules (:func:`shlex.split`), each word then quoted like any value, so nothing is
expanded but globs, and ``;``, ``$(...)`` or a backtick stay characters of a word.
Inside quotes it stays the Python text, as in yadage. A mapping stays one word (its
Python text): yadage's shell would split it too, but no published workflow is
known to rely on that, and one word is what a program reading it can parse.
"""

from __future__ import annotations

import functools
import os
import re
import shlex

from mltoolkit.yadage.packtivity.placeholders import Placeholder, check_integer, check_plain, words_of
from mltoolkit.yadage.packtivity.shell_commands import SHELLS, classify_command
from mltoolkit.yadage.packtivity.shell_lexer import ANY, INTEGER, MARK, NEVER, HereDoc, Slot, lex_shell

__all__ = ["fill_shell", "is_shell", "quote_keep_globs", "shell_words"]

_BRACKET = re.compile(r"\[[!^]?[A-Za-z0-9_.,:+@%=\-]+\]")
_MARKER = re.compile(MARK + r"(\d+)" + MARK)
_FIXES = (  # (words in the position's description, how to fix it)
    ("backticks", "write $(...) instead of backticks"),
    ("${", "assign it to a variable first (v={name}) and use $v inside ${{...}}"),
    ("arithmetic", "only integers go there; compare text with [ ... = ... ]"),
    ("name", "write the name in the template and pass the value as an argument"),
    ("code", 'hand it to the code as data it reads: an argument ("$1", sys.argv) or a file'),
    ("command", 'hand it to the command as data it reads: an argument ("$1", sys.argv) or a file'),
    ("input", 'hand it to the code as data it reads: an argument ("$1", sys.argv) or a file'),
)
_DEFAULT_FIX = 'assign it to a variable first (v={name}) and use "$v" there'


def _fix_for(why: str, name: str) -> str:
    fix = next((fix for words, fix in _FIXES if words in why), _DEFAULT_FIX)
    return fix.format(name="{" + name + "}")


def quote_keep_globs(text: str) -> str:
    """Shell-quote ``text`` as one word, leaving glob wildcards (``*``, ``?``, ``[a-z]``) active.

    A value naming an existing file is quoted whole: it is that file, not a pattern
    (an input file may well be called ``*; x``).
    """
    if any(char in text for char in "*?[") and len(text) < 4096 and os.path.lexists(text):
        return shlex.quote(text)
    pieces: list[str] = []
    index = start = 0
    while index < len(text):
        match = _BRACKET.match(text, index) if text[index] == "[" else None
        if text[index] in "*?" or match:
            end = match.end() if match else index + 1
            if start < index:
                pieces.append(shlex.quote(text[start:index]))
            pieces.append(text[index:end])
            index = start = end
        else:
            index += 1
    if start < len(text):
        pieces.append(shlex.quote(text[start:]))
    return "".join(pieces) or "''"


def is_shell(interpreter: str) -> bool:
    """True when ``interpreter`` (``sh``, ``/bin/bash -e``...) is a POSIX shell."""
    try:
        words = shlex.split(interpreter)
    except ValueError:
        words = interpreter.split()
    return bool(words) and os.path.basename(words[0]) in SHELLS


_POSITIONS = {
    "word": "a shell word",
    "single": "inside '...'",
    "double": 'inside "..."',
    "heredoc": "in a here-document",
    "heredoc-quoted": "in a quoted here-document",
    "comment": "in a comment",
}


def _escaped(quoting: str, words: list[str]) -> str:
    if quoting == "word":
        return " ".join(quote_keep_globs(word) for word in words)
    text = " ".join(words)
    if quoting == "single":
        return text.replace("'", "'\\''")
    if quoting == "double":
        return re.sub(r'([\\$`"])', r"\\\1", text)
    if quoting == "heredoc":
        return re.sub(r"([\\$`])", r"\\\1", text)
    if quoting == "comment":
        return text.replace("\n", "\\n").replace("\r", "\\r")
    return text  # heredoc-quoted: the body is literal


def _split_like_the_shell(placeholder: Placeholder, text: str) -> list[str]:
    """The words a POSIX shell makes of unquoted ``text`` (quote removal, no expansion)."""
    try:
        return shlex.split(text)
    except ValueError as error:  # an unbalanced quote: yadage's shell would stop with a syntax error
        raise placeholder.fail(
            "a shell word",
            f"is pasted by yadage as Python text that a shell cannot split ({error})",
            "pass that value as a flat list or a string",
        ) from None


def shell_words(placeholder: Placeholder) -> list[str]:
    """The words a value makes as an unquoted shell word in yadage: list elements, and lists
    inside the list as the shell splits their Python text (``['a', 'b']`` -> ``[a,``, ``b]``)."""
    value = placeholder.value
    if not isinstance(value, (list, tuple)):
        return [str(value)]
    words: list[str] = []
    for item in value:
        if isinstance(item, (list, tuple)):
            words.extend(_split_like_the_shell(placeholder, str(item)))
        else:
            words.append(str(item))
    return words


def _value_text(slot: Slot, placeholder: Placeholder) -> str:
    words = words_of(placeholder.value)
    level, why = slot.effective()
    position = why or _POSITIONS[slot.quoting]
    fix = _fix_for(position, placeholder.name)
    if any("\0" in word for word in words):
        raise placeholder.fail(position, "contains a NUL character, which no shell text can hold", "remove it")
    if level == NEVER:
        raise placeholder.fail(position, "would decide where the here-document ends", "write the delimiter literally")
    if level == INTEGER:
        check_integer(placeholder, words, position, fix)
    elif level > ANY:
        check_plain(placeholder, words, position, fix)
    elif slot.quoting == "word":
        return _escaped("word", shell_words(placeholder))
    else:
        return _escaped(slot.quoting, words)
    return " ".join(words)


def _check_heredocs(
    lines: list[str], heredocs: tuple[HereDoc, ...], filled: dict[int, str], placeholders: list[Placeholder]
) -> None:
    """A value must not complete a line that ends its here-document early."""
    for heredoc in heredocs:
        for number in heredoc.lines:
            line = lines[number]
            text = _MARKER.sub(lambda match: filled[int(match.group(1))], line)
            if text == line:
                continue
            for piece in text.split("\n"):
                if (piece.lstrip("\t") if heredoc.strip_tabs else piece) == heredoc.delimiter:
                    owner = placeholders[int(next(_MARKER.finditer(line)).group(1))]
                    raise owner.fail(
                        "in a here-document",
                        f"makes the line {heredoc.delimiter!r}, which would end the here-document early "
                        "and run the rest as commands",
                        "change the value",
                    )


@functools.lru_cache(maxsize=256)
def _lexed(marked: str) -> tuple[tuple[Slot, ...], tuple[HereDoc, ...]]:
    """The slots and here-documents of a marked template, lexed once per process.

    Every step of a stage has the same template (only the values differ), and
    lexing it was ~3 % of a scatter's time in the flow process. Nothing changes the
    lexer's result once it is made (filling only reads it).
    """
    slots, heredocs = lex_shell(marked, classify_command)
    return tuple(slots), tuple(heredocs)


def fill_shell(marked: str, placeholders: list[Placeholder]) -> str:
    """``marked`` with each marker ``\\x00N\\x00`` replaced by placeholder N's value, made safe."""
    slots, heredocs = _lexed(marked)
    filled: dict[int, str] = {}
    for slot in slots:
        placeholder = placeholders[slot.number]
        placeholder.line = slot.line + 1
        filled[slot.number] = _value_text(slot, placeholder)
    _check_heredocs(marked.split("\n"), heredocs, filled, placeholders)
    return _MARKER.sub(lambda match: filled[int(match.group(1))], marked)
