"""Where each part of a loaded spec came from: document, JSON pointer and line, for messages."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mltoolkit.yadage.load.documents import display_name
from mltoolkit.yadage.load.pointers import format_pointer

__all__ = ["LoadedSpec", "Location", "Origins", "PathParts", "line_of", "locate"]

#: A path in a loaded tree: keys and list indexes.
PathParts = tuple[Any, ...]
#: Resolved path -> (document, pointer) at every expanded reference.
Origins = dict[PathParts, tuple[str, tuple[Any, ...]]]


@functools.lru_cache(maxsize=32)
def _composed(text: str) -> Any:
    import yaml

    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def _child(node: Any, part: Any) -> tuple[Any, int] | None:
    """The YAML node under ``node`` at ``part`` and the line a reader looks at; ``None`` if absent."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if str(key_node.value) == str(part):
                # the key's line is where a reader looks for "stages:" etc.
                return value_node, key_node.start_mark.line + 1
        return None
    if isinstance(node, yaml.SequenceNode):
        try:
            item = node.value[int(part)]
        except (ValueError, IndexError):
            return None
        return item, item.start_mark.line + 1
    return None


def line_of(text: str, parts: PathParts) -> int | None:
    """1-based line of the YAML node at ``parts`` in ``text``, or the closest ancestor's."""
    node = _composed(text)
    line = node.start_mark.line + 1 if node is not None else None
    for part in parts:
        found = _child(node, part)
        if found is None:
            return line
        node, line = found
    return line


@dataclass(frozen=True)
class Location:
    """Where a piece of a loaded spec came from: a document and a JSON pointer in it."""

    document: str
    pointer: tuple[Any, ...]
    line: int | None = None

    def __str__(self) -> str:
        where = display_name(self.document)
        if self.line is not None:
            where += f" line {self.line}"
        return f"{where} (#{format_pointer(self.pointer)})"


def locate(document: str, pointer: PathParts, texts: dict[str, str]) -> Location:
    """The location of ``pointer`` in ``document``, with its line when the text is known."""
    text = texts.get(document)
    return Location(document, pointer, line_of(text, pointer) if text is not None else None)


@dataclass
class LoadedSpec:
    """A spec with every ``$ref`` resolved, plus where each part came from.

    Attributes:
        data: the resolved tree (plain dicts, lists and scalars).
        source: the document the tree was loaded from (absolute path or URL).
        toplevel: the folder (or base URL) relative references fall back to.
        pointer: JSON pointer of ``data`` inside ``source`` (``()`` for the whole file).
        origins: resolved path -> (document, pointer) at every expanded reference.
        texts: the text of every document read, for line numbers in messages.
    """

    data: Any
    source: str
    toplevel: str
    pointer: tuple[Any, ...] = ()
    origins: Origins = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def documents(self) -> list[str]:
        """Every document read to build :attr:`data` (paths or URLs): :attr:`source` first, then each ``$ref``'d one."""
        return list(self.texts)

    def location(self, path: Iterable[Any] = ()) -> Location:
        """The document, pointer and line that a path in :attr:`data` came from."""
        parts = tuple(path)
        for cut in range(len(parts), -1, -1):
            origin = self.origins.get(parts[:cut])
            if origin is not None:
                document, base = origin
                return locate(document, tuple(base) + parts[cut:], self.texts)
        return Location(self.source, tuple(self.pointer) + parts, None)

    def where(self, path: Iterable[Any] = ()) -> str:
        """``"steps.yml line 4 (#/classification_step/process)"`` for a path in :attr:`data`."""
        return str(self.location(path))
