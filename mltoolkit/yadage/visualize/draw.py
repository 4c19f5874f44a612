"""Draw the picture with matplotlib (Agg, no pyplot): one figure, saved as PNG and as SVG.

Every box is ONE text artist whose frame is its ``bbox`` patch, with the box's
``gid``: matplotlib then writes the box as one ``<g id="step-...">`` group
(shape and label together) in the SVG. Labels stay ``<text>`` in the SVG
(``svg.fonttype: none``), and the SVG carries no date and fixed internal ids, so
the same run gives the same file.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any, cast

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import ArrowStyle, ConnectionStyle, FancyBboxPatch, Rectangle
from matplotlib.path import Path

from mltoolkit.yadage.visualize.graph import WorkflowGraph
from mltoolkit.yadage.visualize.layout import MARGIN, compute_layout
from mltoolkit.yadage.visualize.scopes import Box
from mltoolkit.yadage.visualize.style import CLUSTER_FILL, CLUSTER_STROKE, EDGE_COLOUR, STROKE, fill_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.text import Text

__all__ = ["draw_pictures"]

_FONT = 9.0
_PAD = 0.6  # a box's padding around its label, in font sizes
_BEND = 0.15  # curvature of an arrow along a row that skips columns (bows upwards: the y axis points down)
_ARROW_HEAD = 8.0  # points
_ARROW_WIDTH = 0.8
# Keep the PNG within what image viewers (and Agg) handle comfortably.
_PNG_SCALE = 1.5
_PNG_MAX_SIDE = 12000
_PNG_MAX_PIXELS = 64_000_000
_PNG_MIN_TEXT_PX = 5.0
_TEXT: dict[str, Any] = {"fontfamily": "sans-serif", "clip_on": False}


def _box_artist(axes: Axes, box: Box) -> Text:
    frame = {
        "boxstyle": f"{'ellipse' if box.kind == 'init' else 'round'},pad={_PAD}",
        "facecolor": fill_of(box.kind, box.state),
        "edgecolor": STROKE,
        "linewidth": 1.8 if box.kind == "collapsed" else 0.9,
        "linestyle": (0, (4, 3)) if box.kind == "stage" else "solid",
    }
    weight = "normal" if box.kind == "init" else "bold"
    return axes.text(
        0.0, 0.0, "\n".join(box.lines), ha="center", va="center", multialignment="center",
        fontsize=_FONT, fontweight=weight, bbox=frame, gid=box.svg_id, zorder=4, **_TEXT,
    )  # fmt: skip


def _png_dpi(width: float, height: float) -> float:
    # one layout unit is one point; shrink huge pictures rather than fail in Agg
    return 72.0 * min(_PNG_SCALE, _PNG_MAX_SIDE / max(width, height), math.sqrt(_PNG_MAX_PIXELS / (width * height)))


class _Picture:
    """One matplotlib figure of a graph: one unit of the axes is one point, y grows downwards."""

    def __init__(self, graph: WorkflowGraph) -> None:
        self.graph = graph
        self.figure = Figure(dpi=72.0)  # 72 dpi while laying out: a pixel is a point
        canvas = FigureCanvasAgg(self.figure)
        self.axes = self.figure.add_axes((0.0, 0.0, 1.0, 1.0))
        self.axes.set_axis_off()
        self.artists = {box.key: _box_artist(self.axes, box) for box in graph.boxes()}
        title = self.axes.text(MARGIN, MARGIN + 13, graph.title, fontsize=12, fontweight="bold", va="baseline", **_TEXT)
        renderer = canvas.get_renderer()
        self.sizes = {box.key: self._measure(box, renderer) for box in graph.boxes()}
        self.layout = compute_layout(graph, self.sizes)
        self.width = max(self.layout.width, title.get_window_extent(renderer).width + 2 * MARGIN)
        self.height = self.layout.height
        self.figure.set_size_inches(self.width / 72.0, self.height / 72.0)
        self.axes.set_xlim(0, self.width)
        self.axes.set_ylim(self.height, 0)
        for key, artist in self.artists.items():
            artist.set_position(self.layout.centres[key])
        self._draw_frames()
        self._draw_arrows()

    def _measure(self, box: Box, renderer: RendererBase) -> tuple[float, float]:
        """The drawn size of a box, in points."""
        extent = self.artists[box.key].get_window_extent(renderer)
        width, height = extent.width + 2 * _PAD * _FONT, extent.height + 2 * _PAD * _FONT
        # matplotlib's ellipse box style circumscribes the padded box
        return (width * math.sqrt(2), height * math.sqrt(2)) if box.kind == "init" else (width, height)

    def _draw_frames(self) -> None:
        for cluster in self.graph.top.clusters():
            x0, y0, x1, y1 = self.layout.frames[cluster.key]
            frame = FancyBboxPatch(
                (x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=5",
                facecolor=CLUSTER_FILL[cluster.kind], edgecolor=CLUSTER_STROKE[cluster.kind],
                linewidth=0.8, zorder=1, gid=cluster.svg_id,
            )  # fmt: skip
            self.axes.add_artist(frame)
            # above the arrows, on the frame's colour, so arrows passing by do not strike it through
            plate = {"boxstyle": "square,pad=0.1", "facecolor": CLUSTER_FILL[cluster.kind], "edgecolor": "none"}
            label = self.axes.text(
                x0 + 5, y0 + 11, cluster.label, fontsize=8, color="#333333", va="baseline", bbox=plate, zorder=3.5
            )
            label.set_clip_path(frame)  # a long label stops at its frame's border

    def _draw_arrows(self) -> None:
        # From the right side of the source to the left side of the target, behind the boxes.
        # An arrow along a row that skips columns bows, so it does not run over the arrows between.
        # matplotlib's arrow geometry, applied in the axes' units (points), goes into two collections
        # (lines, heads): hundreds of arrows then cost two artists rather than hundreds.
        columns, head = self.layout.columns, ArrowStyle.CurveFilledB(head_length=0.7, head_width=0.3)  # "-|>"
        lines: list[Path] = []
        heads: list[Path] = []
        for source, target in self.graph.arrows():
            (sx, sy), (tx, ty) = self.layout.centres[source.key], self.layout.centres[target.key]
            start, end = (sx + self.sizes[source.key][0] / 2, sy), (tx - self.sizes[target.key][0] / 2, ty)
            along_a_row = abs(ty - sy) < self.sizes[target.key][1]
            bend = _BEND if along_a_row and columns[target.key] - columns[source.key] > 1 else 0.0
            route = ConnectionStyle.Arc3(rad=bend)(start, end, shrinkA=0.0, shrinkB=0.0)
            # "-|>" gives two paths, the line and the filled head (matplotlib's stubs say one)
            parts = cast("list[Path]", head(route, _ARROW_HEAD, _ARROW_WIDTH)[0])
            lines.append(parts[0])
            heads.append(parts[1])
        style: dict[str, Any] = {"edgecolors": EDGE_COLOUR, "linewidths": _ARROW_WIDTH, "zorder": 3}
        self.axes.add_collection(PathCollection(lines, facecolors="none", **style), autolim=False)
        self.axes.add_collection(PathCollection(heads, facecolors=EDGE_COLOUR, **style), autolim=False)

    def png(self) -> bytes:
        """The picture as PNG, scaled to stay within what viewers handle."""
        dpi = _png_dpi(self.width, self.height)
        if _FONT * dpi / 72.0 >= _PNG_MIN_TEXT_PX:
            return self._save(format="png", dpi=dpi, facecolor="white")
        # Shrunk so far that labels would be under 5 px: nobody could read them, and text is what
        # makes Agg slow (about 1.5 ms a label), so plain boxes stand in for them (the SVG keeps them).
        plain = []
        for box in self.graph.boxes():
            (x, y), (width, height) = self.layout.centres[box.key], self.sizes[box.key]
            plain.append(
                Rectangle((x - width / 2, y - height / 2), width, height, facecolor=fill_of(box.kind, box.state))
            )
        stand_in = PatchCollection(plain, match_original=True, edgecolor=STROKE, linewidth=0.5, zorder=4)
        self.axes.add_collection(stand_in)
        for artist in self.artists.values():
            artist.set_visible(False)
        try:
            return self._save(format="png", dpi=dpi, facecolor="white")
        finally:
            stand_in.remove()
            for artist in self.artists.values():
                artist.set_visible(True)

    def svg(self) -> str:
        """The picture as SVG text: labels as ``<text>``, no date, fixed internal ids (see :func:`draw_pictures`)."""
        return self._save(format="svg", facecolor="white", metadata={"Date": None}).decode("utf-8")

    def _save(self, **options: Any) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, **options)
        return buffer.getvalue()


def draw_pictures(graph: WorkflowGraph) -> tuple[bytes, str]:
    """Lay out and draw ``graph``; return the PNG's bytes and the SVG's text."""
    # Unhinted text is as wide at every resolution, so boxes measured once fit the PNG too. Labels
    # stay <text> in the SVG, and its internal ids come from a fixed salt rather than a random one.
    with matplotlib.rc_context({"text.hinting": "none", "svg.fonttype": "none", "svg.hashsalt": "mltoolkit-workflow"}):
        picture = _Picture(graph)
        return picture.png(), picture.svg()
