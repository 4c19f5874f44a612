"""Import, once, every heavy module the analysis steps need.

Worker processes import this module before their first step (see
``flows.startup.compute_pool``), so a step's run time is its own work, not
scikit-learn's and matplotlib's import time (about 1.3 s together).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors
import matplotlib.figure
import numpy  # noqa: F401
import sklearn.gaussian_process
import sklearn.gaussian_process.kernels
import sklearn.model_selection
import sklearn.neighbors
import sklearn.preprocessing
import sklearn.svm
import sklearn.tree  # noqa: F401

import mltoolkit.analysis.ml
import mltoolkit.analysis.pipeline
import mltoolkit.analysis.plotting  # noqa: F401

__all__: list[str] = []


def _warm_up_plotting() -> None:
    """Draw a tiny figure once, so fonts and renderer caches are loaded before forking."""
    import io

    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    axes = figure.add_subplot(1, 1, 1)
    grid_x, grid_y = np.meshgrid(np.arange(3.0), np.arange(3.0))
    axes.contourf(grid_x, grid_y, grid_x * grid_y, alpha=0.8)
    axes.scatter([0, 1], [1, 0], c=[0, 1], edgecolors="k")
    axes.set_title("warm-up")
    axes.text(1, 1, ".97", size=15, horizontalalignment="right")
    figure.tight_layout()
    figure.savefig(io.BytesIO(), format="png")


_warm_up_plotting()
