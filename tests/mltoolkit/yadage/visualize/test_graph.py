"""The graph behind the pictures: nodes, arrows, scopes and the collapsing of large stages."""

from __future__ import annotations

import pytest

from mltoolkit.yadage.planner import COMPLETED, FAILED
from mltoolkit.yadage.visualize import STATE_COLOURS, write_workflow_pictures
from mltoolkit.yadage.visualize.graph import build_graph

from .conftest import SMALL_EDGES, check_png, dot_attribute, dot_edges, dot_nodes, run_case, svg_labels, svg_nodes

NESTED_INITS = ["/init", "/map/0/init", "/map/0/inner/0/init", "/map/1/init", "/map/1/inner/0/init"]
NESTED_INITS += ["/single/0/init", "/single/0/inner/0/init"]
NESTED_LEAVES = ["/map/0/inner/0/leaf", "/map/1/inner/0/leaf", "/single/0/inner/0/leaf"]


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory):
    run = run_case("nested", tmp_path_factory.mktemp("nested"))
    assert run.status == "completed", run.problems()
    return run


@pytest.fixture(scope="module")
def mapreduce_run(tmp_path_factory):
    run = run_case("mapreduce_multilevel", tmp_path_factory.mktemp("mapreduce"))
    assert run.status == "completed", run.problems()
    assert len(run.records()) == 40 + 20 + 1  # 120 inputs in batches of 3, pairs of those, one reduce
    return run


def _kinds(graph) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for box in graph.boxes():
        found.setdefault(box.kind, []).append(box.key)
    return found


def test_the_graph_has_one_node_per_step_and_init_and_the_dependency_arrows(completed_run):
    graph = build_graph(completed_run, None)
    kinds = _kinds(graph)
    assert sorted(kinds) == ["init", "step"]
    assert len(kinds["step"]) == 9 and kinds["init"] == ["/init", "/map/0/init", "/map/1/init"]
    assert set(graph.digraph.edges) == SMALL_EDGES
    assert graph.title == "workflow instance (completed): 9 steps (9 completed)"


def test_subworkflows_two_levels_deep_are_nested_scopes(nested_run):
    graph = build_graph(nested_run, None)
    kinds = _kinds(graph)
    assert sorted(kinds["init"]) == sorted(NESTED_INITS)
    scopes = [cluster.key for cluster in graph.top.clusters() if cluster.kind == "scope"]
    assert scopes == [f"cluster_scope:{pointer}" for pointer in ("/map/0", "/map/0/inner/0", "/map/1")] + [
        "cluster_scope:/map/1/inner/0",
        "cluster_scope:/single/0",
        "cluster_scope:/single/0/inner/0",
    ]
    edges = set(graph.digraph.edges)
    # a step of a subworkflow feeds the init of the instance its stage starts
    assert ("/map/0/stage1", "/map/0/inner/0/init") in edges
    assert ("/map/1/inner/0/init", "/map/1/inner/0/leaf") in edges
    # reduce depends on the stages 'map' and 'single': on every step inside them, at any depth
    feeding_reduce = {source for source, target in edges if target == "/reduce"}
    assert feeding_reduce == {"/map/0/stage1", "/map/1/stage1", "/single/0/stage1", *NESTED_LEAVES}
    assert len(edges) == 3 + 3 * 3 + 6  # root init -> 3 instances; init -> stage1 -> inner init -> leaf; 6 -> reduce


def test_a_1000_step_scatter_collapses_into_one_node(scatter_1000, tmp_path):
    paths = write_workflow_pictures(scatter_1000, tmp_path / "pics", use_graphviz=False)
    check_png(paths["png"])
    [collapsed] = svg_nodes(paths["svg"], "collapsed")
    assert collapsed.get("id") == "collapsed-scatter"
    assert "scatter (1000 steps: 1000 completed, 0 failed)" in svg_labels(collapsed)
    assert collapsed.get("data-state") == COMPLETED
    assert [element.get("data-id") for element in svg_nodes(paths["svg"], "step")] == ["/gather"]
    assert len(svg_nodes(paths["svg"], "init")) == 1
    dot_text = paths["dot"].read_text()
    assert dot_nodes(dot_text, "collapsed") == ["/scatter#collapsed"]
    assert dot_edges(dot_text) == {("/init", "/scatter#collapsed"), ("/scatter#collapsed", "/gather")}


