"""Filling a step's ``{name}`` placeholders (Python ``str.format`` syntax, as in yadage).

The template is parsed once; every placeholder becomes a marker, the template with
markers is read by the reader of its language (:mod:`.shell` for ``sh``/``bash``
commands and scripts, :mod:`.pycode` for ``python`` scripts), and each value goes in
made safe for the place it stands in. A script for any other interpreter takes only
plain values. ``quote=False`` pastes values as they are (yadage's behaviour).
"""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity.placeholders import Placeholder, check_plain, words_of
from mltoolkit.yadage.packtivity.pycode import fill_python
from mltoolkit.yadage.packtivity.shell import fill_shell
from mltoolkit.yadage.packtivity.shell_lexer import MARK

__all__ = ["LANGUAGES", "interpolate"]

#: The languages a template can be read in.
LANGUAGES = ("shell", "python", "other")


def _parse(template: str, where: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(template))
    except ValueError as error:
        raise SpecError(
            f"{where}: the command template has malformed braces ({error}); write literal braces "
            "as {{ and }} (yadage fills templates with Python str.format)"
        ) from None


def _resolve(field: str, conversion: str | None, format_spec: str | None, namespace: dict[str, Any], where: str) -> Any:
    formatter = string.Formatter()
    try:
        value, _ = formatter.get_field(field, (), namespace)
    except (KeyError, IndexError, AttributeError):
        known = ", ".join(sorted(namespace)) or "none"
        raise SpecError(
            f"{where}: the template uses {{{field}}} but the step has no such parameter "
            f"(parameters: {known}); add the parameter or write literal braces as {{{{ }}}}"
        ) from None
    if conversion:
        value = formatter.convert_field(value, conversion)
    if format_spec:
        try:
            value = formatter.format_field(value, format_spec)
        except (ValueError, TypeError) as error:
            raise SpecError(f"{where}: cannot format {{{field}:{format_spec}}} ({error})") from None
    return value


def _marker_for(language: str, template: str, where: str) -> tuple[str, re.Pattern[str]]:
    """A marker format (``{}`` for the number) that cannot occur in ``template``."""
    if language == "shell":
        if MARK in template:
            raise SpecError(f"{where}: the command template contains a NUL character; remove it")
        return MARK + "{}" + MARK, re.compile(MARK + r"(\d+)" + MARK)
    token = secrets.token_hex(6)
    while token in template:  # pragma: no cover - 48 random bits
        token = secrets.token_hex(6)
    return f"_mltk{token}_{{}}_", re.compile(rf"_mltk{token}_(\d+)_")


def _fill_other(marked: str, placeholders: list[Placeholder], marker: re.Pattern[str]) -> str:
    for match in marker.finditer(marked):
        placeholder = placeholders[int(match.group(1))]
        placeholder.line = marked.count("\n", 0, match.start()) + 1
        check_plain(
            placeholder,
            words_of(placeholder.value),
            "in a script for an interpreter whose syntax the runner does not read",
            "pass it in a file or run the script with sh, bash or python",
        )
    return marker.sub(lambda match: " ".join(words_of(placeholders[int(match.group(1))].value)), marked)


def interpolate(
    template: str,
    parameters: Mapping[str, Any],
    *,
    workdir: str | os.PathLike[str] | None = None,
    quote: bool = True,
    language: str = "shell",
    where: str = "step",
) -> str:
    """Fill ``{name}`` placeholders of ``template`` (Python ``str.format`` syntax).

    With ``quote`` every value is made safe for the place it lands in, as the rules
    of the package docs say (``language``: ``shell``, ``python`` or ``other``);
    lists become space-separated words. ``quote=False`` pastes values raw.

    Raises:
        SpecError: a placeholder names no parameter, the template's braces are
            malformed, or a value is refused where it stands (one line naming the
            step, the parameter, the line and the position).
    """
    namespace = dict(parameters)
    if workdir is not None:
        namespace.setdefault("workdir", str(workdir))
    parsed = _parse(template, where)
    form, marker = _marker_for(language, template, where) if quote else ("", re.compile("$^"))
    pieces: list[str] = []
    placeholders: list[Placeholder] = []
    for literal, field, format_spec, conversion in parsed:
        pieces.append(literal)
        if field is None:
            continue
        value = _resolve(field, conversion, format_spec, namespace, where)
        if not quote:
            pieces.append(" ".join(words_of(value)))
            continue
        pieces.append(form.format(len(placeholders)))
        placeholders.append(Placeholder(field, value, where))
    marked = "".join(pieces)
    if not placeholders:
        return marked
    if language == "shell":
        return fill_shell(marked, placeholders)
    if language == "python":
        return fill_python(marked, placeholders, marker)
    return _fill_other(marked, placeholders, marker)
