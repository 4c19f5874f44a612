"""What the planner hands out: step states, step records (``run.json``), planned steps and stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltoolkit.yadage.model import StepSpec

__all__ = [
    "CACHED",
    "COMPLETED",
    "DONE_STATES",
    "FAILED",
    "PENDING",
    "RUNNING",
    "PlannedStage",
    "PlannedStep",
    "StepRecord",
]

PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
CACHED = "CACHED"
FAILED = "FAILED"
#: States in which a step's published values can be used downstream.
DONE_STATES = frozenset({COMPLETED, CACHED})


@dataclass
class StepRecord:
    """What ``run.json`` keeps about one step."""

    id: str
    scope: str
    stage: str
    index: int | None
    name: str
    workdir: str
    parameters: dict[str, Any]
    published: Any = None
    state: str = PENDING
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``steps`` entries of ``run.json``)."""
        return {
            "id": self.id,
            "scope": self.scope,
            "stage": self.stage,
            "index": self.index,
            "name": self.name,
            "workdir": self.workdir,
            "parameters": self.parameters,
            "published": self.published,
            "state": self.state,
            "error": self.error,
        }


@dataclass
class PlannedStep:
    """One step ready to run: its identity, folder, resolved parameters and spec."""

    id: str
    scope: str
    stage: str
    index: int | None
    name: str
    workdir: Path
    parameters: dict[str, Any]
    step: StepSpec
    where: str = ""


@dataclass
class PlannedStage:
    """The steps one stage application added (a multistep stage is one ``.map``)."""

    scope: str
    stage: str
    steps: list[PlannedStep]
    scheduler_type: str = "singlestep-stage"
    #: Ids of the steps this stage's steps depend on (the steps its dependencies select).
    upstream: tuple[str, ...] = ()