def test_every_one_of_1000_steps_can_still_be_drawn(scatter_1000, tmp_path):
    every = write_workflow_pictures(scatter_1000, tmp_path, use_graphviz=False, collapse_threshold=None)
    assert len(svg_nodes(every["svg"], "step")) == 1001
    dot_text = every["dot"].read_text()
    assert len(dot_nodes(dot_text, "step")) == 1001 and len(dot_edges(dot_text)) == 2000
    width, height = check_png(every["png"], min_size=(50, 10000))  # one tall column, shrunk to fit
    assert height > 10 * width


def test_a_subworkflow_stage_collapses_with_its_instances(completed_run, tmp_path):
    # classify has 3 steps; map shows 2 x (init + 2 steps) = 6 nodes: both exceed 2
    paths = write_workflow_pictures(completed_run, tmp_path, use_graphviz=False, collapse_threshold=2)
    collapsed = {element.get("data-id"): svg_labels(element) for element in svg_nodes(paths["svg"], "collapsed")}
    assert set(collapsed) == {"/classify#collapsed", "/map#collapsed"}
    assert "map (2 instances, 4 steps: 4 completed, 0 failed)" in collapsed["/map#collapsed"]
    assert sorted(element.get("data-id") for element in svg_nodes(paths["svg"], "step")) == ["/merge", "/prepare"]
    assert svg_nodes(paths["svg"], "scope-cluster") == []
    assert dot_edges(paths["dot"].read_text()) == {
        ("/init", "/prepare"),
        ("/prepare", "/classify#collapsed"),
        ("/init", "/map#collapsed"),
        ("/classify#collapsed", "/merge"),
        ("/map#collapsed", "/merge"),
    }


def test_a_large_stage_inside_a_subworkflow_collapses_without_hiding_its_siblings(tmp_path):
    run = run_case("visualize_nested_scatter", tmp_path)
    assert run.status == "completed", run.problems()
    # bottom-up: fan (5 steps) collapses; its instance then shows init, fan, sum = 3 boxes, kept
    graph = build_graph(run, 4)
    assert [(box.key, box.kind) for box in graph.boxes()] == [
        ("/init", "init"),
        ("/single/0/init", "init"),
        ("/single/0/fan#collapsed", "collapsed"),
        ("/single/0/sum", "step"),
        ("/after", "step"),
    ]
    assert [cluster.key for cluster in graph.top.clusters() if cluster.kind == "scope"] == ["cluster_scope:/single/0"]
    assert set(graph.digraph.edges) == {
        ("/init", "/single/0/init"),
        ("/single/0/init", "/single/0/fan#collapsed"),
        ("/single/0/fan#collapsed", "/single/0/sum"),
        ("/single/0/sum", "/after"),
    }
    # one less and the whole subworkflow stage is one box
    assert [box.kind for box in build_graph(run, 2).boxes()] == ["init", "collapsed", "step"]


def test_a_collapsed_stage_with_a_failure_is_coloured_failed(failed_run, tmp_path):
    paths = write_workflow_pictures(failed_run, tmp_path, use_graphviz=False, collapse_threshold=2)
    dot_text = paths["dot"].read_text()
    assert dot_attribute(dot_text, "/classify#collapsed", "fillcolor") == STATE_COLOURS[FAILED]
    assert "classify (3 steps: 2 completed, 1 failed)" in dot_attribute(dot_text, "/classify#collapsed", "label")


def test_a_multilevel_map_reduce_draws_every_step_and_stage_to_stage_arrows(mapreduce_run, tmp_path):
    paths = write_workflow_pictures(mapreduce_run, tmp_path, use_graphviz=False)
    check_png(paths["png"])
    steps = svg_nodes(paths["svg"], "step")
    assert len(steps) == 61 and len({element.get("id") for element in steps}) == 61
    assert {element.get("data-state") for element in steps} == {COMPLETED}
    edges = dot_edges(paths["dot"].read_text())
    # map2 depends on the stage map: each of its 20 steps on all 40 map steps
    assert len(edges) == 40 + 40 * 20 + 20
    assert ("/map_39", "/map2_0") in edges and ("/map2_19", "/reduce") in edges and ("/init", "/map_0") in edges


def test_a_multilevel_map_reduce_collapses_its_wide_level(mapreduce_run, tmp_path):
    paths = write_workflow_pictures(mapreduce_run, tmp_path, use_graphviz=False, collapse_threshold=30)
    [collapsed] = svg_nodes(paths["svg"], "collapsed")
    assert "map (40 steps: 40 completed, 0 failed)" in svg_labels(collapsed)
    assert len(svg_nodes(paths["svg"], "step")) == 21
    edges = dot_edges(paths["dot"].read_text())
    assert len(edges) == 1 + 20 + 20 and ("/map#collapsed", "/map2_7") in edges
