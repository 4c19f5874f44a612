"""How the picture looks, shared by the DOT text and the matplotlib drawing: colours and names.

Light on purpose (no networkx, no matplotlib): the package's root imports it for
:data:`STATE_COLOURS`, and ``import mltoolkit.yadage`` must stay cheap.
"""

from __future__ import annotations

import re

from mltoolkit.yadage.planner import CACHED, COMPLETED, FAILED, PENDING, RUNNING

__all__ = [
    "CLUSTER_FILL",
    "CLUSTER_STROKE",
    "DEFAULT_COLLAPSE_THRESHOLD",
    "EDGE_COLOUR",
    "KIND_CLASS",
    "STATE_COLOURS",
    "STROKE",
    "IdNamer",
    "fill_of",
]

#: Stages with more visible nodes than this are drawn as one node.
DEFAULT_COLLAPSE_THRESHOLD = 50

#: Fill colour of a node by state (shared by the DOT, SVG and PNG outputs).
STATE_COLOURS: dict[str, str] = {
    COMPLETED: "#b7e1a1",
    CACHED: "#a6cee3",
    FAILED: "#f4a3a3",
    RUNNING: "#fdc980",
    PENDING: "#e2e2e2",
}
_PLAIN_FILL = "#ffffff"  # init nodes and stages without steps carry no state
_UNKNOWN_FILL = "#f0f0f0"
STROKE = "#4d4d4d"
EDGE_COLOUR = "#6b6b6b"
CLUSTER_STROKE = {"stage": "#9a9a9a", "scope": "#5b7fa6"}
CLUSTER_FILL = {"stage": "#fafafa", "scope": "#f1f5fa"}

#: Node kind -> the class token (and id prefix) it has in both SVGs.
KIND_CLASS = {"step": "step", "init": "init", "collapsed": "collapsed", "stage": "pending-stage"}


def fill_of(kind: str, state: str) -> str:
    """The fill colour of a node of ``kind`` (see :data:`KIND_CLASS`) in ``state``."""
    if kind in ("init", "stage"):
        return _PLAIN_FILL
    return STATE_COLOURS.get(state, _UNKNOWN_FILL)


class IdNamer:
    """Readable, unique, XML-safe SVG ids such as ``step-map-0-first``.

    The same in both renderers, so links into a picture survive a switch of renderer.
    """

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __call__(self, prefix: str, key: str) -> str:
        base = prefix + (re.sub(r"[^A-Za-z0-9_.-]+", "-", key).strip("-") or "root")
        candidate, number = base, 1
        while candidate in self._used:
            number += 1
            candidate = f"{base}-{number}"
        self._used.add(candidate)
        return candidate
