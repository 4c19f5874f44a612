"""What the picture contains: boxes for steps, ``init`` nodes and idle stages, nested in clusters.

The walk follows the workflow model scope by scope: the root scope, then every
subworkflow instance (``/map/0``) inside the stage that started it. A stage with
more visible boxes than the collapse threshold becomes one summary box; the walk
decides that bottom-up, so a huge stage inside a subworkflow collapses without
hiding its siblings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mltoolkit.yadage.model import Stage, Workflow
from mltoolkit.yadage.planner import CACHED, COMPLETED, FAILED, PENDING, RUNNING, StepRecord, WorkflowRun
from mltoolkit.yadage.visualize.dependencies import (
    ScopeView,
    StageEntries,
    collapsed_id,
    init_id,
    placeholder_id,
)

__all__ = ["Box", "Cluster", "ScopeWalk", "state_counts"]

_MAX_LABEL_CHARS = 56


@dataclass(eq=False)
class Box:
    """One drawn node."""

    key: str  # unique; the node's id in the graph and the DOT text
    kind: str  # "step" | "init" | "collapsed" | "stage" (a stage without steps)
    lines: tuple[str, ...]
    state: str  # "" for init and stage boxes
    tooltip: str
    svg_id: str = ""  # set once every box is known (see graph.py)


@dataclass(eq=False)
class Cluster:
    """A stage or a subworkflow instance: a frame around what it holds, in workflow order."""

    key: str  # the DOT subgraph name; starts with "cluster" as graphviz requires
    kind: str  # "stage" | "scope" | "top" (the root scope: never framed)
    label: str
    children: list[Box | Cluster] = field(default_factory=list)
    svg_id: str = ""

    def boxes(self) -> Iterator[Box]:
        """Every box inside, in workflow order."""
        for child in self.children:
            if isinstance(child, Box):
                yield child
            else:
                yield from child.boxes()

    def clusters(self) -> Iterator[Cluster]:
        """Every cluster inside, outer before inner (the order to draw them in)."""
        for child in self.children:
            if isinstance(child, Cluster):
                yield child
                yield from child.clusters()


def state_counts(records: Iterable[StepRecord]) -> dict[str, int]:
    """How many of ``records`` are in each state."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    return counts


def _worst_state(counts: dict[str, int]) -> str:
    # the colour of a collapsed stage must show the one failure among 1,000 successes
    for state in (FAILED, RUNNING, PENDING):
        if counts.get(state):
            return state
    if counts and set(counts) == {CACHED}:
        return CACHED
    return COMPLETED if counts.get(COMPLETED) or counts.get(CACHED) else PENDING


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_LABEL_CHARS else text[: _MAX_LABEL_CHARS - 1] + "\u2026"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _sub_workflows(stage: Stage) -> list[Workflow]:
    # only some scheduler types can run a subworkflow (directly or in one of their cases)
    scheduler = stage.scheduler
    found: list[Workflow] = []
    workflow = getattr(scheduler, "workflow", None)
    if workflow is not None:
        found.append(workflow)
    found.extend(case.workflow for case in getattr(scheduler, "cases", None) or [] if case.workflow is not None)
    return found


def step_box(record: StepRecord) -> Box:
    """The box of one step: its name and state, its error in the tooltip."""
    tooltip = f"{record.id}: {record.state}"
    if record.error:
        tooltip += f": {' '.join(str(record.error).split())[:300]}"
    return Box(record.id, "step", (_truncate(record.name), record.state), record.state, tooltip)


def _collapsed_box(key: str, pointer: str, stage: str, records: list[StepRecord], instances: int) -> Box:
    counts = state_counts(records)
    what = f"{_plural(instances, 'instance')}, {len(records)} steps" if instances else f"{len(records)} steps"
    lines = [f"{stage} ({what}: {counts.get(COMPLETED, 0)} completed, {counts.get(FAILED, 0)} failed)"]
    others = ", ".join(f"{counts[state]} {state.lower()}" for state in (CACHED, RUNNING, PENDING) if counts.get(state))
    if others:
        lines.append(others)
    return Box(key, "collapsed", tuple(lines), _worst_state(counts), f"{pointer or '/'}: " + "; ".join(lines))


