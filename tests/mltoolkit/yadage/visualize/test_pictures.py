"""write_workflow_pictures drawn with matplotlib: what the SVG, PNG and DOT show."""

from __future__ import annotations

import pytest

from mltoolkit.errors import MLToolkitError, WorkdirError
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage.planner import COMPLETED, FAILED, PENDING, RUNNING, WorkflowRun
from mltoolkit.yadage.visualize import (
    STATE_COLOURS,
    VisualizationError,
    write_workdir_pictures,
    write_workflow_pictures,
)

from ..conftest import case_inputs, load_case
from .conftest import (
    SMALL_EDGES,
    SMALL_STEPS,
    check_png,
    dot_attribute,
    dot_edges,
    dot_nodes,
    no_temporaries,
    svg_fill,
    svg_labels,
    svg_nodes,
)

# class token -> the prefix of the svg id (gid) of every group of that class
ID_PREFIX = {
    "step": "step-",
    "init": "init-",
    "collapsed": "collapsed-",
    "pending-stage": "pending-stage-",
    "stage-cluster": "stage-cluster-",
    "scope-cluster": "scope-cluster-",
}


def _kinds(svg) -> dict[str, int]:
    counts = {}
    for kind, prefix in ID_PREFIX.items():
        nodes = svg_nodes(svg, kind)
        assert all(node.get("id").startswith(prefix) for node in nodes), kind
        counts[kind] = len(nodes)
    return counts


def test_pictures_of_a_completed_run(completed_run, tmp_path):
    paths = write_workflow_pictures(completed_run, tmp_path / "pics", use_graphviz=False)

    assert paths == {kind: tmp_path / "pics" / f"workflow.{kind}" for kind in ("dot", "svg", "png")}
    check_png(paths["png"])
    no_temporaries(tmp_path / "pics")

    assert _kinds(paths["svg"]) == {
        "step": 9,
        "init": 3,  # the root and both map instances
        "collapsed": 0,
        "pending-stage": 0,
        "stage-cluster": 4 + 2 * 2,
        "scope-cluster": 2,
    }
    steps = svg_nodes(paths["svg"], "step")
    assert sorted(element.get("data-id") for element in steps) == sorted(SMALL_STEPS)
    assert {element.get("id") for element in steps} >= {"step-classify_2", "step-map-0-first", "step-map-1-first"}
    assert {element.get("data-state") for element in steps} == {COMPLETED}
    assert {svg_fill(element) for element in steps} == {STATE_COLOURS[COMPLETED]}
    assert {"classify_2 COMPLETED", "second COMPLETED", "merge COMPLETED"} <= {svg_labels(e) for e in steps}

    dot_text = paths["dot"].read_text()
    assert dot_text.startswith('digraph "workflow" {') and dot_text.rstrip().endswith("}")
    assert sorted(dot_nodes(dot_text, "step")) == sorted(SMALL_STEPS)
    assert sorted(dot_nodes(dot_text, "init")) == ["/init", "/map/0/init", "/map/1/init"]
    assert dot_edges(dot_text) == SMALL_EDGES
    assert 'subgraph "cluster_scope:/map/0" {' in dot_text
    assert 'label="classify_1\\nCOMPLETED"' in dot_text


def test_a_failed_step_is_coloured_differently_and_blocked_stages_show(failed_run, tmp_path):
    paths = write_workflow_pictures(failed_run, tmp_path, use_graphviz=False)
    check_png(paths["png"])

    fills = {element.get("data-id"): svg_fill(element) for element in svg_nodes(paths["svg"], "step")}
    assert fills["/classify_1"] == STATE_COLOURS[FAILED] != STATE_COLOURS[COMPLETED] == fills["/classify_0"]
    dot_text = paths["dot"].read_text()
    assert dot_attribute(dot_text, "/classify_1", "fillcolor") == STATE_COLOURS[FAILED]
    assert dot_attribute(dot_text, "/classify_0", "fillcolor") == STATE_COLOURS[COMPLETED]
    assert "test" in dot_attribute(dot_text, "/classify_1", "tooltip")  # the step's error

    # merge never ran: no step for it, but a dashed 'not applied' box its inputs point at
    assert _kinds(paths["svg"])["step"] == len(SMALL_STEPS) - 1
    [blocked] = svg_nodes(paths["svg"], "pending-stage")
    assert blocked.get("id") == "pending-stage-merge" and "not applied" in svg_labels(blocked)
    edges = dot_edges(dot_text)
    assert ("/classify_1", "/merge#stage") in edges and ("/map/1/second", "/merge#stage") in edges
    assert "workflow instance (failed)" in dot_text


def test_pictures_during_a_run_show_running_and_pending(tmp_path):
    run = WorkflowRun(load_case("visualize_small"), case_inputs("visualize_small"), tmp_path / "work")
    first = run.advance()
    assert [step.id for stage in first for step in stage.steps] == ["/prepare", "/map/0/first", "/map/1/first"]
    run.mark_running("/prepare")
    run.record_success("/map/0/first", {"value": "x"})
    run.advance()

    paths = write_workflow_pictures(run, tmp_path / "pics", use_graphviz=False)
    steps = svg_nodes(paths["svg"], "step")
    states = {element.get("data-id"): element.get("data-state") for element in steps}
    assert states == {"/prepare": RUNNING, "/map/0/first": COMPLETED, "/map/1/first": PENDING, "/map/0/second": PENDING}
    fills = {element.get("data-id"): svg_fill(element) for element in steps}
    assert fills["/prepare"] == STATE_COLOURS[RUNNING] and fills["/map/1/first"] == STATE_COLOURS[PENDING]
    blocked = {element.get("data-id") for element in svg_nodes(paths["svg"], "pending-stage")}
    assert blocked == {"/classify#stage", "/merge#stage", "/map/1/second#stage"}
    assert "workflow instance (running)" in paths["dot"].read_text()
    check_png(paths["png"])


def test_output_is_deterministic_and_rewritten_in_place(completed_run, tmp_path):
    first = write_workflow_pictures(completed_run, tmp_path, basename="instance", use_graphviz=False)
    texts = {kind: first[kind].read_text() for kind in ("dot", "svg")}
    again = write_workflow_pictures(completed_run, tmp_path, basename="instance", use_graphviz=False)
    assert {kind: again[kind].read_text() for kind in ("dot", "svg")} == texts
    assert texts["dot"].startswith('digraph "instance" {')
    assert sorted(path.name for path in tmp_path.iterdir()) == ["instance.dot", "instance.png", "instance.svg"]


def test_workdir_pictures_go_where_the_layout_says(completed_run, tmp_path):
    paths = write_workdir_pictures(completed_run, tmp_path, use_graphviz=False)
    layout = WorkdirLayout(tmp_path)
    assert paths == {kind: layout.picture(kind) for kind in ("dot", "svg", "png")}
    assert len(svg_nodes(paths["svg"], "step")) == len(SMALL_STEPS)
    check_png(paths["png"])
    no_temporaries(layout.records)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"basename": "a/b"}, "not a plain file name"),
        ({"basename": ""}, "not a plain file name"),
        ({"collapse_threshold": 0}, "collapse_threshold 0 is not a positive integer"),
        ({"collapse_threshold": True}, "collapse_threshold True is not a positive integer"),
        ({"graphviz_timeout": 0}, "graphviz_timeout 0 is not a positive number"),
    ],
)
def test_bad_arguments_are_one_line_errors(completed_run, tmp_path, arguments, message):
    with pytest.raises(VisualizationError, match=message) as raised:
        write_workflow_pictures(completed_run, tmp_path, use_graphviz=False, **arguments)
    assert isinstance(raised.value, MLToolkitError) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_an_out_dir_that_is_a_file_is_a_workdir_error(completed_run, tmp_path):
    target = tmp_path / "pictures"
    target.write_text("not a folder")
    with pytest.raises(WorkdirError, match="is not a folder"):
        write_workflow_pictures(completed_run, target, use_graphviz=False)
    assert target.read_text() == "not a folder"
