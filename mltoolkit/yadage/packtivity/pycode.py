"""Python values: a literal, escaped string content, or refused.

:func:`fill_python` reads the template with Python's own :mod:`tokenize` (its
placeholders replaced by identifier markers, so no value changes how it is read)
and puts each value in by the token it stands in:

* a whole token where an expression goes (``x = {v}``, ``f({v})``): the value as a
  Python literal (``'text'``, ``3``, ``['a', 1]``), never as code;
* inside a string literal: escaped for that literal (quotes, backslashes, line
  breaks, control characters; braces doubled in an f-string's text; bytes as
  ``\\xNN``); a raw string takes only values that need no escape;
* inside an f-string's ``{...}`` field: a literal when one fits there, else refused;
* in a comment: its line breaks written as ``\\n`` so it stays in the comment, and
  never changing the file's ``coding:`` declaration;
* glued to a name (``x_{v}``) or anywhere else: only ``[A-Za-z0-9_]``.
"""

from __future__ import annotations

import io
import math
import re
import tokenize
from typing import Any

from mltoolkit.yadage.packtivity.placeholders import Placeholder, words_of

__all__ = ["fill_python", "python_literal"]

_NAME = re.compile(r"[A-Za-z0-9_]*")
_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_FIX = "put it in a string literal ('{name}') or use it as a whole expression ({name})"


def python_literal(value: Any) -> str:
    """``value`` (JSON-like data) as Python source that evaluates to it and runs nothing else."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    return _string_literal(str(value))


def _escape_char(char: str, quote_both: bool = True) -> str:
    if char == "\\":
        return "\\\\"
    if char in "'\"" and quote_both:
        return "\\" + char
    if char.isprintable():
        return char
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _string_literal(text: str) -> str:
    return "'" + "".join(_escape_char(char) for char in text) + "'"


def _in_string(text: str, prefix: str) -> str | None:
    """``text`` escaped for the body of a string with ``prefix``; ``None`` when it cannot be."""
    lower = prefix.lower()
    if "r" in lower:
        if any(char in text for char in "\\'\"\n\r\0"):
            return None
        return text.replace("{", "{{").replace("}", "}}") if "f" in lower else text
    if "b" in lower:
        return "".join(
            chr(byte) if 32 <= byte < 127 and chr(byte) not in "\\'\"" else f"\\x{byte:02x}"
            for byte in text.encode("utf-8")
        )
    escaped = "".join(_escape_char(char) for char in text)
    return escaped.replace("{", "{{").replace("}", "}}") if "f" in lower else escaped


def _field_literal(value: Any, quote: str) -> str | None:
    """A literal for an f-string field of a string quoted with ``quote`` (3.11: no backslash, other quote)."""
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    text = " ".join(words_of(value))
    inner = "'" if quote[0] == '"' else '"'
    if not text.isprintable() or any(char in text for char in "\\'\""):
        return None
    return inner + text + inner


def _fstring_depth(body: str, offset: int) -> int:
    depth = index = 0
    while index < offset:
        char, pair = body[index], body[index : index + 2]
        if depth == 0 and pair in ("{{", "}}"):
            index += 2
            continue
        depth += 1 if char == "{" else -1 if char == "}" and depth else 0
        index += 1
    return depth


def _string_positions(token: tokenize.TokenInfo, marker: re.Pattern[str]) -> dict[int, tuple[str, Any, int]]:
    text = token.string
    prefix = re.match(r"[A-Za-z]*", text).group()  # type: ignore[union-attr]
    quote = text[len(prefix) : len(prefix) + 3]
    quote = quote if quote in ('"""', "'''") else text[len(prefix)]
    body_start = len(prefix) + len(quote)
    found: dict[int, tuple[str, Any, int]] = {}
    for match in marker.finditer(text):
        line = token.start[0] + text.count("\n", 0, match.start())
        number = int(match.group(1))
        if "f" in prefix.lower() and _fstring_depth(text[body_start:], match.start() - body_start):
            found[number] = ("field", quote, line)
        else:
            found[number] = ("string", prefix, line)
    return found


def _positions(marked: str, marker: re.Pattern[str]) -> dict[int, tuple[str, Any, int]]:
    """Placeholder number -> (kind, detail, line) from Python's tokenizer."""
    found: dict[int, tuple[str, Any, int]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(marked).readline):
            if not marker.search(token.string):
                continue
            if token.type == tokenize.STRING:
                found.update(_string_positions(token, marker))
                continue
            kind = {tokenize.NAME: "name", tokenize.COMMENT: "comment"}.get(token.type, "other")
            if kind == "name" and marker.fullmatch(token.string):
                kind = "expression"
            for match in marker.finditer(token.string):
                found[int(match.group(1))] = (kind, None, token.start[0])
    except (tokenize.TokenError, SyntaxError):
        found = {}  # a template Python cannot read: every value is held to plain names
    for match in marker.finditer(marked):
        found.setdefault(int(match.group(1)), ("other", None, marked.count("\n", 0, match.start()) + 1))
    return found


def _value_text(kind: str, detail: Any, placeholder: Placeholder) -> str:
    value = placeholder.value
    fix = _FIX.format(name="{" + placeholder.name + "}")
    text = " ".join(words_of(value))
    if kind == "expression":
        return python_literal(value)
    if kind == "string":
        escaped = _in_string(text, detail)
        if escaped is None:
            raise placeholder.fail(
                "inside a raw string", "has a quote, a backslash or a line break, which a raw string cannot hold", fix
            )
        return escaped
    if kind == "field":
        literal = _field_literal(value, detail)
        if literal is None:
            raise placeholder.fail("inside an f-string's {...} field", "does not fit in a literal there", fix)
        return literal
    if kind == "comment":
        return text.replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")
    if _NAME.fullmatch(text) is None:
        where = "glued to a name" if kind == "name" else "in a place of the Python code the runner does not read"
        raise placeholder.fail(where, "may only hold letters, digits and _ there", fix)
    return text


def _check_coding(marked: str, filled: str, marker: re.Pattern[str], placeholders: list[Placeholder]) -> None:
    """A value must not declare (or change) the file's source encoding (lines 1 and 2)."""
    for before, after in zip(marked.split("\n")[:2], filled.split("\n")[:2]):
        cookie_before, cookie_after = _COOKIE.match(before), _COOKIE.match(after)
        if (cookie_before and cookie_before.group(1)) != (cookie_after and cookie_after.group(1)):
            owner = placeholders[int(marker.search(before).group(1))]  # type: ignore[union-attr]
            raise owner.fail(
                "in a comment on line 1 or 2", "would declare the file's encoding (coding:...)", "change the value"
            )


def fill_python(marked: str, placeholders: list[Placeholder], marker: re.Pattern[str]) -> str:
    """``marked`` with each marker (``marker`` group 1: the placeholder number) made a safe value."""
    filled: dict[int, str] = {}
    for number, (kind, detail, line) in _positions(marked, marker).items():
        placeholder = placeholders[number]
        placeholder.line = line
        filled[number] = _value_text(kind, detail, placeholder)
    result = marker.sub(lambda match: filled[int(match.group(1))], marked)
    _check_coding(marked, result, marker, placeholders)
    return result
