"""What the analysis steps hand each other: prepared data and trained classifiers.

Plain data classes, with no behaviour of their own, so that both the analysis
(:mod:`mltoolkit.analysis.ml`) and the figure (:mod:`mltoolkit.analysis.plotting`)
depend on them rather than on each other. They are what the step scripts and the
pipeline pickle, so their fields are a stable format.

Beside each pickled :class:`ClassifierResult` ``X.pkl`` the toolkit writes its
*summary* ``X.pkl.summary.json`` (:func:`write_model_summary`): the numbers a later
comparison needs, so that nobody has to unpickle an archived model (a pickle runs
code when loaded)::

    {"classifier": "rbf_svm", "score": 0.975, "n_test": 40,
     "predictions_sha256": "<sha256 of the predictions' compact JSON>", "predictions": [0, 1, ...]}

``predictions`` are on the test split, listed when there are at most
:data:`MAX_LISTED_PREDICTIONS` (the digest is always there; :func:`predictions_sha256`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.analysis.classifiers import ClassifierSpec
from mltoolkit.errors import ArtifactError
from mltoolkit.workdir.artifacts import atomic_write_json, sha256_bytes

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAX_LISTED_PREDICTIONS",
    "SUMMARY_SUFFIX",
    "ClassifierResult",
    "PreppedData",
    "model_summary",
    "predictions_sha256",
    "read_model_summary",
    "summary_path",
    "write_model_summary",
]

#: What a model file's summary adds to its name.
SUMMARY_SUFFIX = ".summary.json"
#: A summary lists the test-split predictions up to this many (their sha256 always).
MAX_LISTED_PREDICTIONS = 10_000


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


def summary_path(model: str | os.PathLike[str]) -> Path:
    """Where the summary of the model file ``model`` lives: ``X.pkl`` -> ``X.pkl.summary.json``."""
    path = Path(model)
    return path.with_name(path.name + SUMMARY_SUFFIX)


def predictions_sha256(predictions: list[Any]) -> str:
    """The sha256 of ``predictions`` as compact JSON (``[0,1,1]``), the way summaries record it."""
    return sha256_bytes(json.dumps(predictions, separators=(",", ":")).encode("utf-8"))


def model_summary(result: ClassifierResult, prepped: PreppedData) -> dict[str, Any]:
    """``result``'s summary: name, score, size of the test split, its predictions there and their sha256."""
    predictions = [
        value if isinstance(value, int | str) else str(value)
        for value in result.estimator.predict(prepped.X_test).tolist()
    ]
    summary: dict[str, Any] = {
        "classifier": result.name,
        "score": result.score,
        "n_test": len(predictions),
        "predictions_sha256": predictions_sha256(predictions),
    }
    if len(predictions) <= MAX_LISTED_PREDICTIONS:
        summary["predictions"] = predictions
    return summary


def write_model_summary(model: str | os.PathLike[str], result: ClassifierResult, prepped: PreppedData) -> Path:
    """Write the summary of ``result`` (pickled at ``model``) beside it, atomically; return its path."""
    path = summary_path(model)
    atomic_write_json(path, model_summary(result, prepped))
    return path


def read_model_summary(model: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The summary beside the model file ``model`` (never the pickle itself), ``None`` when there is none.

    Raises:
        ArtifactError: the summary is not a JSON object with a score.
    """
    path = summary_path(model)
    fix = f"re-run the step that wrote {model}"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: unreadable model summary ({error}); {fix}") from None
    if not isinstance(value, dict) or not isinstance(value.get("score"), int | float):
        raise ArtifactError(
            f"{path}: expected a JSON object with a numeric 'score'; re-run the step that wrote {model}"
        )
    return value
