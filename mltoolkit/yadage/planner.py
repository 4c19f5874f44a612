"""Phase 4 of the spec loader: the workflow state machine, without running anything.

:class:`WorkflowRun` is what an executor (the Prefect adapter, or
:func:`mltoolkit.yadage.runner.run_workflow`) drives::

    run = WorkflowRun(workflow, init, workdir)
    while not run.finished:
        for stage in run.advance():            # stages whose dependencies have published
            for step in stage.steps:           # ...each with its resolved parameters
                result = run_step(step.step, step.parameters, step.workdir, ...)
                run.record_success(step.id, result.published)   # or record_failure
    run.records()                              # every step, in scheduling order

Semantics follow yadage:

* The inputs are the published values of a virtual stage ``init`` (relative values
  naming files that exist in ``WORKDIR/init/`` become absolute paths there).
* A stage is applied once every dependency expression is ready: a stage name (or
  JSONPath over the scope, such as ``'map.[*].stage1'``) is ready when the stages
  it selects have been applied and all their steps -- recursively, all steps of
  selected subworkflow instances -- have published.
* ``singlestep-stage`` adds one step named after the stage (workdir
  ``<scope dir>/<stage>``); ``multistep-stage`` and ``jq-stage`` add ``<stage>_<i>``
  (workdir ``<scope dir>/<stage>_<i>``). A stage that runs a ``workflow`` adds a
  *scope* per instance instead, with pointer ``<parent>/<stage>/<n>`` (``/map/0``),
  its own ``init`` (the instance's parameters) and folder (``WORKDIR/map_0``).
* ``{workdir}`` in any string parameter becomes the step's (or instance's) folder.
* ``register_values`` stores expressions in the scope; ``{expression_type:
  fromvalue, key: K}`` reads them, and a selection that matches subworkflow
  instances (``{stages: 'map[*]', output: K}``) reads the value ``K`` registered
  inside each instance.

Deliberate differences from yadage: a stage that was applied but scheduled no
step (empty scatter, no matching case) counts as done, so its dependants still
run instead of waiting forever; a JSONPath dependency is never ready while the
stage it starts from is unapplied (yadage may start too early); a problem found
while planning a stage (zip of unequal lists, missing output...) fails that
stage with a one-line message in :attr:`WorkflowRun.errors` instead of crashing
the executor, and the run ends as failed.

Bookkeeping is incremental (counters, per-scope dirty flags, cached selections),
so 10,000 steps in one stage cost linear time overall.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.model import (
    JqStage,
    MultistepStage,
    OutputReference,
    SinglestepStage,
    Stage,
    StepSpec,
    ValueReference,
    Workflow,
)
from mltoolkit.yadage.schedulers import jq_parameter_sets, scatter_parameters, select_case
from mltoolkit.yadage.selectors import (
    combine_outputs,
    parse_jsonpath,
    root_stage,
    run_jq,
    select_output,
)

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
    "WorkflowRun",
    "fill_workdir",
    "resolve_init_files",
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


class _EntryView(list):
    """The list a scope's JSON view shows for a stage; knows its entry."""

    __slots__ = ("entry",)

    def __init__(self, entry: _Entry) -> None:
        super().__init__()
        self.entry = entry


class _Node:
    __slots__ = ("entry", "record", "view")

    def __init__(self, record: StepRecord, entry: _Entry) -> None:
        self.record = record
        self.entry = entry
        self.view = {"_nodeid": record.id}

    @property
    def done(self) -> bool:
        return self.record.state in DONE_STATES

    @property
    def result(self) -> Any:
        return self.record.published


class _InitNode(_Node):
    __slots__ = ()

    def __init__(self, record: StepRecord, entry: _Entry, values: Any) -> None:
        super().__init__(record, entry)
        record.published = values
        record.state = COMPLETED


