"""Shell quoting: one word with its glob wildcards left active, and the quoting context of shell text."""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from mltoolkit.errors import SpecError

__all__ = ["ShellScanner", "is_shell", "quote_keep_globs"]

_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh"}
_BRACKET = re.compile(r"\[[!^]?[A-Za-z0-9_.,:+@%=\-]+\]")


def quote_keep_globs(text: str) -> str:
    """Shell-quote ``text`` as one word, leaving glob wildcards (``*``, ``?``, ``[a-z]``) active.

    A value naming an existing file is quoted whole: it is that file, not a pattern
    (an input file may well be called ``*; x``).
    """
    if any(char in text for char in "*?[") and len(text) < 4096 and os.path.lexists(text):
        return shlex.quote(text)
    pieces: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            pieces.append(shlex.quote("".join(literal)))
            literal.clear()

    index = 0
    while index < len(text):
        char = text[index]
        if char in "*?":
            flush()
            pieces.append(char)
            index += 1
            continue
        if char == "[":
            match = _BRACKET.match(text, index)
            if match:
                flush()
                pieces.append(match.group())
                index = match.end()
                continue
        literal.append(char)
        index += 1
    flush()
    return "".join(pieces) or "''"


def is_shell(interpreter: str) -> bool:
    """True when ``interpreter`` (``sh``, ``/bin/bash -e``...) is a POSIX shell."""
    try:
        words = shlex.split(interpreter)
    except ValueError:
        words = interpreter.split()
    return bool(words) and os.path.basename(words[0]) in _SHELLS


class ShellScanner:
    """Tracks the quoting context of shell text, so values can be quoted for where they land.

    A stack of frames: ``none`` (plain shell words, also inside ``$(...)`` and
    backticks), ``single``/``double`` quotes, and ``comment``; plus here-document
    bodies. When unsure it errs towards ``none``, whose quoting is always safe.
    """

    _HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|(\\?)([A-Za-z0-9_.\-]+))")
    _WORD_BREAK = frozenset(" \t\n;&|()<>")

    def __init__(self) -> None:
        # frames: [mode, paren_depth]; modes: none, subshell, backtick, single, double, comment
        self.frames: list[list[Any]] = [["none", 0]]
        self.escape = False
        self.previous = "\n"
        self.line = ""
        self.heredoc_starts: list[int] = []
        self.pending: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip_tabs)
        self.heredoc: tuple[str, bool, bool] | None = None

    @property
    def mode(self) -> str:
        if self.heredoc is not None:
            return "heredoc"
        mode = self.frames[-1][0]
        return "none" if mode in ("none", "subshell", "backtick", "comment") else mode

    def feed(self, text: str) -> None:
        for char in text:
            self._feed_char(char)

    def feed_inserted(self, text: str) -> None:
        """Account for inserted text where it matters (here-document lines)."""
        if self.heredoc is not None:
            for char in text:
                self._heredoc_char(char)

    def _heredoc_char(self, char: str) -> None:
        if char == "\n":
            delimiter, _quoted, strip = self.heredoc  # type: ignore[misc]
            line = self.line.lstrip("\t") if strip else self.line
            self.line = ""
            if line == delimiter:
                self.heredoc = self.pending.pop(0) if self.pending else None
        else:
            self.line += char

    def _feed_char(self, char: str) -> None:
        if self.heredoc is not None:
            self._heredoc_char(char)
            return
        frame = self.frames[-1]
        mode = frame[0]
        previous, self.previous = self.previous, char
        if char == "\n" and len(self.frames) == 1 and not self.escape:
            self._end_line()
            return
        if char == "\n" and mode == "comment":
            self.frames.pop()
            if len(self.frames) == 1:
                self._end_line()
            return
        self.line += char
        if self.escape:
            self.escape = False
            return
        if mode == "comment":
            return
        if mode == "single":
            if char == "'":
                self.frames.pop()
            return
        if mode == "double":
            if char == "\\":
                self.escape = True
            elif char == '"':
                self.frames.pop()
            elif char == "(" and previous == "$":
                self.frames.append(["subshell", 0])
            elif char == "`":
                self.frames.append(["backtick", 0])
            return
        # none, subshell, backtick
        if char == "\\":
            self.escape = True
        elif char == "'":
            self.frames.append(["single", 0])
        elif char == '"':
            self.frames.append(["double", 0])
        elif char == "#" and previous in self._WORD_BREAK:
            self.frames.append(["comment", 0])
        elif char == "`":
            if mode == "backtick":
                self.frames.pop()
            else:
                self.frames.append(["backtick", 0])
        elif char == "(":
            if previous == "$":
                self.frames.append(["subshell", 0])
            elif mode == "subshell":
                frame[1] += 1
        elif char == ")" and mode == "subshell":
            if frame[1]:
                frame[1] -= 1
            else:
                self.frames.pop()
        elif char == "<" and previous == "<" and len(self.frames) == 1:
            start = len(self.line) - 2
            if not (start > 0 and self.line[start - 1] == "<"):
                self.heredoc_starts.append(start)

    def _end_line(self) -> None:
        for start in self.heredoc_starts:
            match = self._HEREDOC.match(self.line, start)
            if match is None or self.line[start : start + 3] == "<<<":
                continue
            strip, single, double, backslash, bare = match.groups()
            delimiter = single if single is not None else double if double is not None else bare
            quoted = single is not None or double is not None or bool(backslash)
            self.pending.append((delimiter, quoted, bool(strip)))
        self.heredoc_starts = []
        self.line = ""
        self.escape = False
        if self.pending:
            self.heredoc = self.pending.pop(0)

    def quote(self, value: Any, *, where: str) -> str:
        """Text that makes ``value`` literal at the current position."""
        words = [str(item) for item in value] if isinstance(value, list) else None
        text = " ".join(words) if words is not None else str(value)
        mode = self.mode
        if mode == "none":
            if words is not None:
                return " ".join(quote_keep_globs(word) for word in words)
            return quote_keep_globs(text)
        # Close the template's quote, add the value as its own quoted piece, reopen: if the
        # scanner misread the context, this still yields a literal (never a command).
        if mode == "single":
            return "'\"" + re.sub(r'([\\"$`])', r"\\\1", text) + "\"'"
        if mode == "double":
            return '"' + shlex.quote(text) + '"'
        delimiter, quoted, strip = self.heredoc  # type: ignore[misc]
        for line in text.split("\n"):
            if (line.lstrip("\t") if strip else line) == delimiter:
                raise SpecError(
                    f"{where}: a value contains the line {delimiter!r}, which would end the here-document "
                    "early and run the rest as commands; change the value"
                )
        return text if quoted else re.sub(r"([\\$`])", r"\\\1", text)
