"""Compare two pickles without loading them: a model by its summary sidecar, others opcode by opcode.

A pickle runs code when it is loaded, and an archive may come from anyone, so a
model file ``X.pkl`` is compared through the numbers its run wrote beside it,
``X.pkl.summary.json`` (score, size of the test split, predictions on it and
their sha256): the score within tolerance and the predictions equal. Only with
``trust_archive`` are both pickles loaded, and their scores and predictions on
the archived test split compared. A pickle without summaries is read opcode by
opcode, never loaded (:mod:`~mltoolkit.preservation.pickles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltoolkit.analysis.results import SUMMARY_SUFFIX, read_model_summary
from mltoolkit.errors import ArtifactError
from mltoolkit.preservation.numeric import Tolerance, compare_values, format_number
from mltoolkit.preservation.pickles import compare_pickles

__all__ = ["ModelComparison", "compare_models"]


@dataclass(frozen=True)
class ModelComparison:
    """The outcome of comparing two model files: reproduced or not, and one line saying why."""

    reproduced: bool
    detail: str
    archived: str = ""
    now: str = ""


def _summary(model: Path) -> dict[str, Any] | None:
    """The summary beside ``model`` (never the pickle), ``None`` when missing or unreadable."""
    try:
        return read_model_summary(model)
    except ArtifactError:
        return None


def _predictions_key(summary: dict[str, Any]) -> Any:
    return summary.get("predictions_sha256") or summary.get("predictions")


def _by_summaries(archived: dict[str, Any], now: dict[str, Any], tolerance: Tolerance) -> ModelComparison:
    name = archived.get("classifier") or now.get("classifier") or "model"
    old_score, new_score = archived.get("score"), now.get("score")
    if not isinstance(old_score, (int, float)) or not isinstance(new_score, (int, float)):
        return ModelComparison(False, f"{name}: a summary holds no score")
    shown = (f"score {format_number(old_score)}", f"score {format_number(new_score)}")
    score_ok = tolerance.close(float(old_score), float(new_score))
    same_predictions = _predictions_key(archived) == _predictions_key(now)
    score = f"{name} {format_number(old_score)} -> {format_number(new_score)}"
    if score_ok and same_predictions:
        equal = "equal" if old_score == new_score else "within tolerance"
        return ModelComparison(True, f"pickle bytes differ; score {equal}, predictions equal", *shown)
    predictions = "predictions equal" if same_predictions else _prediction_change(archived, now)
    return ModelComparison(False, f"{score}; {predictions}", *shown)


def _prediction_change(archived: dict[str, Any], now: dict[str, Any]) -> str:
    old, new = archived.get("predictions"), now.get("predictions")
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changed = sum(1 for left, right in zip(old, new) if left != right)
        return f"{changed} of {len(old)} test predictions changed"
    return "predictions differ"


def _load_trusted(path: Path) -> Any:
    """Unpickle ``path``: only ever called when the user passed ``--trust-archive``."""
    import pickle

    with path.open("rb") as handle:
        return pickle.load(handle)


def _by_loading(archived: Path, now: Path, test_data: Path | None, tolerance: Tolerance) -> ModelComparison:
    old, new = _load_trusted(archived), _load_trusted(now)
    old_score, new_score = getattr(old, "score", None), getattr(new, "score", None)
    if not isinstance(old_score, (int, float)) or not isinstance(new_score, (int, float)):
        plain = compare_values(_plain(old), _plain(new), tolerance)
        return ModelComparison(plain.within_tolerance, f"loaded (--trust-archive): {plain.describe()}")
    summaries: list[dict[str, Any]] = [
        {"classifier": getattr(old, "name", "model"), "score": old_score},
        {"score": new_score},
    ]
    if test_data is not None:
        data = _load_trusted(test_data)
        for summary, model in zip(summaries, (old, new)):
            summary["predictions"] = [str(value) for value in model.estimator.predict(data.X_test)]
    result = _by_summaries(summaries[0], summaries[1], tolerance)
    return ModelComparison(result.reproduced, f"loaded (--trust-archive): {result.detail}", result.archived, result.now)


def _plain(value: Any) -> Any:
    """A loaded object as JSON-like values (arrays as lists, objects as their fields), for comparison."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "__dict__"):
        return {key: _plain(item) for key, item in vars(value).items() if not key.startswith("_")}
    return value


def compare_models(
    archived: Path, now: Path, tolerance: Tolerance, *, trust_archive: bool = False, test_data: Path | None = None
) -> ModelComparison:
    """Compare two pickles whose bytes differ: by their summaries, or by loading them with ``trust_archive``.

    ``test_data`` is the archived run's prepped data (pickle with ``X_test``), used
    only with ``trust_archive`` to predict with both models.
    """
    if trust_archive:
        return _by_loading(archived, now, test_data, tolerance)
    old, new = _summary(archived), _summary(now)
    if old is not None and new is not None:
        return _by_summaries(old, new, tolerance)
    difference = compare_pickles(archived.read_bytes(), now.read_bytes(), tolerance)
    if difference.within_tolerance:
        return ModelComparison(True, f"read without loading: {difference.describe()}")
    side = "archived" if old is None else "new"
    return ModelComparison(
        False,
        f"{difference.describe()}; the {side} run has no {archived.name}{SUMMARY_SUFFIX} to compare by, "
        "and archived pickles are never loaded unless you pass --trust-archive",
    )
