"""CPU-bound classifier workloads for the parallelism and cache benchmarks.

``gradient_boosting_classifiers`` are the issue's workload: equally expensive
``sklearn.ensemble.GradientBoostingClassifier`` entries (native code, sized with
:func:`estimators_for_seconds`) on a larger moons table (:func:`moons_table`).

Given to the flows by import path (``bench._workload.BusyClassifier``, with the
repository on ``PYTHONPATH``), so every runner's workers can import it. Its
``fit`` first burns ``work`` iterations of a pure-Python loop -- a fixed amount
of work, not a fixed time, so running several at once on too few cores shows up
as longer wall time -- and then fits k-nearest-neighbours, so it scores and plots
like any other classifier.
"""

from __future__ import annotations

import time
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier

__all__ = [
    "GRADIENT_BOOSTING",
    "BusyClassifier",
    "burn",
    "busy_classifiers",
    "estimators_for_seconds",
    "gradient_boosting_classifiers",
    "iterations_per_second",
    "moons_table",
]

GRADIENT_BOOSTING = "sklearn.ensemble.GradientBoostingClassifier"


def burn(work: int) -> int:
    """``work`` iterations of integer arithmetic (holds the GIL: threads cannot share it)."""
    total = 0
    for i in range(work):
        total = (total + i * i) % 1_000_003
    return total


def iterations_per_second(sample_seconds: float = 0.5) -> float:
    """How fast :func:`burn` runs on this machine (one core, best of three samples)."""
    rates = []
    for _ in range(3):
        work = 100_000
        while True:
            start = time.perf_counter()
            burn(work)
            elapsed = time.perf_counter() - start
            if elapsed >= sample_seconds / 3:
                break
            work *= 2
        rates.append(work / elapsed)
    return max(rates)


class BusyClassifier(ClassifierMixin, BaseEstimator):
    """k-nearest-neighbours after ``work`` iterations of :func:`burn` in ``fit``."""

    def __init__(self, work: int = 1_000_000, n_neighbors: int = 3) -> None:
        self.work = work
        self.n_neighbors = n_neighbors

    def fit(self, X: Any, y: Any) -> BusyClassifier:
        burn(self.work)
        self.model_ = KNeighborsClassifier(self.n_neighbors).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X: Any) -> Any:
        return self.model_.predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self.model_.predict_proba(X)


def busy_classifiers(count: int, work: int) -> list[dict[str, Any]]:
    """``count`` equally expensive classifier entries for inputs files (unique names)."""
    return [
        {
            "name": f"busy_{index:02d}",
            "estimator": "bench._workload.BusyClassifier",
            "params": {"work": work, "n_neighbors": 3},
        }
        for index in range(count)
    ]


def moons_table(rows: int, seed: int = 0) -> str:
    """``rows`` noisy moons in the seed's text format (``X Y Value`` header, 12-character columns)."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=rows, noise=0.3, random_state=seed)
    lines = [f"{'X':>12}{'Y':>12}{'Value':>12}"]
    lines += [f"{x0:12.6f}{x1:12.6f}{label:12d}" for (x0, x1), label in zip(X, y)]
    return "\n".join(lines) + "\n"


def gradient_boosting_classifiers(count: int, n_estimators: int) -> list[dict[str, Any]]:
    """``count`` identical GradientBoosting entries for inputs files (unique names, same seed: same cost)."""
    return [
        {
            "name": f"boost_{index:02d}",
            "estimator": GRADIENT_BOOSTING,
            "params": {"n_estimators": n_estimators, "random_state": 0},
        }
        for index in range(count)
    ]


def estimators_for_seconds(X: Any, y: Any, seconds: float, probe: int = 100) -> int:
    """How many GradientBoosting estimators make one fit on (X, y) take about ``seconds`` here (best of 2)."""
    from sklearn.ensemble import GradientBoostingClassifier

    elapsed = []
    for _ in range(2):
        start = time.perf_counter()
        GradientBoostingClassifier(n_estimators=probe, random_state=0).fit(X, y)
        elapsed.append(time.perf_counter() - start)
    return max(1, round(probe * seconds / min(elapsed)))
