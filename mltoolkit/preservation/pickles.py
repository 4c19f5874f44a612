"""Compare two pickles without loading them: opcode by opcode, with :mod:`pickletools`.

:func:`pickletools.genops` only parses a pickle's opcodes; it never imports or
calls anything, so an archived pickle is safe to read this way. Two pickles of
the same structure differ only in their arguments: numbers (compared within
tolerance), text and raw bytes. A common case is a recorded file path: the
prepared data remembers the dataset file it was read from, and a reproduction
reads the archived copy of it, somewhere else. Text that differs only in the
folder of a path with the same file name is therefore *where* a run happened,
not *what* it computed, and counts as within tolerance; any other difference
does not.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from mltoolkit.preservation.numeric import Tolerance, format_number

__all__ = ["PickleDifference", "compare_pickles"]

#: Opcodes whose argument depends on the size of other parts (frame lengths), not on content.
_LAYOUT_OPCODES = frozenset({"FRAME", "PROTO"})


@dataclass
class PickleDifference:
    """What differs between two pickles of the same structure (``structure`` says when not)."""

    structure: str | None = None
    moved_paths: list[tuple[str, str]] = field(default_factory=list)
    numbers: list[tuple[float, float, bool]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def within_tolerance(self) -> bool:
        """Only moved paths and numbers within tolerance differ."""
        return self.structure is None and not self.other and all(close for _, _, close in self.numbers)

    def describe(self) -> str:
        """One line: what differs, read without loading either pickle."""
        if self.structure is not None:
            return f"pickle bytes differ ({self.structure})"
        parts = [f"{text} (bytes differ)" for text in self.other[:1]]
        beyond = [(old, new) for old, new, close in self.numbers if not close]
        if beyond:
            old, new = beyond[0]
            parts.append(f"{len(beyond)} number(s) beyond tolerance, e.g. {format_number(old)} -> {format_number(new)}")
        if self.moved_paths:
            old_path, new_path = self.moved_paths[0]
            parts.append(f"only recorded file paths differ, e.g. {old_path!r} -> {new_path!r}")
        if self.numbers and not beyond:
            parts.append(f"{len(self.numbers)} number(s) within tolerance")
        return "; ".join(parts) or "pickle bytes differ in layout only"


def _ops(data: bytes) -> list[tuple[str, Any]] | None:
    """The opcodes of ``data`` with their arguments, or ``None`` when it is not a valid pickle."""
    try:
        return [(opcode.name, argument) for opcode, argument, _ in pickletools.genops(data)]
    except (ValueError, EOFError, UnicodeDecodeError, IndexError):
        return None


def _same_file_elsewhere(old: str, new: str) -> bool:
    """Two absolute paths naming a file of the same name in different folders."""
    old_path, new_path = PurePath(old), PurePath(new)
    return old_path.is_absolute() and new_path.is_absolute() and old_path.name == new_path.name != ""


def _compare_argument(result: PickleDifference, old: Any, new: Any, tolerance: Tolerance) -> None:
    if isinstance(old, float) and isinstance(new, float):
        result.numbers.append((old, new, tolerance.close(old, new)))
    elif isinstance(old, str) and isinstance(new, str) and _same_file_elsewhere(old, new):
        result.moved_paths.append((old, new))
    elif isinstance(old, str) and isinstance(new, str):
        result.other.append(f"text {old[:40]!r} -> {new[:40]!r}")
    else:
        result.other.append(f"a value of {len(old) if hasattr(old, '__len__') else 1} item(s)")


def compare_pickles(archived: bytes, now: bytes, tolerance: Tolerance) -> PickleDifference:
    """Compare two pickles opcode by opcode (never loading them)."""
    old_ops, new_ops = _ops(archived), _ops(now)
    if old_ops is None or new_ops is None:
        return PickleDifference(structure="not a readable pickle")
    if [name for name, _ in old_ops] != [name for name, _ in new_ops]:
        return PickleDifference(structure=f"different structure: {len(old_ops)} -> {len(new_ops)} opcodes")
    result = PickleDifference()
    for (name, old), (_, new) in zip(old_ops, new_ops):
        if name not in _LAYOUT_OPCODES and old != new:
            _compare_argument(result, old, new, tolerance)
    return result
