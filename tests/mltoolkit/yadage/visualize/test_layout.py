"""The matplotlib layout: columns from networkx's layering, frames that hold their boxes."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from mltoolkit.yadage.visualize.graph import build_graph
from mltoolkit.yadage.visualize.layout import columns, compute_layout
from mltoolkit.yadage.visualize.scopes import Box, Cluster

from .conftest import run_case


def _inside(inner: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _overlap(one: tuple[float, float, float, float], other: tuple[float, float, float, float]) -> bool:
    return one[0] < other[2] and other[0] < one[2] and one[1] < other[3] and other[1] < one[3]


def _box_rectangles(graph, layout, sizes):
    found = {}
    for key, (x, y) in layout.centres.items():
        width, height = sizes[key]
        found[key] = (x - width / 2, y - height / 2, x + width / 2, y + height / 2)
    return found


def _check_frames(cluster: Cluster, layout, rectangles) -> None:
    """Every box and frame lies inside each frame around it; siblings never overlap."""
    children = []
    for child in cluster.children:
        if isinstance(child, Box):
            children.append(rectangles[child.key])
        else:
            children.append(layout.frames[child.key])
            _check_frames(child, layout, rectangles)
    if cluster.kind != "top":
        assert all(_inside(rectangle, layout.frames[cluster.key]) for rectangle in children), cluster.key
    for one, other in itertools.combinations(children, 2):
        assert not _overlap(one, other), (cluster.key, one, other)


@pytest.mark.parametrize("case, threshold", [("visualize_small", None), ("nested", None), ("visualize_small", 2)])
def test_frames_hold_their_boxes_and_arrows_point_right(case, threshold, tmp_path):
    run = run_case(case, tmp_path)
    graph = build_graph(run, threshold)
    sizes = {box.key: (60.0 + 3 * len(box.key), 30.0) for box in graph.boxes()}
    layout = compute_layout(graph, sizes)

    assert set(layout.centres) == set(graph.digraph.nodes)
    assert set(layout.frames) == {cluster.key for cluster in graph.top.clusters()}
    rectangles = _box_rectangles(graph, layout, sizes)
    _check_frames(graph.top, layout, rectangles)
    everything = [*rectangles.values(), *layout.frames.values()]
    assert all(_inside(rectangle, (0, 0, layout.width, layout.height)) for rectangle in everything)
    # every arrow goes from a column to a later one, so it runs left to right
    for source, target in graph.digraph.edges:
        assert rectangles[source][2] < rectangles[target][0], (source, target)


def test_columns_are_topological_generations():
    graph = nx.DiGraph([("init", "a"), ("a", "b"), ("init", "b"), ("b", "c"), ("init", "d")])
    assert columns(graph) == {"init": 0, "a": 1, "d": 1, "b": 2, "c": 3}


def test_nodes_of_a_cycle_share_a_column():
    # only an open-ended JSONPath such as '$..x' can make a stage select itself
    graph = nx.DiGraph([("init", "a"), ("a", "b"), ("b", "a"), ("b", "c")])
    assert columns(graph) == {"init": 0, "a": 1, "b": 1, "c": 2}
