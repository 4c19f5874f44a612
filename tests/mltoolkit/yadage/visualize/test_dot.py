"""The DOT text: quoting, and (when graphviz is installed) that graphviz reads it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mltoolkit.yadage.visualize.dot import dot_string, dot_text
from mltoolkit.yadage.visualize.graph import build_graph

from .conftest import run_case


def test_dot_strings_are_quoted_and_escaped():
    assert dot_string('a "b"\nc') == '"a \\"b\\"\\nc"'
    assert dot_string("back\\slash") == '"back\\\\slash"'
    # a trailing backslash would escape graphviz's closing quote
    assert not dot_string("ends with \\").endswith('\\"')


def _enclosing_subgraphs(text: str) -> dict[str, list[str]]:
    """DOT node id -> the subgraphs around it, outermost first."""
    stack: list[str] = []
    found: dict[str, list[str]] = {}
    for line in text.splitlines()[1:-1]:  # inside 'digraph ... { ... }'
        stripped = line.strip()
        if stripped.startswith("subgraph "):
            stack.append(stripped.split('"')[1])
        elif stripped == "}":
            stack.pop()
        elif stripped.endswith("];") and stripped.startswith('"'):
            found[stripped.split('"')[1]] = list(stack)
    assert stack == []
    return found


def test_clusters_nest_as_the_scopes_do(tmp_path):
    text = dot_text(build_graph(run_case("nested", tmp_path), None), "nested")
    enclosing = _enclosing_subgraphs(text)
    assert enclosing["/map/1/inner/0/leaf"] == [
        "cluster_stage:/map",
        "cluster_scope:/map/1",
        "cluster_stage:/map/1/inner",
        "cluster_scope:/map/1/inner/0",
        "cluster_stage:/map/1/inner/0/leaf",
    ]
    assert enclosing["/single/0/init"] == ["cluster_stage:/single", "cluster_scope:/single/0"]
    assert enclosing["/init"] == [] and enclosing["/reduce"] == ["cluster_stage:/reduce"]
    # 3 root stages; 3 instances with 2 stages each; 3 inner instances with 1 stage each
    assert text.count("subgraph ") == 3 + 3 * (1 + 2) + 3 * (1 + 1)


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' is not installed (apt-get install graphviz)")
def test_graphviz_reads_the_dot_text(completed_run):
    text = dot_text(build_graph(completed_run, None), "workflow")
    checked = subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""
    assert '"/map/1/second" -> "/merge"' in checked.stdout
