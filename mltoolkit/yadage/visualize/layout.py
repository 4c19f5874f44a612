"""Where every box and frame of the matplotlib picture goes, in points (y grows downwards).

Columns come from networkx: the topological generations of the graph's
condensation, so a node sits one column right of its longest chain of upstream
nodes, and the rare cycle an open-ended JSONPath (``'$..x'``) can create shares
one column. Flow runs left to right, as in graphviz's ``rankdir=LR``.

Rows: a frame (stage or subworkflow instance) must hold its boxes together,
which a plain layered layout such as :func:`networkx.multipartite_layout` does
not know about; so each frame stacks what it holds in workflow order, each item
at the first height where every column it spans is free. A chain stays on one
line and a scatter becomes a column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from mltoolkit.yadage.visualize.graph import WorkflowGraph
from mltoolkit.yadage.visualize.scopes import Box, Cluster

__all__ = ["MARGIN", "TITLE_HEIGHT", "Layout", "columns", "compute_layout"]

MARGIN = 16.0
TITLE_HEIGHT = 26.0
_ROW_GAP = 8.0
_COLUMN_GAP = 36.0
_FRAME_PAD = 8.0
_FRAME_LABEL = 16.0


@dataclass
class Layout:
    """Positions in points: box centres, frame rectangles ``(x0, y0, x1, y1)``, picture size."""

    columns: dict[str, int] = field(default_factory=dict)  # box key -> its column
    centres: dict[str, tuple[float, float]] = field(default_factory=dict)
    frames: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0


@dataclass(eq=False)
class _Block:
    item: Box | Cluster
    first: int  # first and last column it spans
    last: int
    height: float
    inner: list[tuple[_Block, float]] = field(default_factory=list)  # a frame's items and their offsets


def columns(digraph: nx.DiGraph) -> dict[str, int]:
    """The column of every node: its topological generation (a cycle's nodes share one)."""
    condensed = nx.condensation(digraph)
    found: dict[str, int] = {}
    for number, generation in enumerate(nx.topological_generations(condensed)):
        for component in generation:
            found.update(dict.fromkeys(condensed.nodes[component]["members"], number))
    return found


class _Packer:
    def __init__(self, column: dict[str, int], sizes: dict[str, tuple[float, float]]) -> None:
        self.column = column
        self.sizes = sizes

    def block(self, item: Box | Cluster) -> _Block:
        if isinstance(item, Box):
            return _Block(item, self.column[item.key], self.column[item.key], self.sizes[item.key][1])
        framed = item.kind != "top"
        blocks = [self.block(child) for child in item.children]
        skyline: dict[int, float] = {}  # column -> first free height below what is placed
        inner: list[tuple[_Block, float]] = []
        for block in blocks:
            spanned = range(block.first, block.last + 1)
            top = max(skyline.get(number, 0.0) for number in spanned)
            inner.append((block, (_FRAME_LABEL if framed else 0.0) + top))
            skyline.update(dict.fromkeys(spanned, top + block.height + _ROW_GAP))
        content = max(skyline.values(), default=_ROW_GAP) - _ROW_GAP
        height = _FRAME_LABEL + content + _FRAME_PAD if framed else content
        first = min((block.first for block in blocks), default=0)
        last = max((block.last for block in blocks), default=0)
        return _Block(item, first, last, height, inner)


def _place(
    block: _Block, top: float, x_of: dict[int, float], layout: Layout, sizes: dict[str, tuple[float, float]]
) -> tuple[float, float]:
    """Give ``block`` and everything in it its position; return its left and right edges."""
    if isinstance(block.item, Box):
        width, height = sizes[block.item.key]
        centre = x_of[block.first]
        layout.centres[block.item.key] = (centre, top + height / 2)
        return centre - width / 2, centre + width / 2
    sides = [_place(inner, top + offset, x_of, layout, sizes) for inner, offset in block.inner]
    if block.item.kind == "top":
        return min(left for left, _ in sides), max(right for _, right in sides)
    left = min(left for left, _ in sides) - _FRAME_PAD
    right = max(right for _, right in sides) + _FRAME_PAD
    layout.frames[block.item.key] = (left, top, right, top + block.height)
    return left, right


def _depth(cluster: Cluster) -> int:
    return max((1 + _depth(child) for child in cluster.children if isinstance(child, Cluster)), default=0)


def compute_layout(graph: WorkflowGraph, sizes: dict[str, tuple[float, float]]) -> Layout:
    """Positions of ``graph``'s boxes (``sizes``: each box's width and height) and frames."""
    column = columns(graph.digraph)
    widths: dict[int, float] = {}
    for key, number in column.items():
        widths[number] = max(widths.get(number, 0.0), sizes[key][0])
    # room for every frame border between two neighbouring columns
    depth = _depth(graph.top)
    x = MARGIN + _FRAME_PAD * depth
    x_of: dict[int, float] = {}  # column -> centre
    for number in range(max(widths, default=0) + 1):
        x_of[number] = x + widths.get(number, 0.0) / 2
        x += widths.get(number, 0.0) + _COLUMN_GAP + 2 * _FRAME_PAD * depth
    layout = Layout(columns=column)
    top = _Packer(column, sizes).block(graph.top)
    _, right = _place(top, MARGIN + TITLE_HEIGHT, x_of, layout, sizes)
    layout.width = right + MARGIN + _FRAME_PAD * depth
    layout.height = MARGIN + TITLE_HEIGHT + top.height + MARGIN
    return layout