class _Entry:
    __slots__ = ("applied", "done", "failed", "items", "pending", "scope", "stage", "view")

    def __init__(self, stage: Stage | None, scope: _Scope) -> None:
        self.stage = stage
        self.scope = scope
        self.applied = False
        self.done = False
        self.failed = False
        self.pending = 0
        self.items: list[_Node | _Scope] = []
        self.view = _EntryView(self)


class _Scope:
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
        parent: _Scope | None,
        parent_entry: _Entry | None,
        sequence: int,
    ) -> None:
        self.pointer = pointer
        self.workflow = workflow
        self.init = init
        self.directory = directory
        self.parent = parent
        self.parent_entry = parent_entry
        self.entries: dict[str, _Entry] = {}
        self.view: dict[str, Any] = {"_offset": pointer}
        self.values: dict[str, Any] = {}
        self.unfinished = 0
        self.done = False
        self.version = 0
        self.sequence = sequence
        self.unapplied: list[_Entry] = []
        self.selection_cache: dict[str, tuple[int, list[Any], int]] = {}

    def ancestors(self) -> Iterable[_Scope]:
        scope: _Scope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


_NON_MONOTONIC = re.compile(r"[\[:,]\s*-|\blast\b")


def _grows_monotonically(expression: str) -> bool:
    """True when new steps/stages can only add matches (no filters, negative indexes, 'last')."""
    return not (_NON_MONOTONIC.search(expression) or "?" in expression or "`" in expression)


def fill_workdir(value: Any, workdir: str) -> Any:
    """A deep copy of ``value`` with ``{workdir}`` replaced in every string."""
    if isinstance(value, str):
        return value.replace("{workdir}", workdir) if "{workdir}" in value else value
    if isinstance(value, list):
        return [fill_workdir(item, workdir) for item in value]
    if isinstance(value, dict):
        return {key: fill_workdir(item, workdir) for key, item in value.items()}
    return value


def resolve_init_files(values: Any, init_dir: Path | None) -> Any:
    """A copy of ``values`` where relative strings naming files in ``init_dir`` become absolute paths.

    URLs and absolute paths are kept; nothing changes when ``init_dir`` does not exist.
    """
    if init_dir is None or not init_dir.is_dir():
        return copy.deepcopy(values)
    base = init_dir.resolve()

    def visit(value: Any) -> Any:
        if isinstance(value, str):
            if value and "://" not in value and not os.path.isabs(value) and "\0" not in value:
                candidate = base / value
                try:
                    if candidate.exists():
                        return str(candidate)
                except OSError:
                    return value
            return value
        if isinstance(value, list):
            return [visit(item) for item in value]
        if isinstance(value, dict):
            return {key: visit(item) for key, item in value.items()}
        return value

    return visit(values)