class ScopeWalk:
    """Walks a run's scopes into a :class:`Cluster` tree; keeps what the arrows need.

    After :meth:`walk`: :attr:`scopes` (every scope's view), :attr:`steps_of`
    (``(scope, stage)`` -> records) and :attr:`display` (node id -> the key of the
    box that shows it: itself, or its collapsed stage's box).
    """

    def __init__(self, run: WorkflowRun, threshold: int | None) -> None:
        self.run = run
        self.threshold = threshold
        self.records = run.records()
        self.steps_of: dict[tuple[str, str], list[StepRecord]] = {}
        for record in self.records:
            self.steps_of.setdefault((record.scope, record.stage), []).append(record)
        self._stages_seen: dict[str, set[str]] = {}
        for scope, stage in self.steps_of:
            self._stages_seen.setdefault(scope, set()).add(stage)
        # every '/'-prefix of a scope that has steps: such a scope surely exists
        self._known = {pointer[:i] for pointer in self._stages_seen for i, c in enumerate(pointer) if c == "/" and i}
        self._known |= set(self._stages_seen)
        self._unapplied = set(run.unapplied_stages())
        self.scopes: dict[str, ScopeView] = {}
        self._scope_records: dict[str, list[StepRecord]] = {}
        self.display: dict[str, str] = {}
        self._shown_by: dict[str, list[str]] = {}  # box key -> the node ids it shows

    def walk(self) -> Cluster:
        """The tree of everything to draw, inside a ``top`` cluster (the root scope)."""
        top = Cluster("", "top", "")
        self._scope("", self.run.workflow, top)
        # A step in a scope the walk did not reach (a planner feature this module does not
        # know yet) is still drawn, unframed, rather than silently left out.
        for record in self.records:
            if record.id not in self.display:
                self._add(top, step_box(record))
        return top

    def _add(self, cluster: Cluster, box: Box) -> None:
        cluster.children.append(box)
        self.display[box.key] = box.key
        self._shown_by[box.key] = [box.key]

    def _scope_exists(self, pointer: str) -> bool:
        if pointer in self._known:
            return True
        try:  # an instance without steps yet is only visible through the run's scope table
            self.run.scope_values(pointer)
        except KeyError:
            return False
        return True

    def _instances(self, pointer: str, stage: Stage) -> list[str]:
        # Instances are numbered by their position among the stage's items, so a stage whose
        # cases mix steps and workflows leaves one gap per step: tolerate that many misses.
        allowed_gaps = len(self.steps_of.get((pointer, stage.name), ()))
        found: list[str] = []
        gaps = index = 0
        while gaps <= allowed_gaps:
            candidate = f"{pointer}/{stage.name}/{index}"
            if self._scope_exists(candidate):
                found.append(candidate)
            else:
                gaps += 1
            index += 1
        return found

    def _workflow_of(self, pointer: str, choices: list[Workflow]) -> Workflow:
        # with cases, only the stages that have steps tell which workflow an instance runs
        seen = self._stages_seen.get(pointer, set())
        for workflow in choices if len(choices) > 1 else ():
            if seen and seen <= {stage.name for stage in workflow.stages}:
                return workflow
        return choices[0]

    def _scope(self, pointer: str, workflow: Workflow, container: Cluster) -> ScopeView:
        scope = ScopeView(pointer, workflow)
        self.scopes[pointer] = scope
        tooltip = f"{pointer or '/'}: init (the inputs of this scope)"
        self._add(container, Box(init_id(pointer), "init", ("init",), "", tooltip))
        records: list[StepRecord] = []
        for stage in workflow.stages:
            records.extend(self._stage(scope, stage, container))
        self._scope_records[pointer] = records
        return scope

    def _stage(self, scope: ScopeView, stage: Stage, container: Cluster) -> list[StepRecord]:
        """Draw one stage into ``container``; return the records of every step under it."""
        pointer, entries = scope.pointer, scope.add_stage(stage.name)
        steps = self.steps_of.get((pointer, stage.name), [])
        choices = _sub_workflows(stage)
        instances = scope.instances[stage.name] = self._instances(pointer, stage) if choices else []
        if not steps and not instances:
            why = "not applied" if (pointer, stage.name) in self._unapplied else "no steps"
            tooltip = f"{pointer or '/'}: stage {stage.name!r}: {why}"
            self._add(
                container, Box(placeholder_id(pointer, stage.name), "stage", (_truncate(stage.name), why), "", tooltip)
            )
            return []
        if instances:
            label = f"{stage.name} ({_plural(len(instances), 'instance')})"
        elif getattr(stage.scheduler, "scheduler_type", "") != "singlestep-stage":
            label = f"{stage.name} ({_plural(len(steps), 'step')})"
        else:
            label = stage.name
        cluster = Cluster(f"cluster_stage:{pointer}/{stage.name}", "stage", label)
        records = list(steps)
        for record in steps:
            entries.add_node(record.id)
            scope.steps_below.append(record.id)
            self._add(cluster, step_box(record))
        for sub_pointer in instances:
            records.extend(self._instance(scope, stage.name, entries, sub_pointer, choices, cluster))
        if self.threshold is not None and sum(1 for _ in cluster.boxes()) > self.threshold:
            container.children.append(self._collapse(pointer, stage.name, cluster, records, len(instances)))
        else:
            container.children.append(cluster)
        return records

    def _instance(
        self,
        scope: ScopeView,
        stage: str,
        entries: StageEntries,
        sub_pointer: str,
        choices: list[Workflow],
        into: Cluster,
    ) -> list[StepRecord]:
        label = f"{stage} #{sub_pointer.rsplit('/', 1)[-1]} ({sub_pointer})"
        frame = Cluster(f"cluster_scope:{sub_pointer}", "scope", label)
        into.children.append(frame)
        sub = self._scope(sub_pointer, self._workflow_of(sub_pointer, choices), frame)
        entries.add_scope(sub.view)
        scope.steps_below.extend(sub.steps_below)
        return self._scope_records[sub_pointer]

    def _collapse(self, pointer: str, stage: str, cluster: Cluster, records: list[StepRecord], instances: int) -> Box:
        box = _collapsed_box(collapsed_id(pointer, stage), pointer, stage, records, instances)
        shown = [box.key]
        for inner in cluster.boxes():
            shown.extend(self._shown_by.pop(inner.key))
        for node_id in shown:
            self.display[node_id] = box.key
        self._shown_by[box.key] = shown
        return box
