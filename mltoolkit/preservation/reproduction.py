"""Compare two opened runs into one report: every output by kind, the environment drift, what was tampered."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from mltoolkit.preservation.comparison import OutputSet, compare_outputs
from mltoolkit.preservation.drift import environment_drift
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.report import Report
from mltoolkit.preservation.sources import ArchivedRun
from mltoolkit.workdir.artifacts import SIDECAR_SUFFIX
from mltoolkit.workdir.layout import BOOKKEEPING_DIRS

__all__ = ["compare_runs", "is_result", "output_set"]


def is_result(path: str) -> bool:
    """Whether an output is a result to compare, not bookkeeping: a step's private files (its command,
    script and log under ``_packtivity/``, which name the work directory) and sha256 sidecars (which
    change with their file) are still verified, but not compared."""
    parts = PurePosixPath(path).parts
    return not BOOKKEEPING_DIRS.intersection(parts) and not path.endswith(SIDECAR_SUFFIX)


def output_set(run: ArchivedRun) -> OutputSet:
    """``run``'s recorded results (:func:`is_result`), with those that failed verification marked."""
    results = {path: digest for path, digest in run.outputs.items() if is_result(path)}
    return OutputSet(run.root, results, frozenset(finding.path for finding in run.tampered))


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
