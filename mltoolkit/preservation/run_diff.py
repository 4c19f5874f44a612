"""Compare two runs: inputs, metrics side by side, files, steps ran vs reused, environment.

In the spirit of REANA's ``diff``, DVC's ``metrics diff`` and MLflow's run
comparison, with two differences: numbers are compared within a tolerance, and
library drift is part of the answer. The exit rule is the reproduction's: 0 when
every output is identical or within tolerance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mltoolkit.analysis.results import read_model_summary
from mltoolkit.errors import ArtifactError
from mltoolkit.preservation.numeric import Tolerance, format_number
from mltoolkit.preservation.report import Report, format_table, render_text
from mltoolkit.preservation.reproduction import compare_runs
from mltoolkit.preservation.sources import ArchivedRun
from mltoolkit.workdir.record import RunStep

__all__ = ["RunComparison", "compare_two_runs", "render_comparison"]


@dataclass
class RunComparison:
    """Two runs side by side: the output report plus inputs, metrics and steps."""

    report: Report
    inputs: list[dict[str, str]]
    metrics: list[dict[str, str]]
    steps: list[dict[str, str]]

    @property
    def exit_code(self) -> int:
        """0 when every output is identical or within tolerance (as for a reproduction)."""
        return self.report.exit_code

    def as_json(self) -> dict[str, Any]:
        """The comparison as JSON: the output report plus the three tables."""
        return {**self.report.as_json(), "inputs": self.inputs, "metrics": self.metrics, "steps": self.steps}


def _shown(value: Any) -> str:
    return "-" if value is _MISSING else json.dumps(value, default=str)


_MISSING = object()


def _inputs(first: ArchivedRun, second: ArchivedRun) -> list[dict[str, str]]:
    """Each input or ``-p`` value that differs between the runs."""
    rows = []
    for source, left, right in (
        ("input", first.record.inputs or {}, second.record.inputs or {}),
        ("-p", (first.submitted or {}).get("parameters") or {}, (second.submitted or {}).get("parameters") or {}),
    ):
        for key in list(left) + [key for key in right if key not in left]:
            old, new = left.get(key, _MISSING), right.get(key, _MISSING)
            if old != new:
                rows.append({"input": f"{source} {key}", "a": _shown(old), "b": _shown(new)})
    return rows


def _scores(run: ArchivedRun) -> dict[str, float]:
    """``{classifier: test score}`` from the model summaries beside the run's pickles."""
    scores: dict[str, float] = {}
    for output in run.outputs:
        if not output.endswith(".pkl"):
            continue
        try:
            summary = read_model_summary(run.root / output)
        except ArtifactError:
            continue
        if summary is not None:
            scores[str(summary.get("classifier") or output)] = float(summary["score"])
    return scores


def _metrics(first: ArchivedRun, second: ArchivedRun, tolerance: Tolerance) -> list[dict[str, str]]:
    """Every metric of either run side by side, with the difference."""
    left, right = _scores(first), _scores(second)
    rows = []
    for name in list(left) + [name for name in right if name not in left]:
        old, new = left.get(name), right.get(name)
        if old is None or new is None:
            verdict, difference = "missing", ""
        else:
            verdict = "identical" if old == new else "within tolerance" if tolerance.close(old, new) else "differs"
            difference = f"{new - old:+.4g}" if old != new else ""
        shown = ("-" if old is None else format_number(old), "-" if new is None else format_number(new))
        rows.append(
            {"metric": f"{name} score", "a": shown[0], "b": shown[1], "difference": difference, "verdict": verdict}
        )
    return rows


def _how(step: RunStep | None) -> str:
    if step is None:
        return "-"
    if step.cache is None:
        return step.state.lower()
    how = "reused" if step.cache.reused else "ran"
    return how if step.cache.reason == how else f"{how} ({step.cache.reason})"


def _steps(first: ArchivedRun, second: ArchivedRun) -> list[dict[str, str]]:
    """Each step: whether it ran or was reused in each run, and why."""
    left = {step.id or step.name: step for step in first.record.steps}
    right = {step.id or step.name: step for step in second.record.steps}
    names = list(left) + [name for name in right if name not in left]
    return [{"step": name.lstrip("/"), "a": _how(left.get(name)), "b": _how(right.get(name))} for name in names]


def compare_two_runs(first: ArchivedRun, second: ArchivedRun, tolerance: Tolerance) -> RunComparison:
    """Compare ``second`` against ``first`` (outputs by kind, never loading pickles)."""
    report = compare_runs(first, second, tolerance)
    return RunComparison(report, _inputs(first, second), _metrics(first, second, tolerance), _steps(first, second))


def render_comparison(comparison: RunComparison) -> str:
    """What ``compare`` prints: inputs that differ, metrics, steps, then the output table and drift."""
    parts = []
    inputs = comparison.inputs
    parts += (
        ["inputs that differ:", format_table(inputs, ("input", "a", "b"), limit=60)] if inputs else ["inputs: same"]
    )
    if comparison.metrics:
        parts += ["", "metrics:", format_table(comparison.metrics, ("metric", "a", "b", "difference", "verdict"))]
    parts += ["", "steps (a | b):", format_table(comparison.steps, ("step", "a", "b"), limit=60), ""]
    parts.append(render_text(comparison.report.as_json()))
    return "\n".join(parts)
