"""Pickles are compared without loading them: models by their summaries, others opcode by opcode.

A booby-trapped pickle (one that runs a command when loaded) proves it: its
canary file appears only with ``trust_archive``.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from mltoolkit.preservation.comparison import OutputSet, Verdict, compare_file
from mltoolkit.preservation.models import compare_models
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.pickles import compare_pickles
from tests.mltoolkit.preservation.runs import sha256


class _Trap:
    """Unpickling this creates the canary file: what an attacker's pickle would do, harmlessly."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (os.system, (f"touch '{self.canary}'",))


@dataclass
class _Prepped:
    source: str
    values: list[float]


def _summary(score, predictions, name="nearest_neighbours"):
    return {
        "classifier": name,
        "score": score,
        "n_test": len(predictions),
        "predictions": predictions,
        "predictions_sha256": sha256(json.dumps(predictions, separators=(",", ":")).encode()),
    }


def _model(folder: Path, data: bytes, summary: dict | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nearest_neighbours.pkl"
    path.write_bytes(data)
    if summary is not None:
        (folder / "nearest_neighbours.pkl.summary.json").write_text(json.dumps(summary))
    return path


def test_same_score_and_predictions_are_within_tolerance(tmp_path):
    old = _model(tmp_path / "a", b"pickle-1", _summary(0.975, [0, 1, 1]))
    new = _model(tmp_path / "b", b"pickle-2", _summary(0.975, [0, 1, 1]))
    result = compare_models(old, new, Tolerance())
    assert result.reproduced
    assert result.detail == "pickle bytes differ; score equal, predictions equal"


def test_a_changed_score_is_named(tmp_path):
    old = _model(tmp_path / "a", b"pickle-1", _summary(0.975, [0, 1, 1, 0]))
    new = _model(tmp_path / "b", b"pickle-2", _summary(0.9, [0, 1, 0, 0]))
    result = compare_models(old, new, Tolerance())
    assert not result.reproduced
    assert result.detail == "nearest_neighbours 0.975 -> 0.90; 1 of 4 test predictions changed"
    assert (result.archived, result.now) == ("score 0.975", "score 0.90")


def test_same_score_other_predictions_differs(tmp_path):
    old = _model(tmp_path / "a", b"1", _summary(0.5, [0, 1]))
    new = _model(tmp_path / "b", b"2", _summary(0.5, [1, 0]))
    assert not compare_models(old, new, Tolerance()).reproduced


def test_booby_trapped_pickle_never_runs_without_trust(tmp_path):
    canary = tmp_path / "canary"
    trap = pickle.dumps(_Trap(canary))
    archived = OutputSet(tmp_path / "a", {"m/nearest_neighbours.pkl": sha256(trap)})
    _model(tmp_path / "a" / "m", trap, _summary(0.975, [0, 1]))
    honest = pickle.dumps({"score": 0.975})
    now = OutputSet(tmp_path / "b", {"m/nearest_neighbours.pkl": sha256(honest)})
    _model(tmp_path / "b" / "m", honest, _summary(0.975, [0, 1]))
    row = compare_file("m/nearest_neighbours.pkl", archived, now, Tolerance())
    assert row.verdict is Verdict.WITHIN_TOLERANCE  # by the summaries; the pickle was never loaded
    assert not canary.exists()
    (tmp_path / "a" / "m" / "nearest_neighbours.pkl.summary.json").unlink()  # no summary: read as opcodes only
    row = compare_file("m/nearest_neighbours.pkl", archived, now, Tolerance())
    assert row.verdict is Verdict.DIFFERS and "--trust-archive" in row.detail
    assert not canary.exists()
    compare_file("m/nearest_neighbours.pkl", archived, now, Tolerance(), trust_archive=True)
    assert canary.exists()  # with --trust-archive the archive's pickle is loaded, and runs


def test_trusted_models_are_loaded_and_scored(tmp_path):
    old = _model(tmp_path / "a", pickle.dumps(_Prepped("/a/moon.txt", [1.0])), None)
    new = _model(tmp_path / "b", pickle.dumps(_Prepped("/a/moon.txt", [1.5])), None)
    result = compare_models(old, new, Tolerance(), trust_archive=True)
    assert not result.reproduced and "values.0 1.00 -> 1.50" in result.detail


def test_pickles_differing_only_in_a_recorded_path_are_within_tolerance():
    old = pickle.dumps(_Prepped("/home/a/data/moon.txt", [0.25, 0.5]))
    moved = pickle.dumps(_Prepped("/tmp/elsewhere/_mltoolkit/submitted/data/moon.txt", [0.25, 0.5]))
    result = compare_pickles(old, moved, Tolerance())
    assert result.within_tolerance
    assert "only recorded file paths differ" in result.describe()


@pytest.mark.parametrize(
    ("new", "fragment"),
    [
        (_Prepped("/home/a/data/other.txt", [0.25, 0.5]), "text '/home/a/data/moon.txt'"),
        (_Prepped("/home/a/data/moon.txt", [0.25, 0.75]), "1 number(s) beyond tolerance, e.g. 0.50 -> 0.75"),
        (_Prepped("/home/a/data/moon.txt", [0.25]), "different structure"),
    ],
    ids=["another-file", "a-number", "structure"],
)
def test_other_pickle_differences_are_not_within_tolerance(new, fragment):
    result = compare_pickles(
        pickle.dumps(_Prepped("/home/a/data/moon.txt", [0.25, 0.5])), pickle.dumps(new), Tolerance()
    )
    assert not result.within_tolerance
    assert fragment in result.describe()
