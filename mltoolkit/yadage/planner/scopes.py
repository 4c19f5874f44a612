"""The planner's building blocks: scopes, the stage entries in them, and step nodes.

A *scope* is one workflow instance (the root, or one instance of a subworkflow
stage, pointer ``/map/0``). It has one *entry* per stage (plus ``init``); an
entry collects what the stage added when it was applied: step *nodes*, or
scopes of subworkflow instances.

Each scope also keeps a JSON *view* of itself (``{"_offset": pointer,
"stage": [{"_nodeid": id}, ...]}``) that JSONPath and jq selections run on, as
in yadage; the view's lists know their entry, so a match leads back to the
planner's objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mltoolkit.yadage.model import Stage, Workflow
from mltoolkit.yadage.planner.records import COMPLETED, DONE_STATES, StepRecord

__all__ = ["EntryView", "InitNode", "Scope", "StageEntry", "StepNode"]


class EntryView(list):
    """The list a scope's JSON view shows for a stage; knows its entry."""

    __slots__ = ("entry",)

    def __init__(self, entry: StageEntry) -> None:
        super().__init__()
        self.entry = entry


class StepNode:
    """One scheduled step: its record, and the entry of the stage that added it."""

    __slots__ = ("entry", "record", "view")

    def __init__(self, record: StepRecord, entry: StageEntry) -> None:
        self.record = record
        self.entry = entry
        self.view = {"_nodeid": record.id}

    @property
    def done(self) -> bool:
        """True once the step has published (completed or cached)."""
        return self.record.state in DONE_STATES

    @property
    def result(self) -> Any:
        """What the step published."""
        return self.record.published


class InitNode(StepNode):
    """The virtual ``init`` step of a scope: it has published the scope's inputs from the start."""

    __slots__ = ()

    def __init__(self, record: StepRecord, entry: StageEntry, values: Any) -> None:
        super().__init__(record, entry)
        record.published = values
        record.state = COMPLETED


class StageEntry:
    """A stage within a scope: applied yet? how many of its items are pending? done?"""

    __slots__ = ("applied", "done", "failed", "items", "pending", "scope", "stage", "view")

    def __init__(self, stage: Stage | None, scope: Scope) -> None:
        self.stage = stage  # None for init
        self.scope = scope
        self.applied = False
        self.done = False
        self.failed = False
        self.pending = 0
        self.items: list[StepNode | Scope] = []
        self.view = EntryView(self)

    @property
    def name(self) -> str:
        """The stage's name (``init`` for the inputs)."""
        return self.stage.name if self.stage is not None else "init"

    def add(self, item: StepNode | Scope) -> None:
        """Add a step or a subworkflow instance (and show it in the scope's view)."""
        self.items.append(item)
        self.view.append(item.view)


class Scope:
    """One workflow instance: its stages' entries, registered values and folder."""

    __slots__ = (
        "directory",
        "done",
        "entries",
        "init",
        "parent",
        "parent_entry",
        "pointer",
        "selection_cache",
        "sequence",
        "unapplied",
        "unfinished",
        "values",
        "version",
        "view",
        "workflow",
    )

    def __init__(
        self,
        pointer: str,
        workflow: Workflow,
        init: Any,
        directory: Path,
        parent_entry: StageEntry | None,
        sequence: int,
    ) -> None:
        self.pointer = pointer
        self.workflow = workflow
        self.init = init
        self.directory = directory
        self.parent = parent_entry.scope if parent_entry is not None else None
        self.parent_entry = parent_entry
        self.entries: dict[str, StageEntry] = {}
        self.view: dict[str, Any] = {"_offset": pointer}
        self.values: dict[str, Any] = {}  # register_values
        self.unfinished = 0  # stages not done yet
        self.done = False
        self.version = 0  # bumped when this scope or one inside it gains steps or instances
        self.sequence = sequence  # creation order
        self.unapplied: list[StageEntry] = []
        # expression -> (version, matched objects, how many of them are known to be done)
        self.selection_cache: dict[str, tuple[int, list[Any], int]] = {}

    def add_entry(self, name: str, entry: StageEntry) -> None:
        """Add a stage's entry (and its list in the view)."""
        self.entries[name] = entry
        self.view[name] = entry.view

    def ancestors(self) -> Iterator[Scope]:
        """This scope, its parent, ... up to the root."""
        scope: Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent
