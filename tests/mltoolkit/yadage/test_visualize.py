"""Pictures of a workflow instance (the ``--visualize`` analogue): pure, no Prefect, no network."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mltoolkit.errors import MLToolkitError, WorkdirError
from mltoolkit.yadage import load_workflow, read_inputs, validate_workflow
from mltoolkit.yadage.planner import COMPLETED, FAILED, PENDING, RUNNING, WorkflowRun
from mltoolkit.yadage.runner import run_workflow
from mltoolkit.yadage.visualize import (
    STATE_COLOURS,
    VisualizationError,
    _dot_string,
    write_workflow_pictures,
)

SPECS = Path(__file__).resolve().parents[2] / "specs"
SMALL = SPECS / "visualize_small"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"

SMALL_STEPS = {
    "/prepare",
    "/classify_0",
    "/classify_1",
    "/classify_2",
    "/map/0/first",
    "/map/0/second",
    "/map/1/first",
    "/map/1/second",
    "/merge",
}
# B's stage depends on A's: init -> prepare -> classify_*; init -> each instance's init;
# inside an instance first -> second; merge needs classify and 'map.[*].second' (not first)
SMALL_EDGES = {
    ("/init", "/prepare"),
    ("/prepare", "/classify_0"),
    ("/prepare", "/classify_1"),
    ("/prepare", "/classify_2"),
    ("/init", "/map/0/init"),
    ("/init", "/map/1/init"),
    ("/map/0/init", "/map/0/first"),
    ("/map/0/first", "/map/0/second"),
    ("/map/1/init", "/map/1/first"),
    ("/map/1/first", "/map/1/second"),
    ("/classify_0", "/merge"),
    ("/classify_1", "/merge"),
    ("/classify_2", "/merge"),
    ("/map/0/second", "/merge"),
    ("/map/1/second", "/merge"),
}


def _small_workflow():
    return validate_workflow(load_workflow(SMALL / "workflow.yml"))


def _run_small(workdir: Path, **overrides) -> WorkflowRun:
    inputs = read_inputs(SMALL / "inputs.yml")
    inputs.update(overrides)
    return run_workflow(_small_workflow(), inputs, workdir)


@pytest.fixture(scope="module")
def completed_run(tmp_path_factory) -> WorkflowRun:
    run = _run_small(tmp_path_factory.mktemp("completed"))
    assert run.status == "completed", run.problems()
    return run


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory) -> WorkflowRun:
    run = _run_small(tmp_path_factory.mktemp("failed"), items=["a", "bad", "c"])
    assert run.status == "failed"
    assert run.record("/classify_1").state == FAILED
    return run


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _svg_nodes(svg: Path, kind: str) -> list[ET.Element]:
    root = ET.parse(svg).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return [element for element in root.iter() if kind in _classes(element)]


_DOT_ID = r'"((?:[^"\\]|\\.)*)"'


def _dot_nodes(dot_text: str, kind: str) -> list[str]:
    pattern = re.compile(rf'^\s*{_DOT_ID} \[.*\bclass="{kind}"', re.MULTILINE)
    return pattern.findall(dot_text)


def _dot_edges(dot_text: str) -> set[tuple[str, str]]:
    return set(re.findall(rf"^\s*{_DOT_ID} -> {_DOT_ID};$", dot_text, re.MULTILINE))


def _dot_attribute(dot_text: str, node: str, name: str) -> str:
    line = next(line for line in dot_text.splitlines() if line.strip().startswith(f'"{node}" ['))
    return re.search(rf'\b{name}="([^"]*)"', line).group(1)


def _svg_fill(svg: Path, step_id: str) -> str:
    for element in _svg_nodes(svg, "step"):
        if element.get("data-id") == step_id:
            return next(child for child in element if child.tag == f"{SVG}rect").get("fill")
    raise AssertionError(f"no step {step_id} in {svg}")


def _check_png(path: Path, *, min_height: int = 100, min_width: int = 200) -> None:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] >= min_height and image.shape[1] >= min_width
    assert image.std() > 0.01  # not a blank canvas


def _no_temporaries(folder: Path) -> None:
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".")) == []


# -- the built-in renderer ----------------------------------------------------------------------


def test_pictures_of_a_completed_run(completed_run, tmp_path):
    paths = write_workflow_pictures(completed_run, tmp_path / "pics", use_graphviz=False)

    assert paths == {kind: tmp_path / "pics" / f"workflow.{kind}" for kind in ("dot", "svg", "png")}
    _check_png(paths["png"])
    _no_temporaries(tmp_path / "pics")

    steps = _svg_nodes(paths["svg"], "step")
    assert sorted(element.get("data-id") for element in steps) == sorted(SMALL_STEPS)
    assert len({element.get("id") for element in steps}) == len(SMALL_STEPS)
    assert {element.get("data-state") for element in steps} == {COMPLETED}
    labels = {" ".join(text.text for text in element.iter(f"{SVG}text")) for element in steps}
    assert {"classify_2 COMPLETED", "second COMPLETED", "merge COMPLETED"} <= labels
    assert len(_svg_nodes(paths["svg"], "init")) == 3  # the root and both map instances
    assert len(_svg_nodes(paths["svg"], "scope-cluster")) == 2
    assert len(_svg_nodes(paths["svg"], "stage-cluster")) == 4 + 2 * 2

    dot_text = paths["dot"].read_text()
    assert dot_text.startswith('digraph "workflow" {') and dot_text.rstrip().endswith("}")
    assert sorted(_dot_nodes(dot_text, "step")) == sorted(SMALL_STEPS)
    assert sorted(_dot_nodes(dot_text, "init")) == ["/init", "/map/0/init", "/map/1/init"]
    assert _dot_edges(dot_text) == SMALL_EDGES
    assert 'subgraph "cluster_scope:/map/0" {' in dot_text
    assert 'label="classify_1\\nCOMPLETED"' in dot_text


def test_a_failed_step_is_coloured_differently_and_blocked_stages_show(failed_run, tmp_path):
    paths = write_workflow_pictures(failed_run, tmp_path, use_graphviz=False)
    _check_png(paths["png"])

    assert _svg_fill(paths["svg"], "/classify_1") == STATE_COLOURS[FAILED]
    assert _svg_fill(paths["svg"], "/classify_0") == STATE_COLOURS[COMPLETED]
    assert STATE_COLOURS[FAILED] != STATE_COLOURS[COMPLETED]
    dot_text = paths["dot"].read_text()
    assert _dot_attribute(dot_text, "/classify_1", "fillcolor") == STATE_COLOURS[FAILED]
    assert _dot_attribute(dot_text, "/classify_0", "fillcolor") == STATE_COLOURS[COMPLETED]
    assert "test" in _dot_attribute(dot_text, "/classify_1", "tooltip")  # the step's error

    # merge never ran: no step for it, but a dashed 'not applied' box its inputs point at
    assert len(_svg_nodes(paths["svg"], "step")) == len(SMALL_STEPS) - 1
    [blocked] = _svg_nodes(paths["svg"], "pending-stage")
    assert "not applied" in "".join(blocked.itertext())
    edges = _dot_edges(dot_text)
    assert ("/classify_1", "/merge#stage") in edges and ("/map/1/second", "/merge#stage") in edges
    assert "workflow instance (failed)" in dot_text


def test_pictures_during_a_run_show_running_and_pending(tmp_path):
    run = WorkflowRun(_small_workflow(), read_inputs(SMALL / "inputs.yml"), tmp_path / "work")
    first = run.advance()
    ids = [step.id for stage in first for step in stage.steps]
    assert ids == ["/prepare", "/map/0/first", "/map/1/first"]
    run.mark_running("/prepare")
    run.record_success("/map/0/first", {"value": "x"})
    run.advance()

    paths = write_workflow_pictures(run, tmp_path / "pics", use_graphviz=False)
    states = {element.get("data-id"): element.get("data-state") for element in _svg_nodes(paths["svg"], "step")}
    assert states == {"/prepare": RUNNING, "/map/0/first": COMPLETED, "/map/1/first": PENDING, "/map/0/second": PENDING}
    assert _svg_fill(paths["svg"], "/prepare") == STATE_COLOURS[RUNNING]
    assert _svg_fill(paths["svg"], "/map/1/first") == STATE_COLOURS[PENDING]
    blocked = {element.get("data-id") for element in _svg_nodes(paths["svg"], "pending-stage")}
    assert blocked == {"/classify#stage", "/merge#stage", "/map/1/second#stage"}
    assert "workflow instance (running)" in paths["dot"].read_text()
    _check_png(paths["png"])


def test_output_is_deterministic_and_rewritten_in_place(completed_run, tmp_path):
    first = write_workflow_pictures(completed_run, tmp_path, basename="instance", use_graphviz=False)
    texts = {kind: first[kind].read_text() for kind in ("dot", "svg")}
    again = write_workflow_pictures(completed_run, tmp_path, basename="instance", use_graphviz=False)
    assert {kind: again[kind].read_text() for kind in ("dot", "svg")} == texts
    assert sorted(path.name for path in tmp_path.iterdir()) == ["instance.dot", "instance.png", "instance.svg"]


def test_without_dot_on_path_the_builtin_renderer_is_used(completed_run, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    paths = write_workflow_pictures(completed_run, tmp_path)  # use_graphviz=None: automatic
    assert len(_svg_nodes(paths["svg"], "step")) == len(SMALL_STEPS)
    assert ET.parse(paths["svg"]).getroot().find(f"{SVG}g[@class='edges']") is not None  # ours, not dot's
    _check_png(paths["png"])

    with pytest.raises(VisualizationError, match="'dot' is not on PATH") as raised:
        write_workflow_pictures(completed_run, tmp_path / "forced", use_graphviz=True)
    assert "\n" not in str(raised.value)


def test_a_failing_dot_falls_back_or_raises_when_required(completed_run, tmp_path, monkeypatch, caplog):
    broken = tmp_path / "bin" / "dot"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: str(broken) if name == "dot" else None)

    paths = write_workflow_pictures(completed_run, tmp_path / "auto")
    assert len(_svg_nodes(paths["svg"], "step")) == len(SMALL_STEPS)
    _check_png(paths["png"])
    assert "built-in renderer instead" in caplog.text
    _no_temporaries(tmp_path / "auto")

    with pytest.raises(VisualizationError, match=r"dot -Tsvg' failed \(exit 3\): Error: syntax error"):
        write_workflow_pictures(completed_run, tmp_path / "forced", use_graphviz=True)
    # the .dot is kept for debugging; no half-written picture is left behind
    assert sorted(path.name for path in (tmp_path / "forced").iterdir()) == ["workflow.dot"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' is not installed")
def test_graphviz_renders_the_same_nodes(failed_run, tmp_path):
    paths = write_workflow_pictures(failed_run, tmp_path, use_graphviz=True)
    _check_png(paths["png"])
    steps = _svg_nodes(paths["svg"], "step")
    assert len(steps) == len(SMALL_STEPS) - 1
    assert all("node" in _classes(element) for element in steps)  # graphviz's own <g>, not ours
    assert {element.get("id") for element in steps} >= {"step-classify_1", "step-map-0-second"}
    assert len(_svg_nodes(paths["svg"], "init")) == 3
    assert len(_svg_nodes(paths["svg"], "pending-stage")) == 1


# -- large workflows ----------------------------------------------------------------------------


def test_a_1000_step_scatter_collapses_into_one_node(tmp_path):
    workflow = validate_workflow(load_workflow(SPECS / "noop_scatter" / "workflow.yml"))
    run = run_workflow(workflow, {"items": list(range(1000))}, tmp_path / "work")
    assert run.status == "completed" and len(run.records()) == 1001

    paths = write_workflow_pictures(run, tmp_path / "pics", use_graphviz=False)
    _check_png(paths["png"])
    [collapsed] = _svg_nodes(paths["svg"], "collapsed")
    assert "scatter (1000 steps: 1000 completed, 0 failed)" in "".join(collapsed.itertext())
    assert collapsed.get("data-state") == COMPLETED
    assert [element.get("data-id") for element in _svg_nodes(paths["svg"], "step")] == ["/gather"]
    assert len(_svg_nodes(paths["svg"], "init")) == 1
    dot_text = paths["dot"].read_text()
    assert _dot_nodes(dot_text, "collapsed") == ["/scatter#collapsed"]
    assert _dot_edges(dot_text) == {("/init", "/scatter#collapsed"), ("/scatter#collapsed", "/gather")}

    # every step can still be drawn; a picture this tall leaves the labels to the SVG
    every = write_workflow_pictures(run, tmp_path / "every", use_graphviz=False, collapse_threshold=None)
    assert len(_svg_nodes(every["svg"], "step")) == 1001
    assert len(_dot_nodes(every["dot"].read_text(), "step")) == 1001
    assert len(_dot_edges(every["dot"].read_text())) == 2000
    _check_png(every["png"], min_height=10000, min_width=50)  # one very tall column, shrunk to fit


def test_a_subworkflow_stage_collapses_with_its_instances(completed_run, tmp_path):
    # classify has 3 steps; map shows 2 x (init + 2 steps) = 6 nodes: both exceed 2
    paths = write_workflow_pictures(completed_run, tmp_path, use_graphviz=False, collapse_threshold=2)
    collapsed = {
        element.get("data-id"): "".join(element.itertext()) for element in _svg_nodes(paths["svg"], "collapsed")
    }
    assert set(collapsed) == {"/classify#collapsed", "/map#collapsed"}
    assert "map (2 instances, 4 steps: 4 completed, 0 failed)" in collapsed["/map#collapsed"]
    assert sorted(element.get("data-id") for element in _svg_nodes(paths["svg"], "step")) == ["/merge", "/prepare"]
    assert _svg_nodes(paths["svg"], "scope-cluster") == []
    assert _dot_edges(paths["dot"].read_text()) == {
        ("/init", "/prepare"),
        ("/prepare", "/classify#collapsed"),
        ("/init", "/map#collapsed"),
        ("/classify#collapsed", "/merge"),
        ("/map#collapsed", "/merge"),
    }


def test_a_collapsed_stage_with_a_failure_is_coloured_failed(failed_run, tmp_path):
    paths = write_workflow_pictures(failed_run, tmp_path, use_graphviz=False, collapse_threshold=2)
    dot_text = paths["dot"].read_text()
    assert _dot_attribute(dot_text, "/classify#collapsed", "fillcolor") == STATE_COLOURS[FAILED]
    assert "classify (3 steps: 2 completed, 1 failed)" in _dot_attribute(dot_text, "/classify#collapsed", "label")


# -- input checking and escaping ----------------------------------------------------------------


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
    assert isinstance(raised.value, (MLToolkitError, ValueError)) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_an_out_dir_that_is_a_file_is_a_workdir_error(completed_run, tmp_path):
    target = tmp_path / "pictures"
    target.write_text("not a folder")
    with pytest.raises(WorkdirError, match="is not a folder"):
        write_workflow_pictures(completed_run, target, use_graphviz=False)
    assert target.read_text() == "not a folder"


def test_dot_strings_are_quoted_and_escaped():
    assert _dot_string('a "b"\nc') == '"a \\"b\\"\\nc"'
    assert _dot_string("back\\slash") == '"back\\\\slash"'
    # a trailing backslash would escape graphviz's closing quote
    assert not _dot_string("ends with \\").endswith('\\"')
