"""Entity ids of a run crate: quoting, stage paths, and unique ids for repeated steps."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

__all__ = ["EntityIds", "is_uri", "quote_path", "stage_path"]


def is_uri(key: str) -> bool:
    """``key`` is an absolute URI (``file://``, ``https://``...), not a path inside the crate."""
    return len(urlsplit(key).scheme) > 1


def quote_path(text: str) -> str:
    """``text`` as the absolute, percent-quoted path part of a ``#...`` id."""
    text = text if text.startswith("/") else "/" + text
    return quote(text, safe="/-_.~")


def stage_path(scope: str, stage: str) -> str:
    """``/map/stage1`` for stage ``stage1`` in scope ``/map/3``: instances share the stage."""
    parts = [part for part in scope.split("/") if part and not part.isdigit()]
    return quote_path("/".join([*parts, stage]))


class EntityIds:
    """The ids given out so far, so that a malformed record repeating a step id still makes distinct entities."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, identifier: str) -> None:
        """Note ``identifier`` as used."""
        self._taken.add(identifier)

    def unique(self, identifier: str, position: int) -> str:
        """``identifier``, or a variant of it (``~<position>``) when it is already used; claimed."""
        if identifier in self._taken:
            base = f"{identifier}~{position}"
            identifier, n = base, 1
            while identifier in self._taken:
                identifier, n = f"{base}.{n}", n + 1
        self._taken.add(identifier)
        return identifier
