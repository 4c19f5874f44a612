"""Compare two nested values (parsed JSON or YAML) with numbers within a tolerance.

Mappings must have the same keys, lists the same length, text and booleans must
be equal, and numbers must satisfy ``|a - b| <= atol + rtol * |b|`` (as
:func:`math.isclose` with ``b`` the archived value's partner). The result names
the worst pair, e.g. ``nearest_neighbours 0.975 -> 0.90``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NumberDifference", "Tolerance", "ValueComparison", "compare_values", "format_number"]


@dataclass(frozen=True)
class Tolerance:
    """How far a reproduced result may be from the archived one and still count as reproduced.

    ``rtol``/``atol`` for numbers (as :func:`math.isclose`); ``image`` is the share
    of pixels (0..1) of a figure that may differ.
    """

    rtol: float = 1e-6
    atol: float = 1e-9
    image: float = 0.001

    def close(self, archived: float, now: float) -> bool:
        """Whether ``now`` is within tolerance of ``archived``."""
        if math.isnan(archived) or math.isnan(now):
            return math.isnan(archived) and math.isnan(now)
        return abs(archived - now) <= self.atol + self.rtol * abs(archived)


@dataclass(frozen=True)
class NumberDifference:
    """Two numbers at the same place (``where``: keys and indexes joined by dots) that differ."""

    where: str
    archived: float
    now: float

    @property
    def size(self) -> float:
        """The difference, relative to the larger magnitude (absolute below 1)."""
        scale = max(abs(self.archived), abs(self.now), 1.0)
        return abs(self.archived - self.now) / scale if math.isfinite(scale) else math.inf

    def describe(self) -> str:
        """``where archived -> now``, e.g. ``nearest_neighbours 0.975 -> 0.90``."""
        return f"{self.where or 'value'} {format_number(self.archived)} -> {format_number(self.now)}"


@dataclass
class ValueComparison:
    """What differs between two values: numbers (any size) and structural differences."""

    numbers: int = 0
    within: list[NumberDifference] = field(default_factory=list)
    beyond: list[NumberDifference] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """No difference at all."""
        return not (self.within or self.beyond or self.other)

    @property
    def within_tolerance(self) -> bool:
        """Only numbers differ, each within tolerance."""
        return not (self.beyond or self.other)

    def worst(self) -> NumberDifference | None:
        """The largest difference of numbers (beyond tolerance first)."""
        pool = self.beyond or self.within
        return max(pool, key=lambda difference: difference.size) if pool else None

    def describe(self) -> str:
        """One line: the worst pair and how many values differ."""
        parts = []
        worst = self.worst()
        if worst is not None:
            count = len(self.beyond or self.within)
            kind = "beyond tolerance" if self.beyond else "within tolerance"
            parts.append(f"{worst.describe()} ({count} of {self.numbers} numbers {kind})")
        if self.other:
            more = f" and {len(self.other) - 1} more" if len(self.other) > 1 else ""
            parts.append(f"{self.other[0]}{more}")
        return "; ".join(parts) or "equal"


def format_number(value: float) -> str:
    """A number as people read scores: at least two decimals for fractions (``0.90``), else short."""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    if round(value, 2) == value:
        return f"{value:.2f}"
    return f"{value:.6g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _joined(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def _pairs(where: str, archived: Any, now: Any) -> Iterator[tuple[str, Any, Any]]:
    """Every leaf pair of the two values, or a pair whose structure differs (``None`` marks absence)."""
    if isinstance(archived, Mapping) and isinstance(now, Mapping):
        for key in list(archived) + [key for key in now if key not in archived]:
            if key not in now or key not in archived:
                yield _joined(where, key), archived.get(key, _ABSENT), now.get(key, _ABSENT)
            else:
                yield from _pairs(_joined(where, key), archived[key], now[key])
    elif isinstance(archived, list) and isinstance(now, list) and len(archived) == len(now):
        for index, (left, right) in enumerate(zip(archived, now)):
            yield from _pairs(_joined(where, index), left, right)
    else:
        yield where, archived, now


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def compare_values(archived: Any, now: Any, tolerance: Tolerance) -> ValueComparison:
    """Walk both values side by side; collect the numbers that differ and every other difference."""
    result = ValueComparison()
    for where, left, right in _pairs("", archived, now):
        if _is_number(left) and _is_number(right):
            result.numbers += 1
            if left == right:
                continue
            difference = NumberDifference(where, float(left), float(right))
            (result.within if tolerance.close(float(left), float(right)) else result.beyond).append(difference)
        elif left != right or type(left) is not type(right):
            if isinstance(left, list) and isinstance(right, list):
                result.other.append(f"{where or 'list'}: {len(left)} items -> {len(right)}")
            else:
                result.other.append(f"{where or 'value'}: {_shown(left)} -> {_shown(right)}")
    return result