class WorkflowRun:
    """The state of one workflow run: which stages are applied, which steps have published.

    Args:
        workflow: the validated spec.
        init: the inputs (a mapping), i.e. the published values of stage ``init``.
        workdir: the run's folder; step folders are created under it by the executor.
        init_dir: folder of init files (default ``WORKDIR/init``).

    Not thread-safe: call it from one thread (e.g. the flow's), and hand steps to
    workers from there.
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
        self.init_dir = Path(init_dir).resolve() if init_dir is not None else self.workdir / "init"
        self.init = resolve_init_files(init, self.init_dir)
        self.errors: list[str] = []
        self._records: list[StepRecord] = []
        self._nodes: dict[str, _Node] = {}
        self._scopes: dict[str, _Scope] = {}
        self._workdirs: set[str] = set()
        self._dirty: dict[_Scope, None] = {}
        self._outstanding = 0
        self._failed_steps = 0
        self._sequence = 0
        self.root = self._new_scope("", workflow, self.init, self.workdir, None, None)

    # -- public API -----------------------------------------------------------------------

    def advance(self) -> list[PlannedStage]:
        """Apply every stage whose dependencies are ready; return the stages that added steps.

        Stages of subworkflows started here are applied in the same call when
        ready. Problems found while planning a stage are appended to
        :attr:`errors` (the stage stays unapplied and the run fails).
        """
        planned: list[PlannedStage] = []
        while self._dirty:
            scopes = sorted(self._dirty, key=lambda scope: scope.sequence)
            self._dirty.clear()
            for scope in scopes:
                for entry in list(scope.unapplied):
                    if entry.applied or entry.failed:
                        continue
                    try:
                        ready = self._ready(scope, entry)
                    except SpecError as error:
                        self._fail_entry(entry, str(error))
                        continue
                    if not ready:
                        continue
                    scope.unapplied.remove(entry)
                    try:
                        stage_plan = self._apply(scope, entry)
                    except SpecError as error:
                        self._fail_entry(entry, str(error))
                        continue
                    if stage_plan is not None:
                        planned.append(stage_plan)
        return planned

    def mark_running(self, step_id: str) -> None:
        """Note that a step has started (state ``RUNNING``)."""
        node = self._node(step_id)
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
        node = self._node(step_id)
        if node.record.state in DONE_STATES or node.record.state == FAILED:
            raise ValueError(f"step {step_id} already finished ({node.record.state}); record it once")
        node.record.published = published
        node.record.state = state
        self._outstanding -= 1
        entry = node.entry
        entry.pending -= 1
        if entry.applied and entry.pending == 0:
            self._entry_done(entry)
        self._mark_dirty(entry.scope)

    def record_failure(self, step_id: str, error: str) -> None:
        """Mark a step as failed; stages that need it will never be applied.

        Raises:
            KeyError: unknown step id.
            ValueError: the step already finished.
        """
        node = self._node(step_id)
        if node.record.state in DONE_STATES or node.record.state == FAILED:
            raise ValueError(f"step {step_id} already finished ({node.record.state}); record it once")
        node.record.state = FAILED
        node.record.error = str(error)
        self._outstanding -= 1
        self._failed_steps += 1
        self._mark_dirty(node.entry.scope)

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
        return self._node(step_id).record

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

    # -- scopes and bookkeeping -----------------------------------------------------------

    def _node(self, step_id: str) -> _Node:
        try:
            node = self._nodes[step_id]
        except KeyError:
            raise KeyError(f"no step with id {step_id!r} in this run") from None
        if isinstance(node, _InitNode):
            raise KeyError(f"{step_id!r} is the virtual init step, not a step to record")
        return node

    def _new_scope(
        self,
        pointer: str,
        workflow: Workflow,
        init: Any,
        directory: Path,
        parent: _Scope | None,
        parent_entry: _Entry | None,
    ) -> _Scope:
        scope = _Scope(pointer, workflow, init, directory, parent, parent_entry, self._sequence)
        self._sequence += 1
        self._scopes[pointer] = scope
        init_entry = _Entry(None, scope)
        init_record = StepRecord(
            id=f"{pointer}/init",
            scope=pointer,
            stage="init",
            index=None,
            name="init",
            workdir=str(self.init_dir if parent is None else directory),
            parameters={},
        )
        init_node = _InitNode(init_record, init_entry, init)
        self._nodes[init_record.id] = init_node
        init_entry.applied = True
        init_entry.done = True
        init_entry.items.append(init_node)
        init_entry.view.append(init_node.view)
        scope.entries["init"] = init_entry
        scope.view["init"] = init_entry.view
        for stage in workflow.stages:
            entry = _Entry(stage, scope)
            scope.entries[stage.name] = entry
            scope.view[stage.name] = entry.view
            scope.unapplied.append(entry)
        scope.unfinished = len(workflow.stages)
        if scope.unfinished == 0:
            scope.done = True
        self._mark_dirty(scope)
        return scope

    def _mark_dirty(self, scope: _Scope) -> None:
        for each in scope.ancestors():
            self._dirty[each] = None

    def _bump(self, scope: _Scope) -> None:
        for each in scope.ancestors():
            each.version += 1

    def _entry_done(self, entry: _Entry) -> None:
        while True:
            entry.done = True
            scope = entry.scope
            scope.unfinished -= 1
            self._mark_dirty(scope)
            if scope.unfinished != 0:
                return
            scope.done = True
            parent_entry = scope.parent_entry
            if parent_entry is None:
                return
            parent_entry.pending -= 1
            if not (parent_entry.applied and parent_entry.pending == 0):
                return
            entry = parent_entry

    def _fail_entry(self, entry: _Entry, message: str) -> None:
        entry.failed = True
        if entry in entry.scope.unapplied:
            entry.scope.unapplied.remove(entry)
        self.errors.append(message)

    # -- readiness ------------------------------------------------------------------------

    def _item_done(self, item: Any) -> bool:
        if isinstance(item, _Node):
            return item.done
        if isinstance(item, _Scope):
            return item.done
        if isinstance(item, _Entry):
            return item.done
        return True

    def _match_objects(self, scope: _Scope, expression: str) -> list[Any]:
        """Entries, steps and scopes a JSONPath selects in ``scope`` (cached per structure version)."""
        cached = scope.selection_cache.get(expression)
        if cached is not None and cached[0] == scope.version:
            return cached[1]
        objects: list[Any] = []
        for match in parse_jsonpath(expression).find(scope.view):
            value = match.value
            if isinstance(value, _EntryView):
                objects.append(value.entry)
            elif isinstance(value, dict) and "_nodeid" in value:
                objects.append(self._nodes[value["_nodeid"]])
            elif isinstance(value, dict) and "_offset" in value:
                objects.append(self._scopes[value["_offset"]])
        scope.selection_cache[expression] = (scope.version, objects, 0)
        return objects

    def _expression_ready(self, scope: _Scope, expression: str) -> bool:
        entry = scope.entries.get(expression)
        if entry is not None:
            return entry.done
        root = root_stage(expression)
        root_entry = scope.entries.get(root) if root is not None else None
        if root_entry is not None and not root_entry.applied:
            return False
        stale = scope.selection_cache.get(expression)
        if stale is not None and stale[0] != scope.version and _grows_monotonically(expression):
            # Views only grow, so what matched before still matches: while one of those
            # is unfinished there is no need to run the (costly) query again.
            version, objects, cursor = stale
            while cursor < len(objects) and self._item_done(objects[cursor]):
                cursor += 1
            scope.selection_cache[expression] = (version, objects, cursor)
            if cursor < len(objects):
                return False
        objects = self._match_objects(scope, expression)
        if not objects:
            # yadage waits for a match; a root stage that is done and selects nothing never will
            return root_entry is not None and root_entry.done
        version, _, cursor = scope.selection_cache[expression]
        # done-ness only ever goes from False to True: resume where the last check stopped
        while cursor < len(objects) and self._item_done(objects[cursor]):
            cursor += 1
        scope.selection_cache[expression] = (version, objects, cursor)
        return cursor == len(objects)

    def _ready(self, scope: _Scope, entry: _Entry) -> bool:
        dependencies = entry.stage.dependencies
        if dependencies.dependency_type == "jsonpath_ready":
            return all(self._expression_ready(scope, expression) for expression in dependencies.expressions)
        for reference in dependencies.expressions:
            targets = self._select_targets(scope, reference.selection)
            if not targets or not all(self._item_done(target) for target in targets):
                return False
            if not self._resolve_reference(scope, reference, f"{entry.stage.where}: dependency"):
                return False
        return True

    # -- references -----------------------------------------------------------------------

    def _select_targets(self, scope: _Scope, selection: str) -> list[Any]:
        """Steps and subworkflow scopes a stage selection names, in order."""
        entry = scope.entries.get(selection)
        if entry is not None:
            return list(entry.items)
        targets: list[Any] = []
        for matched in self._match_objects(scope, selection):
            if isinstance(matched, _Entry):
                targets.extend(matched.items)
            else:
                targets.append(matched)
        return targets

    def _resolve_reference(self, scope: _Scope, reference: OutputReference, what: str) -> Any:
        targets = self._select_targets(scope, reference.selection)
        for target in targets:
            if isinstance(target, _Node) and not target.done:
                raise SpecError(
                    f"{what}: reads step {target.record.id} of stage {target.record.stage!r}, which has not "
                    f"published (state {target.record.state}); add {target.record.stage!r} to the "
                    "stage's dependencies"
                )
        if reference.single:
            steps = [target for target in targets if isinstance(target, _Node)]
            if len(steps) != 1:
                raise SpecError(
                    f"{what}: step: {reference.selection!r} selects {len(steps)} steps, expected exactly "
                    "one; use 'stages:' to collect values from several steps"
                )
            return copy.deepcopy(
                select_output(steps[0].result, reference.output, what=f"{what} (step {steps[0].record.id})")
            )
        values: list[Any] = []
        for target in targets:
            if isinstance(target, _Node):
                values.append(select_output(target.result, reference.output, what=f"{what} (step {target.record.id})"))
            elif isinstance(target, _Scope) and reference.output in target.values:
                values.append(
                    self._resolve_value(
                        target,
                        target.values[reference.output],
                        f"{what} (value {reference.output!r} registered in {target.pointer})",
                    )
                )
        return copy.deepcopy(combine_outputs(values, flatten=reference.flatten, unwrap=reference.unwrap))

    def _resolve_value(self, scope: _Scope, value: Any, what: str) -> Any:
        if isinstance(value, OutputReference):
            return self._resolve_reference(scope, value, what)
        if isinstance(value, ValueReference):
            if value.key not in scope.values:
                known = ", ".join(scope.values) or "none"
                raise SpecError(
                    f"{what}: no value {value.key!r} registered in scope {scope.pointer or '/'} "
                    f"(registered: {known}); register it with register_values in an earlier stage"
                )
            return self._resolve_value(scope, scope.values[value.key], f"{what} (value {value.key!r})")
        return copy.deepcopy(value)

    def _resolve_parameters(self, scope: _Scope, stage: Stage, parameters: dict[str, Any]) -> dict[str, Any]:
        return {
            key: self._resolve_value(scope, value, f"{stage.where}: stage {stage.name!r} parameter {key!r}")
            for key, value in parameters.items()
        }

    def _resolve_bindings(self, scope: _Scope, bindings: Any, stage: Stage) -> Any:
        """jq-stage bindings with every ``{$wflowref: [NODES_JQ, RESULT_JQ]}`` replaced."""
        where = f"{stage.where}: stage {stage.name!r} bindings"

        def replace_nodes(structure: Any, result_script: str) -> Any:
            if isinstance(structure, dict):
                if "_nodeid" in structure:
                    node = self._nodes.get(structure["_nodeid"])
                    if node is None or not node.done:
                        raise SpecError(
                            f"{where}: $wflowref selects step {structure['_nodeid']}, which has not "
                            "published; add its stage to the dependencies"
                        )
                    try:
                        return run_jq(result_script, node.result, multiple=True)
                    except ValueError as error:
                        raise SpecError(f"{where}: {error}") from None
                return {key: replace_nodes(item, result_script) for key, item in structure.items()}
            if isinstance(structure, list):
                return [replace_nodes(item, result_script) for item in structure]
            return structure

        def visit(value: Any) -> Any:
            if isinstance(value, dict):
                if "$wflowref" in value:
                    node_script, result_script = value["$wflowref"]
                    try:
                        structure = run_jq(node_script, scope.view, multiple=True)
                    except ValueError as error:
                        raise SpecError(f"{where}: {error}") from None
                    return replace_nodes(structure, result_script)
                return {key: visit(item) for key, item in value.items()}
            if isinstance(value, list):
                return [visit(item) for item in value]
            return value

        return visit(bindings)

    # -- applying stages ------------------------------------------------------------------

    def _apply(self, scope: _Scope, entry: _Entry) -> PlannedStage | None:
        stage = entry.stage
        scheduler = stage.scheduler
        where = f"{stage.where}: stage {stage.name!r}"
        # Compute everything first: a SpecError leaves the run unchanged.
        if isinstance(scheduler, SinglestepStage):
            sets: list[tuple[int | None, dict[str, Any]]] = [
                (None, self._resolve_parameters(scope, stage, scheduler.parameters))
            ]
        elif isinstance(scheduler, MultistepStage):
            resolved = self._resolve_parameters(scope, stage, scheduler.parameters)
            expanded = scatter_parameters(
                resolved,
                scheduler.scatter,
                batchsize=scheduler.batchsize,
                partitionsize=scheduler.partitionsize,
                where=where,
            )
            sets = list(enumerate(expanded))
        elif isinstance(scheduler, JqStage):
            bindings = self._resolve_bindings(scope, scheduler.bindings, stage)
            expanded = jq_parameter_sets(bindings, scheduler.stepscript, scheduler.postscript, where=where)
            sets = list(enumerate(expanded))
        else:  # pragma: no cover - the model only admits the three schedulers
            raise SpecError(f"{where}: unknown scheduler {type(scheduler).__name__}")

        cases = getattr(scheduler, "cases", None)
        choices: list[tuple[int | None, dict[str, Any], Any]] = []
        for index, parameters in sets:
            runnable: Any = scheduler.step or scheduler.workflow
            if cases:
                case = select_case(cases, parameters, where=where)
                if case is None:
                    continue
                runnable = case.step or case.workflow
            choices.append((index, parameters, runnable))

        registered: dict[str, Any] = {}
        for key, value in (getattr(scheduler, "register_values", None) or {}).items():
            if key in scope.values:
                raise SpecError(
                    f"{where}: register_values: {key!r} is already registered in scope "
                    f"{scope.pointer or '/'}; values cannot be overwritten, pick another name"
                )
            registered[key] = value

        names = [stage.name if index is None else f"{stage.name}_{index}" for index, _, _ in choices]
        for name in names:
            folder = str(scope.directory / name)
            if folder in self._workdirs:
                raise SpecError(
                    f"{where}: step folder {folder} is already used by another step; rename the stage "
                    "(a stage 'x' with several steps uses x_0, x_1, ...)"
                )

        # Commit.
        entry.applied = True
        scope.values.update(registered)
        steps: list[PlannedStep] = []
        for (index, parameters, runnable), name in zip(choices, names):
            folder = scope.directory / name
            folder_text = str(folder)
            self._workdirs.add(folder_text)
            if isinstance(runnable, StepSpec):
                step_id = f"{scope.pointer}/{name}"
                filled = fill_workdir(parameters, folder_text)
                record = StepRecord(
                    id=step_id,
                    scope=scope.pointer,
                    stage=stage.name,
                    index=index,
                    name=name,
                    workdir=folder_text,
                    parameters=filled,
                )
                node = _Node(record, entry)
                self._nodes[step_id] = node
                self._records.append(record)
                entry.items.append(node)
                entry.view.append(node.view)
                entry.pending += 1
                self._outstanding += 1
                steps.append(
                    PlannedStep(
                        id=step_id,
                        scope=scope.pointer,
                        stage=stage.name,
                        index=index,
                        name=name,
                        workdir=folder,
                        parameters=filled,
                        step=runnable,
                        where=stage.where,
                    )
                )
            else:
                pointer = f"{scope.pointer}/{stage.name}/{len(entry.items)}"
                sub_init = fill_workdir(parameters, folder_text)
                subscope = self._new_scope(pointer, runnable, sub_init, folder, scope, entry)
                entry.items.append(subscope)
                entry.view.append(subscope.view)
                if not subscope.done:
                    entry.pending += 1
        self._bump(scope)
        if entry.pending == 0:
            self._entry_done(entry)
        if not steps:
            return None
        return PlannedStage(scope=scope.pointer, stage=stage.name, steps=steps, scheduler_type=scheduler.scheduler_type)
