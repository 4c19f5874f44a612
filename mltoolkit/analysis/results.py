"""What the analysis steps hand each other: prepared data and trained classifiers.

Plain data classes, with no behaviour of their own, so that both the analysis
(:mod:`mltoolkit.analysis.ml`) and the figure (:mod:`mltoolkit.analysis.plotting`)
depend on them rather than on each other. They are what the step scripts and the
pipeline pickle, so their fields are a stable format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltoolkit.analysis.classifiers import ClassifierSpec

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ClassifierResult", "PreppedData"]


@dataclass
class PreppedData:
    """Standardised data and its train/test split.

    Attributes:
        X: all rows, standardised (``(n, 2)``).
        y: all labels.
        X_train, X_test, y_train, y_test: the split of ``X``/``y``.
        source: the dataset file the data came from.
        source_sha256: that file's sha256.
    """

    X: np.ndarray
    y: np.ndarray
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    source: str = ""
    source_sha256: str = ""


@dataclass
class ClassifierResult:
    """One trained classifier.

    Attributes:
        name: the classifier's name (registry name or the name given in inputs).
        estimator: the fitted scikit-learn estimator.
        score: accuracy on the test split.
        display_name: title used in the figure.
        spec: what was asked for (name, import path, params).
        surface: decision values over the figure's mesh, if already computed
            (the pipeline computes them in the classification step, so they are
            computed in parallel; the figure computes missing ones).
    """

    name: str
    estimator: Any
    score: float
    display_name: str = ""
    spec: ClassifierSpec | None = field(default=None, repr=False)
    surface: np.ndarray | None = field(default=None, repr=False)
