"""The seed's analysis as plain functions: prepare data, train one classifier, plot all.

These are the units the Prefect flow wraps as tasks; they can be called
directly (in a notebook, a test, a script) without Prefect::

    from mltoolkit import data_prep, classify, merge_and_plot
    prepped = data_prep("data/moon.txt")
    results = [classify(prepped, name) for name in ["rbf_svm", "decision_tree"]]
    merge_and_plot(prepped, results, "ml_results.png")

The data classes they exchange live in :mod:`mltoolkit.analysis.results` (and
are re-exported here); the figure in :mod:`mltoolkit.analysis.plotting`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mltoolkit.analysis.classifiers import ClassifierSpec, build_estimator, parse_classifier
from mltoolkit.analysis.data import load_table, resolve_dataset, sha256_of
from mltoolkit.analysis.plotting import save_figure
from mltoolkit.analysis.results import ClassifierResult, PreppedData
from mltoolkit.errors import ClassifierConfigError

__all__ = [
    "RANDOM_STATE",
    "TEST_SIZE",
    "ClassifierResult",
    "PreppedData",
    "classify",
    "data_prep",
    "merge_and_plot",
    "scores_of",
]

#: Share of rows held out for scoring, as in the seed.
TEST_SIZE = 0.4
#: Seed of the train/test split, as in the seed.
RANDOM_STATE = 42


def data_prep(
    dataset: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    sha256: str | None = None,
) -> PreppedData:
    """Load a dataset, standardise it and split it (``test_size=0.4, random_state=42``).

    Args:
        dataset: path, ``file://`` or ``http(s)://`` URL, or a known dataset URL
            (see :func:`mltoolkit.analysis.data.resolve_dataset`).
        base_dir: folder relative paths resolve against.
        sha256: expected sha256 of the dataset file.

    Raises:
        DatasetError: (and subclasses) for missing, unreachable or malformed data.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    path = resolve_dataset(dataset, base_dir=base_dir, sha256=sha256)
    features, labels = load_table(path)
    standardised = StandardScaler().fit_transform(features)
    X_train, X_test, y_train, y_test = train_test_split(
        standardised, labels, test_size=TEST_SIZE, random_state=RANDOM_STATE
    )
    return PreppedData(
        X=standardised,
        y=labels,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        source=str(path),
        source_sha256=sha256_of(path),
    )


def classify(
    prepped: PreppedData,
    classifier: str | ClassifierSpec | Mapping[str, Any],
) -> ClassifierResult:
    """Fit one classifier on the training split and score it on the test split.

    Args:
        prepped: output of :func:`data_prep`.
        classifier: a registered name or display name (``"rbf_svm"``,
            ``"RBF SVM"``), a :class:`ClassifierSpec`, or a mapping
            ``{name, estimator, params}``.

    Raises:
        UnknownClassifierError: unknown name (lists the known ones).
        ClassifierConfigError: bad import path or parameters.
    """
    spec = parse_classifier(classifier)
    estimator = build_estimator(spec)
    try:
        estimator.fit(prepped.X_train, prepped.y_train)
    except ValueError as error:
        # scikit-learn checks hyperparameter values only when fitting: bad input, not a
        # bug (its InvalidParameterError lives in a private module, hence the name)
        if type(error).__name__ != "InvalidParameterError":
            raise
        raise ClassifierConfigError(f"{error}; fix the params of classifier {spec.name!r}") from None
    score = float(estimator.score(prepped.X_test, prepped.y_test))
    return ClassifierResult(
        name=spec.name,
        estimator=estimator,
        score=score,
        display_name=spec.display_name,
        spec=spec,
    )


def scores_of(results: Sequence[ClassifierResult]) -> dict[str, float]:
    """``{name: test score}`` in the results' order."""
    return {result.name: result.score for result in results}


def merge_and_plot(
    prepped: PreppedData,
    results: Sequence[ClassifierResult],
    outfile: str | os.PathLike[str],
) -> Path:
    """Draw the seed's figure (input data, then one decision surface per classifier).

    The PNG is written atomically. Returns the path written.
    """
    return save_figure(prepped, results, outfile)
