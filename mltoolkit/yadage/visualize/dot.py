"""The picture as graphviz DOT text, and graphviz's own rendering of it when ``dot`` is installed.

The DOT text is always written (``workflow.dot``): it is the picture in a form
other tools can read, whichever renderer drew the SVG and PNG. Stages and
subworkflow instances are nested ``cluster`` subgraphs; every id is quoted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mltoolkit.errors import VisualizationError
from mltoolkit.yadage.visualize.graph import WorkflowGraph
from mltoolkit.yadage.visualize.scopes import Box, Cluster
from mltoolkit.yadage.visualize.style import CLUSTER_FILL, CLUSTER_STROKE, EDGE_COLOUR, KIND_CLASS, STROKE, fill_of

__all__ = ["dot_string", "dot_text", "render_with_graphviz"]

_GRAPH = {
    "rankdir": "LR",
    "compound": "true",
    "fontname": "Helvetica",
    "fontsize": "13",
    "labelloc": "t",
    "labeljust": "l",
    "nodesep": "0.15",
    "ranksep": "0.45",
}
_NODE = {"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10", "color": STROKE}
_EDGE = {"color": EDGE_COLOUR, "arrowsize": "0.6"}
_SHAPE_OF_KIND = {
    "init": {"shape": "ellipse", "style": "filled"},
    "stage": {"style": "rounded,dashed,filled"},
    "collapsed": {"penwidth": "2"},
}


def dot_string(text: str) -> str:
    """``text`` as a quoted DOT string (ids and attribute values alike)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
    # graphviz's lexer reads a final '\\"' as an escaped quote: keep a backslash off the end
    if quoted.endswith("\\"):
        quoted += " "
    return f'"{quoted}"'


def _attributes(attributes: dict[str, str]) -> str:
    return ", ".join(f"{name}={dot_string(value)}" for name, value in attributes.items())


def _node_line(box: Box, indent: str) -> str:
    attributes = {
        "label": "\n".join(box.lines),
        "fillcolor": fill_of(box.kind, box.state),
        "id": box.svg_id,
        "class": KIND_CLASS[box.kind],
        "tooltip": box.tooltip,
        **_SHAPE_OF_KIND.get(box.kind, {}),
    }
    return f"{indent}{dot_string(box.key)} [{_attributes(attributes)}];"


def _cluster_lines(cluster: Cluster, indent: str) -> list[str]:
    lines: list[str] = []
    for child in cluster.children:
        if isinstance(child, Box):
            lines.append(_node_line(child, indent))
            continue
        frame = {
            "label": child.label,
            "id": child.svg_id,
            "class": f"{child.kind}-cluster",
            "style": "rounded,filled",
            "fillcolor": CLUSTER_FILL[child.kind],
            "color": CLUSTER_STROKE[child.kind],
            "fontsize": "10",
            "labeljust": "l",
        }
        lines.append(f"{indent}subgraph {dot_string(child.key)} {{")
        lines.append(f"{indent}  graph [{_attributes(frame)}];")
        lines.extend(_cluster_lines(child, indent + "  "))
        lines.append(f"{indent}}}")
    return lines


def dot_text(graph: WorkflowGraph, name: str) -> str:
    """The picture as DOT: nodes in nested ``cluster`` subgraphs, then every edge."""
    lines = [
        f"digraph {dot_string(name)} {{",
        f"  graph [{_attributes({**_GRAPH, 'label': graph.title})}];",
        f"  node [{_attributes(_NODE)}];",
        f"  edge [{_attributes(_EDGE)}];",
        *_cluster_lines(graph.top, "  "),
        *(f"  {dot_string(source)} -> {dot_string(target)};" for source, target in graph.digraph.edges),
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_with_graphviz(dot: str, dot_path: Path, kind: str, timeout: float, nodes: int) -> bytes:
    """``dot -T<kind>`` of the DOT file ``dot_path``: the rendered picture's bytes.

    Raises:
        VisualizationError: ``dot`` cannot run, takes longer than ``timeout`` seconds, or fails.
    """
    try:
        finished = subprocess.run(
            [dot, f"-T{kind}", str(dot_path)],
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
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
        message = finished.stderr.decode("utf-8", "replace")
        detail = next((line.strip() for line in message.splitlines() if line.strip()), "no message")
        raise VisualizationError(
            f"{dot_path}: graphviz 'dot -T{kind}' failed (exit {finished.returncode}): {detail}; "
            "pass use_graphviz=False to draw with matplotlib"
        )
    return finished.stdout
