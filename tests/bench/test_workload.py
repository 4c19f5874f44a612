"""The benchmarks' classifier workloads: a moons table the toolkit reads, valid classifier entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from bench._workload import GRADIENT_BOOSTING, estimators_for_seconds, gradient_boosting_classifiers, moons_table
from mltoolkit.analysis.classifiers import build_estimator
from mltoolkit.analysis.data import load_table
from mltoolkit.analysis.inputs import parse_inputs


@pytest.mark.parametrize("rows", [100, 800])
def test_moons_table_reads_back_as_the_seed_format(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "moons.txt"
    path.write_text(moons_table(rows))
    X, y = load_table(path)
    assert X.shape == (rows, 2)
    assert set(np.unique(y)) == {0, 1}
    assert path.read_text().splitlines()[0].split() == ["X", "Y", "Value"]


def test_moons_table_is_deterministic() -> None:
    assert moons_table(50, seed=3) == moons_table(50, seed=3) != moons_table(50, seed=4)


def test_gradient_boosting_entries_are_equal_and_buildable(tmp_path: Path) -> None:
    entries = gradient_boosting_classifiers(3, n_estimators=7)
    inputs = parse_inputs({"dataset": str(tmp_path / "d.txt"), "classifiers": entries})
    names = [spec.name for spec in inputs.classifiers]
    assert len(set(names)) == 3
    estimators = [build_estimator(spec) for spec in inputs.classifiers]
    assert all(isinstance(estimator, GradientBoostingClassifier) for estimator in estimators)
    assert {estimator.n_estimators for estimator in estimators} == {7}
    assert GRADIENT_BOOSTING == "sklearn.ensemble.GradientBoostingClassifier"


def test_estimators_scale_with_the_time_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "moons.txt"
    path.write_text(moons_table(200))
    X, y = load_table(path)
    short = estimators_for_seconds(X, y, 0.05, probe=20)
    long = estimators_for_seconds(X, y, 0.5, probe=20)
    assert short >= 1
    assert long > short
