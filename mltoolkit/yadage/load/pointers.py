"""JSON pointers: ``/stages/0/scheduler`` as path parts, and following them into a document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.load.documents import display_name

__all__ = ["format_pointer", "parse_pointer", "walk_pointer"]


def format_pointer(parts: Iterable[Any]) -> str:
    """A JSON pointer (``/stages/0/scheduler``) from path parts; ``""`` for the root."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """Split a JSON pointer (``/a/b~1c``) into its unescaped parts.

    As yadage's reference resolver (jsonref) reads fragments: the leading ``/`` is
    optional (``steps.yml#hello_world`` is ``steps.yml#/hello_world``, the form
    the RECAST analysis template uses) and an empty fragment (``steps.yml#``)
    names the whole document.
    """
    text = pointer.lstrip("/")
    if not text:
        return ()
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in text.split("/"))


def walk_pointer(value: Any, pointer: tuple[str, ...], document: str, where: str, ref: str) -> Any:
    """The part of ``value`` (the content of ``document``) at ``pointer``.

    Raises:
        SpecError: nothing is there; the message lists the keys that are.
    """
    node = value
    for depth, part in enumerate(pointer):
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        here = format_pointer(pointer[:depth]) or "/"
        if isinstance(node, dict):
            found = f"keys there: {', '.join(map(str, list(node)[:12])) or 'none'}"
        else:
            found = f"found {type(node).__name__}"
        raise SpecError(
            f"{where}: $ref {ref!r}: {display_name(document)} has no {part!r} at #{here} ({found}); "
            "fix the JSON pointer after '#'"
        )
    return node
