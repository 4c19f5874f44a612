"""The seed's side-by-side figure: the input data, then each classifier's decision surface.

Layout and styling follow scikit-learn's classifier comparison, which the seed
used: red/blue points, training points solid and test points translucent, the
surface from ``decision_function`` (or ``predict_proba``) on a 0.02 mesh over the
data range +/- 0.5, and the test score in the lower right corner.

The geometry is the seed's too: ``plt.figure(figsize=(15, 3))`` at 100 dpi for
its six panels, 1500 x 300 pixels, one row. Each panel keeps the seed's 2.5 x 3
inches, so other numbers of classifiers get the same panels, side by side; a
larger rendering is a higher ``dpi`` (:func:`save_figure`), never other shapes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.analysis.results import ClassifierResult, PreppedData
from mltoolkit.workdir.artifacts import atomic_output

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "MARGIN",
    "MESH_STEP",
    "PANEL_SIZE",
    "build_figure",
    "decision_surface",
    "mesh_for",
    "preview_png_base64",
    "save_figure",
]

#: Mesh spacing of the decision surface, as in the seed.
MESH_STEP = 0.02
#: How far the plotted area extends beyond the data, as in the seed.
MARGIN = 0.5
#: One panel's size in inches: the seed's 15 x 3 figure holds six.
PANEL_SIZE = (2.5, 3.0)
#: matplotlib's default resolution, at which the seed saved its figure.
DPI = 100


def mesh_for(X: np.ndarray, step: float = MESH_STEP) -> tuple[np.ndarray, np.ndarray]:
    """The mesh ``(xx, yy)`` covering ``X``'s range plus :data:`MARGIN`."""
    import numpy as np

    x_min, x_max = X[:, 0].min() - MARGIN, X[:, 0].max() + MARGIN
    y_min, y_max = X[:, 1].min() - MARGIN, X[:, 1].max() + MARGIN
    return np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))


def decision_surface(estimator: Any, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """The estimator's decision value (or class-1 probability) at every mesh point."""
    import numpy as np

    points = np.c_[xx.ravel(), yy.ravel()]
    if hasattr(estimator, "decision_function"):
        values = estimator.decision_function(points)
    else:
        values = estimator.predict_proba(points)[:, 1]
    return np.asarray(values).reshape(xx.shape)


def build_figure(prepped: PreppedData, results: Sequence[ClassifierResult]) -> Figure:
    """Build the figure: one panel for the input data, then one per classifier."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    panels = 1 + len(results)
    figure = Figure(figsize=(PANEL_SIZE[0] * panels, PANEL_SIZE[1]), dpi=DPI)
    surface_map = matplotlib.colormaps["RdBu"]
    point_map = ListedColormap(["#FF0000", "#0000FF"])
    xx, yy = mesh_for(prepped.X)

    def scatter_points(axes: Axes) -> None:
        axes.scatter(prepped.X_train[:, 0], prepped.X_train[:, 1], c=prepped.y_train, cmap=point_map, edgecolors="k")
        axes.scatter(
            prepped.X_test[:, 0], prepped.X_test[:, 1], c=prepped.y_test, cmap=point_map, alpha=0.6, edgecolors="k"
        )
        axes.set_xlim(xx.min(), xx.max())
        axes.set_ylim(yy.min(), yy.max())
        axes.set_xticks(())
        axes.set_yticks(())

    axes = figure.add_subplot(1, panels, 1)
    axes.set_title("Input data")
    scatter_points(axes)
    for index, result in enumerate(results, start=2):
        axes = figure.add_subplot(1, panels, index)
        surface = result.surface
        if surface is None or surface.shape != xx.shape:
            surface = decision_surface(result.estimator, xx, yy)
        axes.contourf(xx, yy, surface, cmap=surface_map, alpha=0.8)
        scatter_points(axes)
        axes.set_title(result.display_name or result.name)
        axes.text(
            xx.max() - 0.3, yy.min() + 0.3, f"{result.score:.2f}".lstrip("0"), size=15, horizontalalignment="right"
        )
    figure.tight_layout()
    return figure


def save_figure(
    prepped: PreppedData,
    results: Sequence[ClassifierResult],
    outfile: str | os.PathLike[str],
    dpi: float = DPI,
) -> Path:
    """Build the figure and write it as PNG atomically; return the path.

    ``dpi`` above the seed's 100 renders the same figure larger (200: 3000 x 600 for six panels).
    """
    target = Path(outfile)
    figure = build_figure(prepped, results)
    with atomic_output(target) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return target


def preview_png_base64(path: str | os.PathLike[str], width: int = 900) -> str:
    """A downscaled copy of a PNG, base64-encoded (for embedding in a markdown page)."""
    import base64
    import io

    from PIL import Image

    with Image.open(path) as original:
        preview: Image.Image = original
        if original.width > width:
            height = max(1, round(original.height * width / original.width))
            preview = original.resize((width, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        preview.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
