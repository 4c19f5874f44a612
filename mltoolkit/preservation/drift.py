"""Environment drift between two runs: software versions, platform, machine and CPU flags.

Read from the run records (``software``, and ``environment`` when the run
recorded one); for a reproduction, "now" is the new run's record. Drift is
reported, not judged: a run may reproduce on a newer stack, and when it does not,
the drift table says what changed underneath it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mltoolkit.workdir.record import RunRecord

__all__ = ["Drift", "environment_drift"]

#: CPU flags listed by name in one row; more are counted.
MAX_LISTED_FLAGS = 8


@dataclass(frozen=True)
class Drift:
    """One item of the environment and its value in each run (``-`` when a run did not record it)."""

    item: str
    archived: str
    now: str

    @property
    def changed(self) -> bool:
        """Whether the item differs between the runs."""
        return self.archived != self.now

    def as_json(self) -> dict[str, Any]:
        """The row as written to the reports."""
        return {"item": self.item, "archived": self.archived, "now": self.now, "changed": self.changed}


def _environment(record: RunRecord) -> dict[str, Any]:
    """The record's ``environment`` (platform, machine, CPU flags) as a mapping; ``{}`` when not recorded."""
    return record.environment.model_dump() if record.environment is not None else {}


def _listed(flags: list[str]) -> str:
    more = f" +{len(flags) - MAX_LISTED_FLAGS} more" if len(flags) > MAX_LISTED_FLAGS else ""
    return " ".join(flags[:MAX_LISTED_FLAGS]) + more


def _only_here(flags: list[str]) -> str:
    return f"only here: {_listed(flags)}" if flags else "-"


def _counted(flags: list[str] | None) -> str:
    return "-" if flags is None else f"{len(flags)} flags"


def _flags_row(archived: list[str] | None, now: list[str] | None) -> Drift:
    """CPU flags: counted when equal (or one run has none), else the flags only one run has."""
    if archived is None or now is None or set(archived) == set(now):
        return Drift("cpu flags", _counted(archived), _counted(now))
    gone, new = sorted(set(archived) - set(now)), sorted(set(now) - set(archived))
    return Drift(
        "cpu flags", f"only here: {_listed(gone)}" if gone else "-", f"only here: {_listed(new)}" if new else "-"
    )


def environment_drift(archived: RunRecord, now: RunRecord) -> list[Drift]:
    """Every software version and environment item of either run, archived vs now."""
    rows = []
    names = list(archived.software) + [name for name in now.software if name not in archived.software]
    for name in names:
        rows.append(Drift(name, archived.software.get(name, "-"), now.software.get(name, "-")))
    old, new = _environment(archived), _environment(now)
    for item in ("platform", "machine"):
        if item in old or item in new:
            rows.append(Drift(item, str(old.get(item, "-")), str(new.get(item, "-"))))
    if "cpu_flags" in old or "cpu_flags" in new:
        rows.append(_flags_row(old.get("cpu_flags"), new.get("cpu_flags")))
    return rows
