"""Filling a step's ``{name}`` placeholders (Python ``str.format`` syntax, as in yadage)."""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.packtivity.shell import ShellScanner

__all__ = ["interpolate"]


def _raw_text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def interpolate(
    template: str,
    parameters: Mapping[str, Any],
    *,
    workdir: str | os.PathLike[str] | None = None,
    quote: bool = True,
    shell: bool = True,
    where: str = "step",
) -> str:
    """Fill ``{name}`` placeholders of ``template`` (Python ``str.format`` syntax).

    With ``quote`` and ``shell`` every value is quoted for the shell context it
    lands in (see the module docs); lists become space-separated words.

    Raises:
        SpecError: a placeholder names no parameter, or the template's braces are malformed.
    """
    namespace = dict(parameters)
    if workdir is not None:
        namespace.setdefault("workdir", str(workdir))
    formatter = string.Formatter()
    scanner = ShellScanner() if quote and shell else None
    pieces: list[str] = []
    try:
        parsed = list(formatter.parse(template))
    except ValueError as error:
        raise SpecError(
            f"{where}: the command template has malformed braces ({error}); write literal braces "
            "as {{ and }} (yadage fills templates with Python str.format)"
        ) from None
    for literal, field_name, format_spec, conversion in parsed:
        pieces.append(literal)
        if scanner is not None:
            scanner.feed(literal)
        if field_name is None:
            continue
        try:
            value, _ = formatter.get_field(field_name, (), namespace)
        except (KeyError, IndexError, AttributeError):
            known = ", ".join(sorted(namespace)) or "none"
            raise SpecError(
                f"{where}: the template uses {{{field_name}}} but the step has no such parameter "
                f"(parameters: {known}); add the parameter or write literal braces as {{{{ }}}}"
            ) from None
        if conversion:
            value = formatter.convert_field(value, conversion)
        if format_spec:
            try:
                value = formatter.format_field(value, format_spec)
            except (ValueError, TypeError) as error:
                raise SpecError(f"{where}: cannot format {{{field_name}:{format_spec}}} ({error})") from None
        if scanner is not None:
            inserted = scanner.quote(value, where=where)
            scanner.feed_inserted(inserted)
            pieces.append(inserted)
        else:
            pieces.append(_raw_text(value))
    return "".join(pieces)
