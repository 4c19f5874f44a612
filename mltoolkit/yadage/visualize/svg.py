"""Make both renderers' SVGs describe themselves the same way.

matplotlib writes an artist's ``gid`` as a bare ``<g id="...">``; graphviz adds
its own class tokens (``node``, ``cluster``) and HTML-escapes ``-``. After this
pass every box is ``<g id="step-classify_2" class="node step" data-id="/classify_2"
data-state="COMPLETED">`` and every frame ``<g id="..." class="cluster stage-cluster">``,
whichever renderer drew the picture, so links, scripts and tests find them.
"""

from __future__ import annotations

import html
import re
from xml.sax.saxutils import escape, quoteattr

from mltoolkit.yadage.visualize.graph import WorkflowGraph
from mltoolkit.yadage.visualize.style import KIND_CLASS

__all__ = ["annotate_svg"]

_GROUP = re.compile(r'<g id="([^"]*)"(?: class="([^"]*)")?>')


def _described(graph: WorkflowGraph) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """svg id -> (class tokens, data attributes, tooltip)."""
    found: dict[str, tuple[list[str], dict[str, str], str]] = {}
    for box in graph.boxes():
        data = {"data-id": box.key, **({"data-state": box.state} if box.state else {})}
        found[box.svg_id] = (["node", KIND_CLASS[box.kind]], data, box.tooltip)
    for cluster in graph.top.clusters():
        found[cluster.svg_id] = (["cluster", f"{cluster.kind}-cluster"], {}, cluster.label)
    return found


def annotate_svg(svg: str, graph: WorkflowGraph, *, add_titles: bool) -> str:
    """``svg`` with class and ``data-`` attributes on the group of every box and frame of ``graph``.

    ``add_titles`` also gives each such group a ``<title>`` (its tooltip), which
    graphviz writes itself but matplotlib does not.
    """
    described = _described(graph)

    def rewrite(match: re.Match[str]) -> str:
        svg_id = html.unescape(match.group(1))
        if svg_id not in described:
            return match.group(0)
        tokens, data, tooltip = described[svg_id]
        present = html.unescape(match.group(2) or "").split()
        classes = " ".join(present + [token for token in tokens if token not in present])
        attributes = "".join(f" {name}={quoteattr(value)}" for name, value in data.items())
        title = f"<title>{escape(tooltip)}</title>" if add_titles else ""
        return f"<g id={quoteattr(svg_id)} class={quoteattr(classes)}{attributes}>{title}"

    return _GROUP.sub(rewrite, svg)
