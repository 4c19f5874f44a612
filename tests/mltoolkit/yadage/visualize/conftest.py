"""Runs to draw and readers for the pictures (pure: no Prefect, no network)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.yadage.planner import FAILED, WorkflowRun
from mltoolkit.yadage.runner import run_workflow

from ..conftest import case_inputs, load_case

SVG = "{http://www.w3.org/2000/svg}"
#: every step of tests/specs/visualize_small
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


def run_case(case: str, workdir: Path, **overrides: Any) -> WorkflowRun:
    """Run ``tests/specs/<case>`` to the end in ``workdir`` (``overrides`` replace init values)."""
    return run_workflow(load_case(case), {**case_inputs(case), **overrides}, workdir)


@pytest.fixture(scope="package")
def completed_run(tmp_path_factory) -> WorkflowRun:
    """visualize_small, every step completed."""
    run = run_case("visualize_small", tmp_path_factory.mktemp("completed"))
    assert run.status == "completed", run.problems()
    return run


@pytest.fixture(scope="package")
def failed_run(tmp_path_factory) -> WorkflowRun:
    """visualize_small with the item 'bad': classify_1 fails, so merge is never applied."""
    run = run_case("visualize_small", tmp_path_factory.mktemp("failed"), items=["a", "bad", "c"])
    assert run.status == "failed" and run.record("/classify_1").state == FAILED
    return run


@pytest.fixture(scope="package")
def scatter_1000(tmp_path_factory) -> WorkflowRun:
    """noop_scatter over 1,000 items, then one gather step."""
    run = run_workflow(load_case("noop_scatter"), {"items": list(range(1000))}, tmp_path_factory.mktemp("scatter"))
    assert run.status == "completed" and len(run.records()) == 1001
    return run


def svg_nodes(svg: Path, kind: str) -> list[ET.Element]:
    """The ``<g>`` groups of class ``kind`` (``step``, ``init``, ``stage-cluster``...), in file order."""
    root = ET.parse(svg).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return [element for element in root.iter(f"{SVG}g") if kind in element.get("class", "").split()]


def svg_labels(element: ET.Element) -> str:
    """The visible text of a group (its ``<text>`` lines, not its ``<title>``), joined by spaces."""
    return " ".join((text.text or "").strip() for text in element.iter(f"{SVG}text"))


def svg_fill(element: ET.Element) -> str:
    """The fill colour of a box's shape, as matplotlib (style) or graphviz (attribute) writes it."""
    for shape in element.iter():
        if shape.tag in (f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse") and shape is not element:
            style = dict(part.split(":", 1) for part in shape.get("style", "").replace(" ", "").split(";") if part)
            fill = style.get("fill") or shape.get("fill")
            if fill and fill != "none":
                return fill
    raise AssertionError(f"no filled shape in {element.get('id')}")


_DOT_ID = r'"((?:[^"\\]|\\.)*)"'


def dot_nodes(dot_text: str, kind: str) -> list[str]:
    """Ids of the DOT nodes of class ``kind``."""
    return re.findall(rf'^\s*{_DOT_ID} \[.*\bclass="{kind}"', dot_text, re.MULTILINE)


def dot_edges(dot_text: str) -> set[tuple[str, str]]:
    """Every ``"a" -> "b";`` of the DOT text."""
    return set(re.findall(rf"^\s*{_DOT_ID} -> {_DOT_ID};$", dot_text, re.MULTILINE))


def dot_attribute(dot_text: str, node: str, name: str) -> str:
    """The value of attribute ``name`` of DOT node ``node``."""
    line = next(line for line in dot_text.splitlines() if line.strip().startswith(f'"{node}" ['))
    match = re.search(rf'\b{name}="((?:[^"\\]|\\.)*)"', line)
    assert match, (node, name, line)
    return match.group(1)


def check_png(path: Path, *, min_size: tuple[int, int] = (200, 100), max_side: int = 12000) -> tuple[int, int]:
    """``path`` is a PNG Pillow decodes, of a sane size, not blank; return its size."""
    from PIL import Image, ImageStat

    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width >= min_size[0] and height >= min_size[1], image.size
        assert max(width, height) <= max_side, image.size
        assert max(ImageStat.Stat(image.convert("L")).stddev) > 1.0  # not a blank canvas
    return width, height


def no_temporaries(folder: Path) -> None:
    """No half-written file (``.name.tmp``) is left in ``folder``."""
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".")) == []
