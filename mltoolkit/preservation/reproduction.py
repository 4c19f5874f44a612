"""Compare two opened runs into one report: every output by kind, the environment drift, what was tampered."""

from __future__ import annotations

from pathlib import Path

from mltoolkit.preservation.comparison import OutputSet, compare_outputs
from mltoolkit.preservation.drift import environment_drift
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.report import Report
from mltoolkit.preservation.sources import ArchivedRun

__all__ = ["compare_runs", "output_set"]


def output_set(run: ArchivedRun) -> OutputSet:
    """``run``'s recorded outputs, with those that failed verification marked."""
    return OutputSet(run.root, run.outputs, frozenset(finding.path for finding in run.tampered))


def compare_runs(
    archived: ArchivedRun,
    now: ArchivedRun,
    tolerance: Tolerance,
    *,
    diffs: Path | None = None,
    trust_archive: bool = False,
) -> Report:
    """The report of ``now`` against ``archived``: outputs, drift, and every tampered file of either run.

    ``diffs`` is the folder for figures' difference images (none written without it).
    """
    files = compare_outputs(output_set(archived), output_set(now), tolerance, diffs=diffs, trust_archive=trust_archive)
    return Report(
        archived=archived.source,
        now=now.source,
        tolerance=tolerance,
        files=files,
        drift=environment_drift(archived.record, now.record),
        tampered=[*archived.tampered, *now.tampered],
    )
