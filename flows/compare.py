"""Compare two runs: inputs, metrics side by side, files, steps ran vs reused, environment drift.

Run it::

    python -m flows.compare RUN_A RUN_B [--rtol R] [--atol A] [--image-tolerance P]

(the same as ``mltoolkit compare``; the command line is :mod:`flows.cli.compare`, which
compares in its own process, without Prefect). Each RUN is a work directory, a crate
folder or an archive zip. The flow ``compare-runs`` does the same for a deployment or
the UI and publishes the tables as artifacts.
"""

from __future__ import annotations

if __name__ == "__main__":
    from flows.cli import run_module_command

    run_module_command("compare", prog_name="python -m flows.compare")

from typing import Any

from prefect.artifacts import acreate_table_artifact

from flows.expected_errors import install_expected_error_filter
from flows.json_flow import json_flow
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.report import drift_rows, verdict_rows
from mltoolkit.preservation.run_diff import RunComparison, compare_two_runs
from mltoolkit.preservation.sources import open_run

__all__ = ["compare_runs_flow", "publish_comparison"]


async def publish_comparison(comparison: RunComparison) -> None:
    """Artifacts: the output verdicts, the metrics side by side, the steps and the environment drift."""
    tables = {
        "comparison-outputs": (verdict_rows(comparison.report.files), comparison.report.summary()),
        "comparison-metrics": (comparison.metrics, "Each classifier's test score in both runs."),
        "comparison-steps": (comparison.steps, "Whether each step ran or was reused in each run, and why."),
        "comparison-drift": (drift_rows(comparison.report.drift), "Software versions and platform of both runs."),
    }
    for key, (rows, description) in tables.items():
        if rows:
            await acreate_table_artifact(table=rows, key=key, description=description)


@json_flow(name="compare-runs", description="Compare two runs: inputs, metrics, files, steps, environment.")
async def compare_runs_flow(
    run_a: str,
    run_b: str,
    rtol: float = Tolerance.rtol,
    atol: float = Tolerance.atol,
    image_tolerance: float = Tolerance.image,
) -> dict[str, Any]:
    """Compare ``run_b`` against ``run_a``; return the comparison as JSON.

    Args:
        run_a: the first run (work directory, crate folder or archive zip).
        run_b: the second run.
        rtol: relative tolerance of numbers.
        atol: absolute tolerance of numbers.
        image_tolerance: share of a figure's pixels (0..1) that may differ.
    """
    install_expected_error_filter()
    tolerance = Tolerance(rtol=rtol, atol=atol, image=image_tolerance)
    with open_run(run_a) as first, open_run(run_b) as second:
        comparison = compare_two_runs(first, second, tolerance)
    await publish_comparison(comparison)
    return comparison.as_json()
