"""The graphviz path: used when 'dot' is on PATH, with a bounded time; matplotlib when it is not or fails."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from mltoolkit.yadage.planner import COMPLETED, FAILED
from mltoolkit.yadage.visualize import STATE_COLOURS, VisualizationError, write_workflow_pictures

from .conftest import SMALL_STEPS, SVG, check_png, dot_edges, no_temporaries, svg_fill, svg_nodes


def _fake_dot(tmp_path, monkeypatch, script: str) -> None:
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: str(fake) if name == "dot" else None)


def _drawn_by_matplotlib(svg) -> bool:
    root = ET.parse(svg).getroot()
    return root.find(f"{SVG}g[@id='figure_1']") is not None and root.find(f"{SVG}g[@class='graph']") is None


def test_without_dot_on_path_matplotlib_draws(completed_run, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    paths = write_workflow_pictures(completed_run, tmp_path)  # use_graphviz=None: automatic
    assert _drawn_by_matplotlib(paths["svg"])
    assert len(svg_nodes(paths["svg"], "step")) == len(SMALL_STEPS)
    check_png(paths["png"])

    with pytest.raises(VisualizationError, match="'dot' is not on PATH; install graphviz") as raised:
        write_workflow_pictures(completed_run, tmp_path / "forced", use_graphviz=True)
    assert "\n" not in str(raised.value)


def test_a_failing_dot_falls_back_or_raises_when_required(completed_run, tmp_path, monkeypatch, caplog):
    _fake_dot(tmp_path, monkeypatch, "echo 'Error: syntax error in line 1' >&2\nexit 3")

    paths = write_workflow_pictures(completed_run, tmp_path / "auto")
    assert _drawn_by_matplotlib(paths["svg"])
    assert len(svg_nodes(paths["svg"], "step")) == len(SMALL_STEPS)
    check_png(paths["png"])
    assert "drawing with matplotlib instead" in caplog.text
    no_temporaries(tmp_path / "auto")

    with pytest.raises(VisualizationError, match=r"dot -Tsvg' failed \(exit 3\): Error: syntax error") as raised:
        write_workflow_pictures(completed_run, tmp_path / "forced", use_graphviz=True)
    assert "\n" not in str(raised.value)
    # the .dot is kept for debugging; no half-written picture is left behind
    assert sorted(path.name for path in (tmp_path / "forced").iterdir()) == ["workflow.dot"]


def test_a_dot_that_hangs_is_stopped_after_the_timeout(completed_run, tmp_path, monkeypatch, caplog):
    _fake_dot(tmp_path, monkeypatch, "exec sleep 60")

    with pytest.raises(VisualizationError, match=r"'dot' took longer than 0.5 s for 12 nodes; raise graphviz_timeout"):
        write_workflow_pictures(completed_run, tmp_path / "forced", use_graphviz=True, graphviz_timeout=0.5)
    assert sorted(path.name for path in (tmp_path / "forced").iterdir()) == ["workflow.dot"]

    paths = write_workflow_pictures(completed_run, tmp_path / "auto", graphviz_timeout=0.5)
    assert _drawn_by_matplotlib(paths["svg"]) and "took longer than" in caplog.text


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' is not installed (apt-get install graphviz)")
def test_graphviz_draws_the_same_nodes_and_edges(failed_run, tmp_path):
    paths = write_workflow_pictures(failed_run, tmp_path, use_graphviz=True)
    assert not _drawn_by_matplotlib(paths["svg"])
    check_png(paths["png"])
    steps = svg_nodes(paths["svg"], "step")
    assert sorted(element.get("data-id") for element in steps) == sorted(SMALL_STEPS - {"/merge"})
    assert {element.get("id") for element in steps} >= {"step-classify_1", "step-map-0-second"}
    fills = {element.get("data-id"): svg_fill(element) for element in steps}
    assert fills["/classify_1"] == STATE_COLOURS[FAILED] and fills["/classify_0"] == STATE_COLOURS[COMPLETED]
    assert len(svg_nodes(paths["svg"], "init")) == 3
    assert [element.get("id") for element in svg_nodes(paths["svg"], "pending-stage")] == ["pending-stage-merge"]
    assert len(svg_nodes(paths["svg"], "scope-cluster")) == 2
    # graphviz draws one group per edge of the DOT text
    assert len(svg_nodes(paths["svg"], "edge")) == len(dot_edges(paths["dot"].read_text()))
