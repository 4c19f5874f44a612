"""The planner's state: scopes, stage entries, step records, and what has published.

:class:`RunState` does the bookkeeping and answers questions about the run; it
decides nothing. Deciding which stage to apply next and what steps it adds is
the scheduling side (:mod:`~mltoolkit.yadage.planner.readiness`,
:mod:`~mltoolkit.yadage.planner.resolve`, :mod:`~mltoolkit.yadage.planner.apply`,
driven by :class:`~mltoolkit.yadage.planner.run.WorkflowRun`).

Bookkeeping is incremental (counters, per-scope dirty flags), so 10,000 steps in
one stage cost linear time overall.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage.model import Workflow
from mltoolkit.yadage.planner.records import COMPLETED, DONE_STATES, FAILED, PENDING, RUNNING, StepRecord
from mltoolkit.yadage.planner.scopes import InitNode, Scope, StageEntry, StepNode
from mltoolkit.yadage.planner.values import resolve_init_files

__all__ = ["RunState"]


class RunState:
    """The state of one workflow run: which stages are applied, which steps have published.

    Args:
        workflow: the validated spec.
        init: the inputs (a mapping), i.e. the published values of stage ``init``.
        workdir: the run's folder; step folders are created under it by the executor.
        init_dir: folder of init files (default ``WORKDIR/init``).

    Raises:
        SpecError: ``init`` is not a mapping.
    """

    def __init__(
        self,
        workflow: Workflow,
        init: dict[str, Any],
        workdir: str | os.PathLike[str],
        *,
        init_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(init, dict):
            raise SpecError(f"inputs: found {type(init).__name__}, expected a mapping of input names to values")
        self.workflow = workflow
        self.workdir = Path(workdir).resolve()
        self.init_dir = Path(init_dir).resolve() if init_dir is not None else WorkdirLayout(self.workdir).init
        self.init = resolve_init_files(init, self.init_dir)
        #: One line per stage that could not be planned.
        self.errors: list[str] = []
        self._records: list[StepRecord] = []
        self._nodes: dict[str, StepNode] = {}
        self._scopes: dict[str, Scope] = {}
        self._folders: set[Path] = set()
        self._dirty: dict[Scope, None] = {}
        self._outstanding = 0
        self._failed_steps = 0
        self.root = self.new_scope("", workflow, self.init, self.workdir, None)

    # -- questions about the run ----------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True when no step is pending or running and :meth:`advance` has nothing left to apply."""
        return self._outstanding == 0 and not self._dirty

    @property
    def failed(self) -> bool:
        """True when a step failed, a stage could not be planned, or the run ended with stages never applied."""
        if self._failed_steps or self.errors:
            return True
        return self.finished and bool(self.unapplied_stages())

    @property
    def status(self) -> str:
        """``"running"``, ``"completed"`` or ``"failed"`` (the latter two once :attr:`finished`)."""
        if not self.finished:
            return "running"
        return "failed" if self.failed else "completed"

    def records(self) -> list[StepRecord]:
        """Every step scheduled so far, in scheduling order."""
        return list(self._records)

    def record(self, step_id: str) -> StepRecord:
        """The record of one step.

        Raises:
            KeyError: unknown step id.
        """
        return self._step(step_id).record

    def unapplied_stages(self) -> list[tuple[str, str]]:
        """``(scope, stage)`` of every stage not applied (yet), in scope order."""
        found: list[tuple[str, str]] = []
        for scope in sorted(self._scopes.values(), key=lambda scope: scope.sequence):
            for entry in scope.unapplied:
                if not entry.applied and entry.stage is not None:
                    found.append((scope.pointer, entry.stage.name))
        return found

    def problems(self) -> list[str]:
        """One line per reason the run failed or stalled (empty for a healthy run)."""
        lines = list(self.errors)
        for record in self._records:
            if record.state == FAILED:
                lines.append(f"step {record.id} failed: {record.error}")
        if self.finished:
            for scope, stage in self.unapplied_stages():
                lines.append(
                    f"stage {stage!r} in scope {scope or '/'} was never applied: its dependencies "
                    "never became ready (a step they need failed, or they select nothing)"
                )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "steps", "problems"}``: the content of ``run.json``."""
        return {
            "status": self.status,
            "steps": [record.to_dict() for record in self._records],
            "problems": self.problems(),
        }

    def scope_values(self, scope: str = "") -> dict[str, Any]:
        """The init values of a scope (``""`` for the root)."""
        return self._scopes[scope].init

    # -- what the executor reports --------------------------------------------------------

    def mark_running(self, step_id: str) -> None:
        """Note that a step has started (state ``RUNNING``)."""
        node = self._step(step_id)
        if node.record.state == PENDING:
            node.record.state = RUNNING

    def record_success(self, step_id: str, published: Any, *, state: str = COMPLETED) -> None:
        """Store what a step published; its dependants may now be applied by :meth:`advance`.

        ``state`` may be ``CACHED`` for a step whose earlier result was reused.

        Raises:
            KeyError: unknown step id.
            ValueError: the step already finished, or ``state`` is not a success state.
        """
        if state not in DONE_STATES:
            raise ValueError(f"record_success: state must be one of {sorted(DONE_STATES)}, got {state!r}")
        node = self._unfinished_step(step_id)
        node.record.published = published
        node.record.state = state
        self._outstanding -= 1
        entry = node.entry
        entry.pending -= 1
        if entry.applied and entry.pending == 0:
            self.entry_done(entry)
        self.mark_dirty(entry.scope)

    def record_failure(self, step_id: str, error: str) -> None:
        """Mark a step as failed; stages that need it will never be applied.

        Raises:
            KeyError: unknown step id.
            ValueError: the step already finished.
        """
        node = self._unfinished_step(step_id)
        node.record.state = FAILED
        node.record.error = str(error)
        self._outstanding -= 1
        self._failed_steps += 1
        self.mark_dirty(node.entry.scope)

    def _step(self, step_id: str) -> StepNode:
        try:
            node = self._nodes[step_id]
        except KeyError:
            raise KeyError(f"no step with id {step_id!r} in this run") from None
        if isinstance(node, InitNode):
            raise KeyError(f"{step_id!r} is the virtual init step, not a step to record")
        return node

    def _unfinished_step(self, step_id: str) -> StepNode:
        node = self._step(step_id)
        if node.record.state in DONE_STATES or node.record.state == FAILED:
            raise ValueError(f"step {step_id} already finished ({node.record.state}); record it once")
        return node

    # -- bookkeeping for the scheduler ----------------------------------------------------

    def find_node(self, step_id: str) -> StepNode | None:
        """The node of a step (``init`` steps included), or ``None``."""
        return self._nodes.get(step_id)

    def find_scope(self, pointer: str) -> Scope:
        """The scope at ``pointer`` (``""`` for the root)."""
        return self._scopes[pointer]

    def take_dirty(self) -> list[Scope]:
        """The scopes that changed since the last call, in creation order (and forget them)."""
        scopes = sorted(self._dirty, key=lambda scope: scope.sequence)
        self._dirty.clear()
        return scopes

    def mark_dirty(self, scope: Scope) -> None:
        """Note that ``scope`` (and so every scope around it) may have a stage to apply."""
        for each in scope.ancestors():
            self._dirty[each] = None

    def new_scope(
        self, pointer: str, workflow: Workflow, init: Any, directory: Path, parent_entry: StageEntry | None
    ) -> Scope:
        """Add a workflow instance whose ``init`` stage has published ``init``."""
        scope = Scope(pointer, workflow, init, directory, parent_entry, len(self._scopes))
        self._scopes[pointer] = scope
        init_record = StepRecord(
            id=f"{pointer}/init",
            scope=pointer,
            stage="init",
            index=None,
            name="init",
            workdir=str(self.init_dir if parent_entry is None else directory),
            parameters={},
        )
        init_entry = StageEntry(None, scope)
        init_node = InitNode(init_record, init_entry, init)
        self._nodes[init_record.id] = init_node
        init_entry.applied = init_entry.done = True
        init_entry.add(init_node)
        scope.add_entry("init", init_entry)
        for stage in workflow.stages:
            entry = StageEntry(stage, scope)
            scope.add_entry(stage.name, entry)
            scope.unapplied.append(entry)
        scope.unfinished = len(workflow.stages)
        scope.done = scope.unfinished == 0
        self.mark_dirty(scope)
        return scope

    def folder_in_use(self, folder: Path) -> bool:
        """True when a step or instance of this run already has ``folder``."""
        return folder in self._folders

    def add_step(
        self, entry: StageEntry, index: int | None, name: str, folder: Path, parameters: dict[str, Any]
    ) -> StepRecord:
        """Schedule a step of ``entry``'s stage; returns its (pending) record."""
        scope = entry.scope
        record = StepRecord(
            id=f"{scope.pointer}/{name}",
            scope=scope.pointer,
            stage=entry.name,
            index=index,
            name=name,
            workdir=str(folder),
            parameters=parameters,
        )
        node = StepNode(record, entry)
        self._folders.add(folder)
        self._nodes[record.id] = node
        self._records.append(record)
        entry.add(node)
        entry.pending += 1
        self._outstanding += 1
        return record

    def add_instance(self, entry: StageEntry, workflow: Workflow, init: Any, folder: Path) -> Scope:
        """Start an instance of a subworkflow stage (scope ``<parent>/<stage>/<n>``) in ``folder``."""
        parent = entry.scope
        pointer = f"{parent.pointer}/{entry.name}/{len(entry.items)}"
        self._folders.add(folder)
        subscope = self.new_scope(pointer, workflow, init, folder, entry)
        entry.add(subscope)
        if not subscope.done:
            entry.pending += 1
        return subscope

    def finish_applying(self, entry: StageEntry) -> None:
        """Mark ``entry`` applied once its steps and instances are added."""
        entry.applied = True
        for each in entry.scope.ancestors():
            each.version += 1
        if entry.pending == 0:
            self.entry_done(entry)

    def entry_done(self, entry: StageEntry) -> None:
        """A stage is done: count it in its scope, and finish the scope (and its parent entry) when complete."""
        current: StageEntry | None = entry
        while current is not None:
            current.done = True
            scope = current.scope
            scope.unfinished -= 1
            self.mark_dirty(scope)
            if scope.unfinished != 0:
                return
            scope.done = True
            parent_entry = scope.parent_entry
            if parent_entry is None:
                return
            parent_entry.pending -= 1
            current = parent_entry if parent_entry.applied and parent_entry.pending == 0 else None

    def fail_entry(self, entry: StageEntry, message: str) -> None:
        """A stage could not be planned: it will never be applied, and the run fails with ``message``."""
        entry.failed = True
        if entry in entry.scope.unapplied:
            entry.scope.unapplied.remove(entry)
        self.errors.append(message)
