"""Classifiers that misbehave on purpose, for the native flow's trust tests.

They are given to the flow by import path (``tests.slow_classifiers.SlowClassifier``),
so the warm worker processes must import this module: it lives in ``tests/`` and the
tests' CLI environment puts the repository on ``PYTHONPATH``, which the workers
inherit. Each wraps a k-nearest-neighbours model, so a run that gets past the
misbehaviour still scores and plots like any other classifier.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier

__all__ = ["FlakyClassifier", "GatedClassifier", "SlowClassifier"]


class _Wrapped(ClassifierMixin, BaseEstimator):
    """Delegates to a fitted KNeighborsClassifier(3); subclasses add the misbehaviour in ``_before_fit``."""

    def _before_fit(self) -> None:  # pragma: no cover - overridden
        pass

    def fit(self, X, y):
        self._before_fit()
        self.model_ = KNeighborsClassifier(3).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


class SlowClassifier(_Wrapped):
    """``fit`` hangs for ``seconds``, after starting a ``sleep child_seconds`` child process.

    The child is what makes a timeout test meaningful: killing only the worker
    would leave it running, killing the worker's process group does not.
    """

    def __init__(self, seconds: float = 600.0, child_seconds: int = 0) -> None:
        self.seconds = seconds
        self.child_seconds = child_seconds

    def _before_fit(self) -> None:
        if self.child_seconds:
            subprocess.Popen(["sleep", str(self.child_seconds)])
        time.sleep(self.seconds)


class FlakyClassifier(_Wrapped):
    """``fit`` fails the first time (creating ``marker``), succeeds once ``marker`` exists."""

    def __init__(self, marker: str = "") -> None:
        self.marker = marker

    def _before_fit(self) -> None:
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text(f"first attempt by pid {os.getpid()}\n")
            raise RuntimeError(f"flaky on purpose: first attempt (created {marker})")


class GatedClassifier(_Wrapped):
    """``fit`` waits until ``gate`` exists (at most ``limit`` seconds), announcing it via ``waiting``.

    Lets a test hold a run in the middle of a step for as long as it needs,
    without guessing durations.
    """

    def __init__(self, gate: str = "", waiting: str = "", limit: float = 120.0) -> None:
        self.gate = gate
        self.waiting = waiting
        self.limit = limit

    def _before_fit(self) -> None:
        if self.waiting:
            Path(self.waiting).write_text(str(os.getpid()))
        deadline = time.monotonic() + self.limit
        while not Path(self.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
