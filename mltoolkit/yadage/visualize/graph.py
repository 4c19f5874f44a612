"""The workflow picture as a :class:`networkx.DiGraph`: one node per box, one edge per arrow.

Nodes are the ``init`` of every scope, every step, the box of each collapsed
stage and of each stage without steps; each carries its :class:`Box` (``box``).
Edges point downstream, from a node to the nodes whose stages depend on it. The
frames (stages, subworkflow instances) are the :class:`Cluster` tree beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx

from mltoolkit.yadage.planner import CACHED, COMPLETED, FAILED, PENDING, RUNNING, StepRecord, WorkflowRun
from mltoolkit.yadage.visualize.dependencies import dependency_edges
from mltoolkit.yadage.visualize.scopes import Box, Cluster, ScopeWalk, state_counts
from mltoolkit.yadage.visualize.style import KIND_CLASS, IdNamer

__all__ = ["WorkflowGraph", "build_graph"]


@dataclass
class WorkflowGraph:
    """What to draw: the graph, its cluster tree and its title."""

    title: str
    top: Cluster  # the root scope; its descendants are the stage and scope frames
    digraph: nx.DiGraph

    def boxes(self) -> Iterator[Box]:
        """Every box, in workflow order."""
        for _, box in self.digraph.nodes(data="box"):
            yield box

    def box(self, key: str) -> Box:
        """The box of node ``key``."""
        box: Box = self.digraph.nodes[key]["box"]
        return box

    def arrows(self) -> Iterator[tuple[Box, Box]]:
        """Every arrow as ``(source, target)``, in workflow order."""
        for source, target in self.digraph.edges:
            yield self.box(source), self.box(target)


def _title(status: str, records: list[StepRecord]) -> str:
    if not records:  # nothing scheduled yet: the picture of the spec itself (what `validate` draws)
        return "workflow (no step scheduled yet): stages and their dependencies"
    counts = state_counts(records)
    summary = ", ".join(
        f"{counts[state]} {state.lower()}"
        for state in (COMPLETED, CACHED, FAILED, RUNNING, PENDING)
        if counts.get(state)
    )
    return f"workflow instance ({status}): {len(records)} steps" + (f" ({summary})" if summary else "")


def build_graph(run: WorkflowRun, collapse_threshold: int | None) -> WorkflowGraph:
    """The picture of ``run``: stages with more than ``collapse_threshold`` boxes become one box.

    Reads the run's records and scope table without locking: call it from the
    thread that drives the run.
    """
    walk = ScopeWalk(run, collapse_threshold)
    top = walk.walk()
    digraph = nx.DiGraph()
    name = IdNamer()
    for box in top.boxes():
        box.svg_id = name(f"{KIND_CLASS[box.kind]}-", box.key.split("#", 1)[0])
        digraph.add_node(box.key, box=box)
    for cluster in top.clusters():
        cluster.svg_id = name(f"{cluster.kind}-cluster-", cluster.key.split(":", 1)[-1])
    digraph.add_edges_from(dependency_edges(walk.scopes, walk.steps_of, walk.display))
    return WorkflowGraph(_title(run.status, walk.records), top, digraph)
