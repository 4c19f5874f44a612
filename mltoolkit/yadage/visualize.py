"""Pictures of a workflow *instance*: the analogue of yadage's ``--visualize``.

yadage wrote ``_yadage/yadage_workflow_instance.pdf``; :func:`write_workflow_pictures`
writes ``<out_dir>/workflow.dot``, ``workflow.svg`` and ``workflow.png`` of a
:class:`~mltoolkit.yadage.planner.WorkflowRun`, after or during a run:

* one box per step, labelled with the step's name (``classification_2``) and its
  state, filled by state (``COMPLETED`` green, ``CACHED`` blue, ``FAILED`` red,
  ``RUNNING`` orange, ``PENDING`` grey);
* one ``init`` ellipse per scope (the root and every subworkflow instance);
* a cluster per stage holding its steps, and inside a stage that runs a
  subworkflow, a cluster per instance scope (``/map/0``) holding that instance's
  ``init`` and stage clusters;
* a dashed box for a stage that has no step (yet): ``not applied`` while its
  dependencies are not ready (or never were, in a failed run), ``no steps``
  when it was applied but scheduled nothing (or could not be planned: see
  :meth:`~mltoolkit.yadage.planner.WorkflowRun.problems`);
* an arrow ``A -> B`` when B's stage depends on A's: B's stage lists a
  dependency (stage name or JSONPath such as ``'map.[*].stage1'``) that selects
  A, or selects a subworkflow instance containing A. Arrows point downstream
  (data flow), as in yadage's pictures. The ``init`` of a subworkflow instance
  gets the arrows of the stage that created the instance.

Large stages: a stage with more than ``collapse_threshold`` visible nodes
(default 50; steps, plus the ``init`` and nodes of its subworkflow instances)
is drawn as ONE box ``stage (N steps: X completed, Y failed)`` (with a second
line for cached / running / pending counts), coloured by the worst state inside
it. Collapsing works bottom-up, so a huge stage inside a subworkflow collapses
without hiding its siblings. This keeps a 1,000-step scatter to a few nodes
and edges; pass ``collapse_threshold=None`` to always draw every step.

Rendering: when graphviz's ``dot`` is on ``PATH`` (and ``use_graphviz`` is not
``False``) the SVG and PNG come from ``dot`` on the written ``.dot`` file;
otherwise (or when ``dot`` fails and ``use_graphviz`` is ``None``) from a
built-in layered layout, with the SVG written as text and the PNG drawn with
matplotlib (Agg). No system package is needed. In both SVGs every drawn node is
a ``<g>`` with an ``id`` (``step-classify_2``, ``step-map-0-stage1``...) and
the class tokens ``node`` plus one of ``step``, ``init``, ``collapsed`` or
``pending-stage``; clusters carry ``stage-cluster`` / ``scope-cluster``. The
built-in SVG also gives each node ``data-id`` (the step id) and ``data-state``.
A PNG shrunk so far that labels would be under 5 px tall (thousands of
uncollapsed steps) is drawn without labels, which stay in the SVG.

Call it from the thread that drives the run (between ``advance``/``record_*``
calls): it reads the run's records and scope table without locking.

The built-in layout: ranks by longest path from the sources (left to right);
each cluster is a box made of horizontal *tracks*: items whose rank ranges do
not overlap may share a track, so a chain stays on one line and a scatter
becomes a column. An item goes into the track of the sibling that feeds it when
that track is free at its ranks (which keeps parallel branches from crossing),
else into the first free track. Edges are curves from right to left sides and
may pass behind nodes of intermediate ranks. It is deterministic and, with
collapsing, roughly linear in nodes plus edges.

Dependencies are resolved from the run's public records (:meth:`WorkflowRun.records`,
:meth:`~WorkflowRun.scope_values`, :meth:`~WorkflowRun.unapplied_stages`) and
the workflow model, with the same JSONPath parser the planner uses
(:func:`~mltoolkit.yadage.selectors.parse_jsonpath`) over an equivalent view of
each scope.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from mltoolkit.errors import VisualizationError, WorkdirError
from mltoolkit.workdir.artifacts import atomic_output, atomic_write_text
from mltoolkit.yadage.model import Stage, Workflow
from mltoolkit.yadage.planner import (
    CACHED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    StepRecord,
    WorkflowRun,
)
from mltoolkit.yadage.selectors import parse_jsonpath

__all__ = [
    "DEFAULT_COLLAPSE_THRESHOLD",
    "STATE_COLOURS",
    "VisualizationError",
    "write_workflow_pictures",
]

log = logging.getLogger(__name__)

#: Stages with more visible nodes than this are drawn as one node.
DEFAULT_COLLAPSE_THRESHOLD = 50

#: Fill colour of a node by state (shared by the DOT, SVG and PNG outputs).
STATE_COLOURS: dict[str, str] = {
    COMPLETED: "#b7e1a1",
    CACHED: "#a6cee3",
    FAILED: "#f4a3a3",
    RUNNING: "#fdc980",
    PENDING: "#e2e2e2",
}
_INIT_FILL = "#ffffff"
_STAGE_FILL = "#ffffff"
_UNKNOWN_FILL = "#f0f0f0"
_STROKE = "#4d4d4d"
_EDGE_COLOUR = "#6b6b6b"
_CLUSTER_STROKE = {"stage": "#9a9a9a", "scope": "#5b7fa6"}
_CLUSTER_FILL = {"stage": "#fafafa", "scope": "#f1f5fa"}

# Geometry of the built-in layout, in SVG pixels (= points in the PNG).
_FONT = 11.0
_CHAR_W = 6.4  # mean glyph width of an 11px sans-serif font; labels are sized from it
_LINE_H = 13.0
_NODE_PAD_X = 10.0
_NODE_MIN_W = 96.0
_MAX_LABEL_CHARS = 56
_TRACK_GAP = 10.0
_CLUSTER_PAD = 9.0
_CLUSTER_LABEL_H = 17.0
_RANK_GAP = 36.0
_MARGIN = 16.0
_TITLE_H = 26.0
# Keep the PNG within what image viewers (and Agg) handle comfortably.
_PNG_MAX_SIDE = 12000
_PNG_MAX_PIXELS = 64_000_000
_PNG_SCALE = 1.5
_PNG_MIN_TEXT_PX = 5.0


# -- the graph to draw ------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    key: str  # the DOT id; unique
    kind: str  # "step" | "init" | "collapsed" | "stage" (a stage without steps)
    lines: list[str]
    state: str
    tooltip: str
    cluster: _Cluster
    svg_id: str = ""
    rank: int = 0
    width: float = 0.0
    height: float = 0.0
    x: float = 0.0
    y: float = 0.0

    @property
    def fill(self) -> str:
        if self.kind == "init":
            return _INIT_FILL
        if self.kind == "stage":
            return _STAGE_FILL
        return STATE_COLOURS.get(self.state, _UNKNOWN_FILL)


@dataclass(eq=False)
class _Cluster:
    key: str  # DOT subgraph name; starts with "cluster" as graphviz requires
    kind: str  # "stage" | "scope" | "top" (the root scope: not a cluster, never drawn)
    label: str
    parent: _Cluster | None
    children: list[_Node | _Cluster] = field(default_factory=list)
    svg_id: str = ""
    # layout
    rmin: int = 0
    rmax: int = 0
    height: float = 0.0
    tracks: list[list[_Node | _Cluster]] = field(default_factory=list)
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0


@dataclass
class _Graph:
    title: str
    top: _Cluster
    nodes: list[_Node]
    clusters: list[_Cluster]  # outer before inner, so drawing in order nests correctly
    edges: list[tuple[_Node, _Node]]
    width: float = 0.0
    height: float = 0.0


class _EntryList(list):
    """A stage's list in a scope view; remembers which stage it is (as the planner's view does)."""

    __slots__ = ("scope", "stage")

    def __init__(self, scope: str, stage: str) -> None:
        super().__init__()
        self.scope = scope
        self.stage = stage


@dataclass(eq=False)
class _Scope:
    pointer: str
    workflow: Workflow
    view: dict[str, Any]
    # stage name -> instance pointers of the subworkflows it started
    instances: dict[str, list[str]] = field(default_factory=dict)
    steps_below: list[str] = field(default_factory=list)  # step ids in this scope, recursively


def _init_id(pointer: str) -> str:
    return f"{pointer}/init"


def _stage_placeholder_id(pointer: str, stage: str) -> str:
    # step ids are '<scope>/<name>'; only a stage literally named '<stage>#stage' could clash
    return f"{pointer}/{stage}#stage"


def _collapsed_id(pointer: str, stage: str) -> str:
    return f"{pointer}/{stage}#collapsed"


def _sub_workflows(stage: Stage) -> list[Workflow]:
    scheduler = stage.scheduler
    found: list[Workflow] = []
    if getattr(scheduler, "workflow", None) is not None:
        found.append(scheduler.workflow)
    for case in getattr(scheduler, "cases", None) or []:
        if case.workflow is not None:
            found.append(case.workflow)
    return found


def _state_counts(records: Iterable[StepRecord]) -> dict[str, int]:
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
    if counts.get(COMPLETED) or counts.get(CACHED):
        return COMPLETED
    return PENDING


def _truncate(text: str, limit: int = _MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class _Builder:
    """Turns a run into a :class:`_Graph`: clusters, nodes, collapsed stages and edges."""

    def __init__(self, run: WorkflowRun, threshold: int | None) -> None:
        self.run = run
        self.threshold = threshold
        self.records = run.records()
        self.by_stage: dict[tuple[str, str], list[StepRecord]] = {}
        self.stage_names_in_scope: dict[str, set[str]] = {}
        for record in self.records:
            self.by_stage.setdefault((record.scope, record.stage), []).append(record)
            self.stage_names_in_scope.setdefault(record.scope, set()).add(record.stage)
        # every '/'-prefix of a scope that has steps: such a scope surely exists
        self.known_pointers: set[str] = set()
        for pointer in self.stage_names_in_scope:
            self.known_pointers.add(pointer)
            for index, char in enumerate(pointer):
                if char == "/" and index:
                    self.known_pointers.add(pointer[:index])
        self.unapplied = set(run.unapplied_stages())
        self.scopes: dict[str, _Scope] = {}
        self.scope_records: dict[str, list[StepRecord]] = {}
        self.display: dict[str, str] = {}  # logical id (step, init, placeholder) -> drawn node key
        self.logical_of: dict[str, list[str]] = {}  # drawn node key -> the logical ids it shows
        self.nodes: dict[str, _Node] = {}
        self.clusters: list[_Cluster] = []

    # -- structure --------------------------------------------------------------------------

    def _scope_exists(self, pointer: str) -> bool:
        if pointer in self.known_pointers:
            return True
        # an instance that has no step yet is only visible through the run's scope table
        try:
            self.run.scope_values(pointer)
        except KeyError:
            return False
        return True

    def _instances(self, pointer: str, stage: Stage) -> list[str]:
        # Instances are numbered by their position among the stage's items, so a stage whose
        # cases mix steps and workflows leaves one gap per step: tolerate that many misses.
        allowed_gaps = len(self.by_stage.get((pointer, stage.name), ()))
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
        if len(choices) == 1:
            return choices[0]
        # with cases, only the stages that have steps tell which workflow an instance runs
        seen = self.stage_names_in_scope.get(pointer, set())
        for workflow in choices:
            if seen and seen <= {stage.name for stage in workflow.stages}:
                return workflow
        return choices[0]

    def _add_node(self, node: _Node) -> None:
        self.nodes[node.key] = node
        node.cluster.children.append(node)
        self.display[node.key] = node.key
        self.logical_of[node.key] = [node.key]

    def build_scope(self, pointer: str, workflow: Workflow, container: _Cluster) -> _Scope:
        scope = _Scope(pointer, workflow, {"_offset": pointer})
        self.scopes[pointer] = scope
        init_entry = _EntryList(pointer, "init")
        init_entry.append({"_nodeid": _init_id(pointer)})
        scope.view["init"] = init_entry
        self._add_node(
            _Node(
                key=_init_id(pointer),
                kind="init",
                lines=["init"],
                state=COMPLETED,
                tooltip=f"{pointer or '/'}: init (the inputs of this scope)",
                cluster=container,
            )
        )
        records_here: list[StepRecord] = []
        for stage in workflow.stages:
            entry = _EntryList(pointer, stage.name)
            scope.view[stage.name] = entry
            steps = self.by_stage.get((pointer, stage.name), [])
            choices = _sub_workflows(stage)
            instances = self._instances(pointer, stage) if choices else []
            scope.instances[stage.name] = instances
            if not steps and not instances:
                why = "not applied" if (pointer, stage.name) in self.unapplied else "no steps"
                self._add_node(
                    _Node(
                        key=_stage_placeholder_id(pointer, stage.name),
                        kind="stage",
                        lines=[_truncate(stage.name), why],
                        state="",
                        tooltip=f"{pointer or '/'}: stage {stage.name!r}: {why}",
                        cluster=container,
                    )
                )
                continue
            label = stage.name
            if instances:
                label += f" ({len(instances)} instance{'s' if len(instances) != 1 else ''})"
            elif stage.scheduler.scheduler_type != "singlestep-stage":
                label += f" ({len(steps)} step{'s' if len(steps) != 1 else ''})"
            stage_cluster = _Cluster(
                key=f"cluster_stage:{pointer}/{stage.name}",
                kind="stage",
                label=label,
                parent=container,
            )
            container.children.append(stage_cluster)
            self.clusters.append(stage_cluster)
            stage_records: list[StepRecord] = list(steps)
            for record in steps:
                entry.append({"_nodeid": record.id})
                scope.steps_below.append(record.id)
                tooltip = f"{record.id}: {record.state}"
                if record.error:
                    tooltip += f": {' '.join(str(record.error).split())[:300]}"
                self._add_node(
                    _Node(
                        key=record.id,
                        kind="step",
                        lines=[_truncate(record.name), record.state],
                        state=record.state,
                        tooltip=tooltip,
                        cluster=stage_cluster,
                    )
                )
            for sub_pointer in instances:
                sub_cluster = _Cluster(
                    key=f"cluster_scope:{sub_pointer}",
                    kind="scope",
                    label=f"{stage.name} #{sub_pointer.rsplit('/', 1)[-1]} ({sub_pointer})",
                    parent=stage_cluster,
                )
                stage_cluster.children.append(sub_cluster)
                self.clusters.append(sub_cluster)
                sub_scope = self.build_scope(sub_pointer, self._workflow_of(sub_pointer, choices), sub_cluster)
                entry.append(sub_scope.view)
                scope.steps_below.extend(sub_scope.steps_below)
                stage_records.extend(self.scope_records[sub_pointer])
            records_here.extend(stage_records)
            if self.threshold is not None and _visible(stage_cluster) > self.threshold:
                self._collapse(pointer, stage, stage_cluster, stage_records, len(instances))
        self.scope_records[pointer] = records_here
        return scope

    def _collapse(
        self, pointer: str, stage: Stage, stage_cluster: _Cluster, records: list[StepRecord], instances: int
    ) -> None:
        gone_nodes: set[str] = set()
        gone_clusters: set[int] = set()
        stack = [stage_cluster]
        while stack:
            current = stack.pop()
            gone_clusters.add(id(current))
            for child in current.children:
                if isinstance(child, _Cluster):
                    stack.append(child)
                else:
                    gone_nodes.add(child.key)
        self.clusters = [cluster for cluster in self.clusters if id(cluster) not in gone_clusters]
        key = _collapsed_id(pointer, stage.name)
        shown: list[str] = [key]
        for gone in sorted(gone_nodes):
            del self.nodes[gone]
            shown.extend(self.logical_of.pop(gone))
        for logical in shown:
            self.display[logical] = key
        self.logical_of[key] = shown
        counts = _state_counts(records)
        what = f"{instances} instances, {len(records)} steps" if instances else f"{len(records)} steps"
        lines = [f"{stage.name} ({what}: {counts.get(COMPLETED, 0)} completed, {counts.get(FAILED, 0)} failed)"]
        others = ", ".join(
            f"{counts[state]} {state.lower()}" for state in (CACHED, RUNNING, PENDING) if counts.get(state)
        )
        if others:
            lines.append(others)
        parent = stage_cluster.parent
        assert parent is not None
        node = _Node(
            key=key,
            kind="collapsed",
            lines=lines,
            state=_worst_state(counts),
            tooltip=f"{pointer or '/'}: " + "; ".join(lines),
            cluster=parent,
        )
        self.nodes[key] = node
        # take the cluster's place among its siblings so the layout order stays the workflow's
        parent.children[parent.children.index(stage_cluster)] = node

    # -- dependencies -----------------------------------------------------------------------

    def _scope_targets(self, view: dict[str, Any]) -> list[str]:
        scope = self.scopes[view["_offset"]]
        # an instance without steps yet is still a dependency: point at its init
        return list(scope.steps_below) or [_init_id(scope.pointer)]

    def _targets(self, pointer: str, expression: Any) -> list[str]:
        """Logical ids a dependency expression selects in a scope (as the planner selects them)."""
        view = self.scopes[pointer].view
        direct = view.get(expression) if isinstance(expression, str) else None
        if isinstance(direct, _EntryList):
            values: list[Any] = [direct]
        else:
            try:
                values = [match.value for match in parse_jsonpath(expression).find(view)]
            except (ValueError, TypeError):
                # the model validated every expression; one it still cannot parse draws no edge
                return []
        targets: list[str] = []
        for value in values:
            if isinstance(value, _EntryList):
                if not value:
                    targets.append(_stage_placeholder_id(value.scope, value.stage))
                for item in value:
                    targets.extend([item["_nodeid"]] if "_nodeid" in item else self._scope_targets(item))
            elif isinstance(value, dict) and "_nodeid" in value:
                targets.append(value["_nodeid"])
            elif isinstance(value, dict) and "_offset" in value:
                targets.extend(self._scope_targets(value))
        return targets

    def _edges(self) -> list[tuple[_Node, _Node]]:
        found: dict[tuple[str, str], None] = {}
        for pointer, scope in self.scopes.items():
            for stage in scope.workflow.stages:
                dependencies = stage.dependencies
                dependants: dict[str, None] = {}
                for record in self.by_stage.get((pointer, stage.name), ()):
                    dependants[self.display[record.id]] = None
                for sub_pointer in scope.instances.get(stage.name, ()):
                    dependants[self.display[_init_id(sub_pointer)]] = None
                if not dependants:
                    dependants[self.display[_stage_placeholder_id(pointer, stage.name)]] = None
                # map to drawn nodes before pairing: a collapsed stage is one source, not 1,000
                sources: dict[str, None] = {}
                for expression in dependencies.expressions:
                    if dependencies.dependency_type != "jsonpath_ready":
                        expression = getattr(expression, "selection", "")
                    for target in self._targets(pointer, expression):
                        drawn = self.display.get(target)
                        if drawn is not None:
                            sources[drawn] = None
                for source in sources:
                    for dependant in dependants:
                        if source != dependant:  # edges inside a collapsed stage vanish
                            found[(source, dependant)] = None
        return [(self.nodes[source], self.nodes[target]) for source, target in found]

    def build(self) -> _Graph:
        top = _Cluster(key="", kind="top", label="", parent=None)
        self.build_scope("", self.run.workflow, top)
        # A step in a scope the walk above did not reach (a planner feature this module does
        # not know yet) is still drawn, unclustered, rather than silently left out.
        for record in self.records:
            if record.id not in self.display:
                self._add_node(
                    _Node(
                        key=record.id,
                        kind="step",
                        lines=[_truncate(record.name), record.state],
                        state=record.state,
                        tooltip=f"{record.id}: {record.state}",
                        cluster=top,
                    )
                )
        edges = self._edges()
        nodes = list(_walk_nodes(top))
        counts = _state_counts(self.records)
        summary = ", ".join(
            f"{counts[state]} {state.lower()}"
            for state in (COMPLETED, CACHED, FAILED, RUNNING, PENDING)
            if counts.get(state)
        )
        title = f"workflow instance ({self.run.status}): {len(self.records)} steps"
        if summary:
            title += f" ({summary})"
        graph = _Graph(title=title, top=top, nodes=nodes, clusters=self.clusters, edges=edges)
        _assign_svg_ids(graph)
        return graph


def _visible(cluster: _Cluster) -> int:
    return sum(_visible(child) if isinstance(child, _Cluster) else 1 for child in cluster.children)


def _walk_nodes(cluster: _Cluster) -> Iterable[_Node]:
    for child in cluster.children:
        if isinstance(child, _Cluster):
            yield from _walk_nodes(child)
        else:
            yield child


_CLASS_OF_KIND = {"step": "step", "init": "init", "collapsed": "collapsed", "stage": "pending-stage"}


def _assign_svg_ids(graph: _Graph) -> None:
    """Readable, unique, XML-safe ids (the same in both renderers, so links survive a switch)."""
    used: set[str] = set()

    def unique(prefix: str, key: str) -> str:
        base = prefix + (re.sub(r"[^A-Za-z0-9_.-]+", "-", key).strip("-") or "root")
        candidate, number = base, 1
        while candidate in used:
            number += 1
            candidate = f"{base}-{number}"
        used.add(candidate)
        return candidate

    for node in graph.nodes:
        node.svg_id = unique(f"{_CLASS_OF_KIND[node.kind]}-", node.key.split("#", 1)[0])
    for cluster in graph.clusters:
        cluster.svg_id = unique(f"{cluster.kind}-cluster-", cluster.key.split(":", 1)[-1])


# -- built-in layout --------------------------------------------------------------------------


def _height(item: _Node | _Cluster) -> float:
    return item.height


def _span(item: _Node | _Cluster) -> tuple[int, int]:
    return (item.rank, item.rank) if isinstance(item, _Node) else (item.rmin, item.rmax)


def _nodes_of(item: _Node | _Cluster) -> Iterable[_Node]:
    return (item,) if isinstance(item, _Node) else _walk_nodes(item)


def _rank_nodes(graph: _Graph) -> dict[_Node, list[_Node]]:
    """Longest-path ranks (Kahn's algorithm in drawing order, so ties break the same way each time)."""
    from collections import deque

    predecessors: dict[_Node, list[_Node]] = {node: [] for node in graph.nodes}
    successors: dict[_Node, list[_Node]] = {node: [] for node in graph.nodes}
    waiting: dict[_Node, int] = {node: 0 for node in graph.nodes}
    for source, target in graph.edges:
        successors[source].append(target)
        predecessors[target].append(source)
        waiting[target] += 1
    for node in graph.nodes:
        node.rank = 0
    queue = deque(node for node in graph.nodes if waiting[node] == 0)
    placed = 0
    while queue:
        node = queue.popleft()
        placed += 1
        for successor in successors[node]:
            successor.rank = max(successor.rank, node.rank + 1)
            waiting[successor] -= 1
            if waiting[successor] == 0:
                queue.append(successor)
    if placed < len(graph.nodes):
        # only an open-ended JSONPath ('$..x') can select its own stage; draw such nodes last
        last = max((node.rank for node in graph.nodes if waiting[node] == 0), default=0) + 1
        for node in graph.nodes:
            if waiting[node]:
                node.rank = last
    return predecessors


def _measure(cluster: _Cluster, predecessors: dict[_Node, list[_Node]]) -> None:
    """Sizes of ``cluster`` and everything in it, and its tracks (rows of items)."""
    for child in cluster.children:
        if isinstance(child, _Cluster):
            _measure(child, predecessors)
    children = cluster.children
    owner: dict[_Node, int] = {}
    for index, child in enumerate(children):
        for node in _nodes_of(child):
            owner[node] = index
    tracks: list[list[_Node | _Cluster]] = []
    occupied: list[set[int]] = []
    track_of = [-1] * len(children)
    full_upto: dict[int, int] = {}  # rank -> every track below this index is taken at that rank

    def fits(track: int, low: int, high: int) -> bool:
        return track == len(tracks) or not any(rank in occupied[track] for rank in range(low, high + 1))

    for index, child in enumerate(children):
        low, high = _span(child)
        # Prefer the track of the sibling that feeds this item: chains stay on one line,
        # which is what keeps parallel branches from crossing.
        votes: dict[int, int] = {}
        for node in _nodes_of(child):
            for predecessor in predecessors[node]:
                sibling = owner.get(predecessor)
                if sibling is not None and sibling != index and track_of[sibling] >= 0:
                    votes[track_of[sibling]] = votes.get(track_of[sibling], 0) + 1
        choice = next((track for track in sorted(votes, key=lambda t: (-votes[t], t)) if fits(track, low, high)), None)
        if choice is None:
            choice = max(full_upto.get(rank, 0) for rank in range(low, high + 1))
            while not fits(choice, low, high):
                choice += 1
        if choice == len(tracks):
            tracks.append([])
            occupied.append(set())
        tracks[choice].append(child)
        occupied[choice].update(range(low, high + 1))
        track_of[index] = choice
        for rank in range(low, high + 1):
            first_free = full_upto.get(rank, 0)
            while first_free < len(tracks) and rank in occupied[first_free]:
                first_free += 1
            full_upto[rank] = first_free
    cluster.tracks = tracks
    spans = [_span(child) for child in children] or [(0, 0)]
    cluster.rmin = min(low for low, _ in spans)
    cluster.rmax = max(high for _, high in spans)
    content = sum(max(_height(item) for item in track) for track in tracks)
    content += _TRACK_GAP * max(0, len(tracks) - 1)
    if cluster.kind == "top":
        cluster.height = content
    else:
        cluster.height = _CLUSTER_LABEL_H + content + _CLUSTER_PAD


def _place(cluster: _Cluster, top: float) -> None:
    cluster.y0 = top
    y = top + (0.0 if cluster.kind == "top" else _CLUSTER_LABEL_H)
    for track in cluster.tracks:
        height = max(_height(item) for item in track)
        for item in track:
            item_top = y + (height - _height(item)) / 2
            if isinstance(item, _Node):
                item.y = item_top
            else:
                _place(item, item_top)
        y += height + _TRACK_GAP
    cluster.y1 = top + cluster.height


def _cluster_depth(cluster: _Cluster, depth: int = 0) -> int:
    inner = [_cluster_depth(child, depth + 1) for child in cluster.children if isinstance(child, _Cluster)]
    return max(inner, default=depth)


def _extent(cluster: _Cluster) -> None:
    lefts: list[float] = []
    rights: list[float] = []
    for child in cluster.children:
        if isinstance(child, _Cluster):
            _extent(child)
            lefts.append(child.x0)
            rights.append(child.x1)
        else:
            lefts.append(child.x)
            rights.append(child.x + child.width)
    pad = 0.0 if cluster.kind == "top" else _CLUSTER_PAD
    cluster.x0 = min(lefts, default=_MARGIN) - pad
    cluster.x1 = max(rights, default=_MARGIN) + pad


def _layout(graph: _Graph) -> None:
    """Give every node and cluster a position; set the picture's size."""
    for node in graph.nodes:
        node.width = max(_NODE_MIN_W, max(len(line) for line in node.lines) * _CHAR_W + 2 * _NODE_PAD_X)
        node.height = len(node.lines) * _LINE_H + 10.0
    predecessors = _rank_nodes(graph)
    _measure(graph.top, predecessors)
    _place(graph.top, _MARGIN + _TITLE_H)
    depth = _cluster_depth(graph.top)
    column_width: dict[int, float] = {}
    for node in graph.nodes:
        column_width[node.rank] = max(column_width.get(node.rank, 0.0), node.width)
    # room for every cluster border between two neighbouring columns
    gap = _RANK_GAP + 2 * _CLUSTER_PAD * depth
    column_x: dict[int, float] = {}
    x = _MARGIN + _CLUSTER_PAD * depth
    for rank in range(max(column_width, default=0) + 1):
        column_x[rank] = x
        x += column_width.get(rank, _NODE_MIN_W) + gap
    for node in graph.nodes:
        node.x = column_x[node.rank] + (column_width[node.rank] - node.width) / 2
    _extent(graph.top)
    right = max([graph.top.x1] + [node.x + node.width for node in graph.nodes])
    graph.width = max(right + _MARGIN + _CLUSTER_PAD * depth, 2 * _MARGIN + len(graph.title) * _CHAR_W * 1.1)
    graph.height = graph.top.y1 + _MARGIN


def _edge_geometry(source: _Node, target: _Node) -> tuple[float, float, float, float, float]:
    """Start, end and the horizontal pull of the cubic curve from ``source`` to ``target``."""
    x1, y1 = source.x + source.width, source.y + source.height / 2
    x2, y2 = target.x, target.y + target.height / 2
    return x1, y1, x2, y2, max(12.0, (x2 - x1) / 2)


def _fit_label(text: str, width: float) -> str:
    # cluster labels are set in 10px type: narrower than the node labels' 11px
    return _truncate(text, max(4, int((width - 8) / (_CHAR_W * 10 / 11))))


# -- writers ----------------------------------------------------------------------------------


def _attr(value: Any) -> str:
    return _xml_escape(str(value), {'"': "&quot;"})


def _svg_text(graph: _Graph) -> str:
    """The picture as SVG 1.1 text (from the built-in layout)."""
    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{graph.width:.0f}" '
        f'height="{graph.height:.0f}" viewBox="0 0 {graph.width:.1f} {graph.height:.1f}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{_FONT:g}">',
        f"<title>{_xml_escape(graph.title)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{_EDGE_COLOUR}"/></marker>',
        "</defs>",
        '<rect class="background" x="0" y="0" width="100%" height="100%" fill="#ffffff"/>',
        f'<text class="graph-label" x="{_MARGIN:.1f}" y="{_MARGIN + 13:.1f}" font-size="13" '
        f'font-weight="bold">{_xml_escape(graph.title)}</text>',
    ]
    for cluster in graph.clusters:
        width, height = cluster.x1 - cluster.x0, cluster.y1 - cluster.y0
        out.append(
            f'<g id="{_attr(cluster.svg_id)}" class="cluster {cluster.kind}-cluster">'
            f"<title>{_xml_escape(cluster.label)}</title>"
            f'<rect x="{cluster.x0:.1f}" y="{cluster.y0:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'rx="5" fill="{_CLUSTER_FILL[cluster.kind]}" stroke="{_CLUSTER_STROKE[cluster.kind]}"/>'
            f'<text x="{cluster.x0 + 5:.1f}" y="{cluster.y0 + 12:.1f}" font-size="10" fill="#333333">'
            f"{_xml_escape(_fit_label(cluster.label, width))}</text></g>"
        )
    out.append('<g class="edges">')
    for source, target in graph.edges:
        x1, y1, x2, y2, pull = _edge_geometry(source, target)
        out.append(
            f'<path class="edge" data-from="{_attr(source.svg_id)}" data-to="{_attr(target.svg_id)}" '
            f'd="M{x1:.1f},{y1:.1f} C{x1 + pull:.1f},{y1:.1f} {x2 - pull:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
            f'fill="none" stroke="{_EDGE_COLOUR}" stroke-width="1" marker-end="url(#arrow)"/>'
        )
    out.append("</g>")
    for node in graph.nodes:
        kind = _CLASS_OF_KIND[node.kind]
        state = f' data-state="{_attr(node.state)}"' if node.state else ""
        out.append(
            f'<g id="{_attr(node.svg_id)}" class="node {kind}" data-id="{_attr(node.key)}"{state}>'
            f"<title>{_xml_escape(node.tooltip)}</title>"
        )
        if node.kind == "init":
            out.append(
                f'<ellipse cx="{node.x + node.width / 2:.1f}" cy="{node.y + node.height / 2:.1f}" '
                f'rx="{node.width / 2:.1f}" ry="{node.height / 2:.1f}" fill="{node.fill}" stroke="{_STROKE}"/>'
            )
        else:
            dash = ' stroke-dasharray="4,3"' if node.kind == "stage" else ""
            width = ' stroke-width="2"' if node.kind == "collapsed" else ""
            out.append(
                f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{node.width:.1f}" height="{node.height:.1f}" '
                f'rx="4" fill="{node.fill}" stroke="{_STROKE}"{dash}{width}/>'
            )
        baseline = node.y + (node.height - len(node.lines) * _LINE_H) / 2 + _LINE_H * 0.78
        centre = node.x + node.width / 2
        for number, line in enumerate(node.lines):
            weight = ' font-weight="bold"' if number == 0 and node.kind != "init" else ""
            size = ' font-size="9"' if number > 0 else ""
            out.append(
                f'<text x="{centre:.1f}" y="{baseline + number * _LINE_H:.1f}" text-anchor="middle"'
                f"{weight}{size}>{_xml_escape(line)}</text>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _write_png(graph: _Graph, path: Path) -> None:
    """Draw the built-in layout with matplotlib's Agg canvas (no pyplot: no global state)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PatchCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse, FancyBboxPatch, Rectangle

    width, height = graph.width, graph.height
    # one layout unit = one point; shrink huge pictures instead of failing in Agg
    scale = min(_PNG_SCALE, _PNG_MAX_SIDE / max(width, height), math.sqrt(_PNG_MAX_PIXELS / (width * height)))
    figure = Figure(figsize=(width / 72.0, height / 72.0), dpi=72.0 * scale)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    axes.set_axis_off()
    text_options = {"fontfamily": "sans-serif", "clip_on": False}
    # Text dominates Agg's drawing time (about 1.5 ms a label); once a picture is shrunk so
    # far that labels would be under 5 px tall nobody can read them, so leave them to the SVG.
    legible = _FONT * scale >= _PNG_MIN_TEXT_PX
    title = graph.title if legible else f"{graph.title}; labels omitted at this size, see the SVG"
    axes.text(_MARGIN, _MARGIN + 13, title, fontsize=13, fontweight="bold", va="baseline", **text_options)

    cluster_patches = [
        FancyBboxPatch(
            (c.x0, c.y0),
            c.x1 - c.x0,
            c.y1 - c.y0,
            boxstyle="round,pad=0,rounding_size=5",
            facecolor=_CLUSTER_FILL[c.kind],
            edgecolor=_CLUSTER_STROKE[c.kind],
            linewidth=0.8,
        )
        for c in graph.clusters
    ]
    if cluster_patches:
        axes.add_collection(PatchCollection(cluster_patches, match_original=True, zorder=1))
    for cluster in graph.clusters if legible else ():
        axes.text(
            cluster.x0 + 5,
            cluster.y0 + 12,
            _fit_label(cluster.label, cluster.x1 - cluster.x0),
            fontsize=10,
            color="#333333",
            va="baseline",
            zorder=2,
            **text_options,
        )

    if graph.edges:
        t = np.linspace(0.0, 1.0, 17)[:, None]
        curves = []
        heads = []
        for source, target in graph.edges:
            x1, y1, x2, y2, pull = _edge_geometry(source, target)
            points = np.array([[x1, y1], [x1 + pull, y1], [x2 - pull, y2], [x2, y2]])
            curve = (
                ((1 - t) ** 3) * points[0]
                + 3 * ((1 - t) ** 2) * t * points[1]
                + 3 * (1 - t) * t**2 * points[2]
                + t**3 * points[3]
            )
            curve[-1] = (x2 - 6, y2)  # stop at the arrowhead's base
            curves.append(curve)
            heads.append([(x2, y2), (x2 - 7, y2 - 3.5), (x2 - 7, y2 + 3.5)])
        axes.add_collection(LineCollection(curves, colors=_EDGE_COLOUR, linewidths=0.9, zorder=3))
        axes.add_collection(PolyCollection(heads, facecolors=_EDGE_COLOUR, edgecolors="none", zorder=3))

    patches = []
    for node in graph.nodes:
        if node.kind == "init":
            patches.append(
                Ellipse(
                    (node.x + node.width / 2, node.y + node.height / 2),
                    node.width,
                    node.height,
                    facecolor=node.fill,
                    edgecolor=_STROKE,
                    linewidth=0.9,
                )
            )
        else:
            patches.append(
                Rectangle(
                    (node.x, node.y),
                    node.width,
                    node.height,
                    facecolor=node.fill,
                    edgecolor=_STROKE,
                    linewidth=1.8 if node.kind == "collapsed" else 0.9,
                    linestyle=(0, (4, 3)) if node.kind == "stage" else "solid",
                )
            )
    if patches:
        axes.add_collection(PatchCollection(patches, match_original=True, zorder=4))
    for node in graph.nodes if legible else ():
        baseline = node.y + (node.height - len(node.lines) * _LINE_H) / 2 + _LINE_H * 0.78
        for number, line in enumerate(node.lines):
            axes.text(
                node.x + node.width / 2,
                baseline + number * _LINE_H,
                line,
                ha="center",
                va="baseline",
                fontsize=_FONT if number == 0 else 9,
                fontweight="bold" if number == 0 and node.kind != "init" else "normal",
                zorder=5,
                **text_options,
            )
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=72.0 * scale, facecolor="white")


def _dot_string(text: str) -> str:
    """``text`` as a quoted DOT string (ids and attribute values alike)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
    # graphviz's lexer reads a final '\\"' as an escaped quote: keep a backslash off the end
    if quoted.endswith("\\"):
        quoted += " "
    return f'"{quoted}"'


def _dot_attributes(attributes: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_dot_string(str(value))}" for name, value in attributes.items())


def _dot_text(graph: _Graph, name: str) -> str:
    """The picture as DOT: nodes in nested ``cluster`` subgraphs, every id quoted."""
    out = [
        f"digraph {_dot_string(name)} {{",
        "  graph ["
        + _dot_attributes(
            {
                "rankdir": "LR",
                "compound": "true",
                "fontname": "Helvetica",
                "fontsize": "13",
                "label": graph.title,
                "labelloc": "t",
                "labeljust": "l",
                "nodesep": "0.15",
                "ranksep": "0.45",
            }
        )
        + "];",
        "  node ["
        + _dot_attributes(
            {
                "shape": "box",
                "style": "rounded,filled",
                "fontname": "Helvetica",
                "fontsize": "10",
                "color": _STROKE,
                "height": "0.3",
            }
        )
        + "];",
        "  edge [" + _dot_attributes({"color": _EDGE_COLOUR, "arrowsize": "0.6"}) + "];",
    ]

    def node_line(node: _Node, indent: str) -> str:
        attributes: dict[str, Any] = {
            "label": "\n".join(node.lines),
            "fillcolor": node.fill,
            "id": node.svg_id,
            "class": _CLASS_OF_KIND[node.kind],
            "tooltip": node.tooltip,
        }
        if node.kind == "init":
            attributes["shape"] = "ellipse"
            attributes["style"] = "filled"
        elif node.kind == "stage":
            attributes["style"] = "rounded,dashed,filled"
        elif node.kind == "collapsed":
            attributes["penwidth"] = "2"
        return f"{indent}{_dot_string(node.key)} [{_dot_attributes(attributes)}];"

    def emit(cluster: _Cluster, indent: str) -> None:
        for child in cluster.children:
            if isinstance(child, _Node):
                out.append(node_line(child, indent))
                continue
            out.append(f"{indent}subgraph {_dot_string(child.key)} {{")
            out.append(
                f"{indent}  graph ["
                + _dot_attributes(
                    {
                        "label": child.label,
                        "id": child.svg_id,
                        "class": f"{child.kind}-cluster",
                        "style": "rounded,filled",
                        "fillcolor": _CLUSTER_FILL[child.kind],
                        "color": _CLUSTER_STROKE[child.kind],
                        "fontsize": "10",
                        "labeljust": "l",
                    }
                )
                + "];"
            )
            emit(child, indent + "  ")
            out.append(f"{indent}}}")

    emit(graph.top, "  ")
    for source, target in graph.edges:
        out.append(f"  {_dot_string(source.key)} -> {_dot_string(target.key)};")
    out.append("}")
    return "\n".join(out) + "\n"


def _render_with_graphviz(dot: str, dot_path: Path, outputs: dict[str, Path], timeout: float, nodes: int) -> None:
    for kind, target in outputs.items():
        with atomic_output(target) as temporary:
            try:
                finished = subprocess.run(
                    [dot, f"-T{kind}", "-o", str(temporary), str(dot_path)],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise VisualizationError(
                    f"{dot_path}: graphviz 'dot' took longer than {timeout:g} s for {nodes} nodes; raise "
                    "graphviz_timeout, lower collapse_threshold, or pass use_graphviz=False"
                ) from None
            except OSError as error:
                raise VisualizationError(
                    f"{dot_path}: cannot run graphviz {dot!r} ({error.strerror or error}); fix the graphviz "
                    "installation or pass use_graphviz=False"
                ) from None
            if finished.returncode != 0:
                detail = next((line.strip() for line in finished.stderr.splitlines() if line.strip()), "no message")
                raise VisualizationError(
                    f"{dot_path}: graphviz 'dot -T{kind}' failed (exit {finished.returncode}): {detail}; "
                    "pass use_graphviz=False to use the built-in renderer"
                )


# -- public API -------------------------------------------------------------------------------


def write_workflow_pictures(
    run: WorkflowRun,
    out_dir: str | os.PathLike[str],
    *,
    basename: str = "workflow",
    use_graphviz: bool | None = None,
    collapse_threshold: int | None = DEFAULT_COLLAPSE_THRESHOLD,
    graphviz_timeout: float = 60.0,
) -> dict[str, Path]:
    """Write ``<basename>.dot``, ``.svg`` and ``.png`` of a workflow instance into ``out_dir``.

    The pictures show every step of ``run`` (finished or still running) with its
    state, an ``init`` node per scope, a cluster per stage and per subworkflow
    instance, and an arrow from each step to the steps whose stages depend on
    it; see the module docstring for the details. Every file is written
    atomically (temporary file + rename).

    Args:
        run: the run to draw (``run_workflow``'s result, or one still being driven).
        out_dir: folder for the pictures, created if missing (yadage used ``WORKDIR/_yadage``).
        basename: file name without suffix.
        use_graphviz: ``None`` (default) renders with graphviz's ``dot`` when it is on
            ``PATH`` and falls back to the built-in renderer if it is missing or fails;
            ``True`` requires ``dot``; ``False`` always uses the built-in renderer.
        collapse_threshold: draw a stage with more visible nodes than this as one
            summary node; ``None`` never collapses.
        graphviz_timeout: seconds each ``dot`` call may take.

    Returns:
        ``{"dot": path, "svg": path, "png": path}``.

    Raises:
        VisualizationError: bad ``basename`` / ``collapse_threshold`` / ``graphviz_timeout``,
            or ``use_graphviz=True`` and ``dot`` is missing or fails.
        WorkdirError: ``out_dir`` is not a folder or cannot be created.
    """
    if (
        not isinstance(basename, str)
        or basename in ("", ".", "..")
        or "\0" in basename
        or any(separator in basename for separator in ("/", "\\", os.sep))
    ):
        raise VisualizationError(
            f"basename {basename!r} is not a plain file name; pass a name without folders, e.g. 'workflow'"
        )
    if collapse_threshold is not None and (
        isinstance(collapse_threshold, bool) or not isinstance(collapse_threshold, int) or collapse_threshold < 1
    ):
        raise VisualizationError(
            f"collapse_threshold {collapse_threshold!r} is not a positive integer; pass e.g. 50, or None "
            "to draw every step"
        )
    if isinstance(graphviz_timeout, bool) or not isinstance(graphviz_timeout, (int, float)) or not graphviz_timeout > 0:
        raise VisualizationError(f"graphviz_timeout {graphviz_timeout!r} is not a positive number of seconds")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise WorkdirError(f"{folder}: exists and is not a folder; pass a folder for the workflow pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WorkdirError(f"{folder}: cannot create the pictures folder ({error.strerror or error})") from None
    paths = {kind: folder / f"{basename}.{kind}" for kind in ("dot", "svg", "png")}

    graph = _Builder(run, collapse_threshold).build()
    atomic_write_text(paths["dot"], _dot_text(graph, basename))

    dot = shutil.which("dot") if use_graphviz is not False else None
    if use_graphviz and dot is None:
        raise VisualizationError(
            "graphviz 'dot' is not on PATH; install graphviz or pass use_graphviz=None (or False) to use "
            "the built-in renderer"
        )
    if dot is not None:
        try:
            _render_with_graphviz(
                dot, paths["dot"], {"svg": paths["svg"], "png": paths["png"]}, float(graphviz_timeout), len(graph.nodes)
            )
            return paths
        except VisualizationError as error:
            if use_graphviz:
                raise
            log.warning("%s; using the built-in renderer instead", error)
    _layout(graph)
    atomic_write_text(paths["svg"], _svg_text(graph))
    _write_png(graph, paths["png"])
    return paths
