"""A placeholder's value, the character sets of restricted positions, and the one-line refusal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mltoolkit.errors import SpecError

__all__ = ["PLAIN_CHARACTERS", "Placeholder", "check_integer", "check_plain", "refuse", "words_of"]

#: What a value may hold where its position cannot be proven safe (and it may not start with '-').
PLAIN_CHARACTERS = "letters, digits and _ . / : + , - (not first)"
_PLAIN = re.compile(r"[A-Za-z0-9_./:+,-]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass
class Placeholder:
    """One ``{name}`` of a template: what it was called, its value, where it stands."""

    name: str
    value: Any
    where: str  # the step, for messages ("stage 'x' step x_0")
    line: int = 0  # 1-based line of the template

    def fail(self, position: str, problem: str, fix: str) -> SpecError:
        """The one-line error refusing this value at ``position``."""
        return refuse(self, position, problem, fix)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def refuse(placeholder: Placeholder, position: str, problem: str, fix: str) -> SpecError:
    """``stage 'x' step y: parameter 'p' (line 3, <position>): value '...' <problem>; <fix>``."""
    return SpecError(
        f"{placeholder.where}: parameter {placeholder.name!r} (line {placeholder.line}, {position}): "
        f"value {_preview(placeholder.value)} {problem}; {fix}, or run with --unsafe-no-quoting (unsafe)"
    )


def words_of(value: Any) -> list[str]:
    """A value as the words yadage makes of it: list elements, or the value itself."""
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


def check_plain(placeholder: Placeholder, words: list[str], position: str, fix: str) -> None:
    """Refuse ``words`` unless each is plain (see :data:`PLAIN_CHARACTERS`)."""
    for word in words:
        if _PLAIN.fullmatch(word) is None or word.startswith("-"):
            bad = word[0] if word.startswith("-") else next(c for c in word if not _PLAIN.fullmatch(c))
            raise placeholder.fail(position, f"has {bad!r}, but only {PLAIN_CHARACTERS} may stand there", fix)


def check_integer(placeholder: Placeholder, words: list[str], position: str, fix: str) -> None:
    """Refuse ``words`` unless each is a decimal integer."""
    for word in words:
        if _INTEGER.fullmatch(word) is None:
            raise placeholder.fail(position, "is not an integer, and only an integer may stand there", fix)
