"""Model summaries: the numbers a comparison needs beside each pickled classifier, read without unpickling."""

from __future__ import annotations

import json

import pytest

from mltoolkit import classify, data_prep
from mltoolkit.analysis import results
from mltoolkit.analysis.results import (
    model_summary,
    predictions_sha256,
    read_model_summary,
    summary_path,
    write_model_summary,
)
from mltoolkit.errors import ArtifactError
from tests.constants import MOON


@pytest.fixture(scope="module")
def trained():
    prepped = data_prep(MOON)
    return prepped, classify(prepped, "decision_tree")


def test_a_summary_holds_the_score_and_the_test_split_predictions(tmp_path, trained):
    prepped, result = trained
    model = tmp_path / "decision_tree.pkl"

    path = write_model_summary(model, result, prepped)

    assert path == summary_path(model) == tmp_path / "decision_tree.pkl.summary.json"
    summary = json.loads(path.read_text())
    assert summary == read_model_summary(model)
    expected = result.estimator.predict(prepped.X_test).tolist()
    assert summary["classifier"] == "decision_tree" and summary["score"] == result.score
    assert summary["n_test"] == len(prepped.y_test) == len(summary["predictions"])
    assert summary["predictions"] == expected and all(type(value) is int for value in expected)
    assert summary["predictions_sha256"] == predictions_sha256(expected)


def test_the_predictions_digest_is_that_of_their_compact_json():
    import hashlib

    assert predictions_sha256([0, 1, "b"]) == hashlib.sha256(b'[0,1,"b"]').hexdigest()
    assert predictions_sha256([0, 1]) != predictions_sha256([1, 0])


def test_many_predictions_are_kept_as_their_digest_only(trained, monkeypatch):
    prepped, result = trained
    monkeypatch.setattr(results, "MAX_LISTED_PREDICTIONS", 3)

    summary = model_summary(result, prepped)

    assert "predictions" not in summary and summary["n_test"] == len(prepped.y_test)


def test_a_model_without_a_summary_has_none(tmp_path):
    assert read_model_summary(tmp_path / "old.pkl") is None


@pytest.mark.parametrize(("text", "fragment"), [("{", "unreadable model summary"), ('{"score": "high"}', "numeric")])
def test_a_damaged_summary_is_one_line(tmp_path, text, fragment):
    summary_path(tmp_path / "m.pkl").write_text(text)

    with pytest.raises(ArtifactError, match=fragment) as raised:
        read_model_summary(tmp_path / "m.pkl")
    assert "\n" not in str(raised.value)
