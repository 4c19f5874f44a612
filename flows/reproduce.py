"""Reproduce an archived run: re-run what it was given in a fresh work directory, compare every output.

Run it::

    python -m flows.reproduce SOURCE [--workdir NEW] [--rtol R] [--atol A] [--image-tolerance P] [--trust-archive]

(the same as ``mltoolkit reproduce``; the command line is :mod:`flows.cli.reproduce`).
SOURCE is a run's work directory, its crate folder or its archive zip. The
native flow runs again with the recorded inputs (the dataset copy kept with the
run), a spec run with the spec files *as stored with the run*; both without the
cache. The report (``NEW/_mltoolkit/reproduction.json`` and ``.md``) and the
flow run's artifacts give a verdict per output and the environment drift.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Delegated before the imports below, so the start-up helpers boot first (see flows/ml_workflow.py).
    from flows.cli import run_module_command

    run_module_command("reproduce", prog_name="python -m flows.reproduce")

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.logging import get_run_logger

from flows.expected_errors import install_expected_error_filter
from flows.json_flow import json_flow
from flows.result_files import image_data_uri
from flows.run_guard import guarded_run
from mltoolkit.errors import ReproductionError
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.report import Report, drift_rows, verdict_rows, write_reports
from mltoolkit.preservation.reproduction import compare_runs
from mltoolkit.preservation.rerun import RerunPlan, plan_rerun
from mltoolkit.preservation.sources import ArchivedRun, open_run
from mltoolkit.workdir.layout import WorkdirLayout

__all__ = ["publish_report", "reproduce", "rerun"]


async def rerun(plan: RerunPlan, workdir: str) -> None:
    """Run the planned flow (as a subflow) in ``workdir``, without the cache."""
    if plan.kind == "native":
        from flows.ml_workflow import ml_workflow
        from flows.parameters import CustomClassifier, split_classifiers, to_spec

        specs = [to_spec(entry) for entry in plan.parameters["classifiers"]]
        names, custom = split_classifiers(specs)
        custom += plan.parameters.get("custom_classifiers") or []
        await ml_workflow(
            dataset=plan.parameters["dataset"],
            classifiers=names,
            custom_classifiers=[CustomClassifier.model_validate(entry) for entry in custom] or None,
            workdir=workdir,
            dataset_sha256=plan.parameters.get("dataset_sha256"),
            use_cache=False,
        )
        return
    from flows.spec_workflow import spec_workflow

    await spec_workflow(
        workflow=plan.parameters["workflow"],
        toplevel=plan.parameters["toplevel"],
        inputs=plan.parameters["inputs"],
        workdir=workdir,
        use_cache=False,
    )


async def publish_report(report: Report) -> None:
    """Artifacts of the flow run: the verdict table, the drift table, each figure's difference image."""
    await acreate_table_artifact(
        table=verdict_rows(report.files), key="reproduction-verdicts", description=report.summary()
    )
    await acreate_table_artifact(
        table=drift_rows(report.drift),
        key="reproduction-drift",
        description="Software versions and platform of the archived run and of the new one.",
    )
    for row in report.files:
        uri = image_data_uri(Path(row.diff_image)) if row.diff_image else None
        if uri is None:
            continue
        markdown = f"# {row.output}: where the figures differ (red)\n\n![difference]({uri})\n\n{row.detail}\n"
        await acreate_markdown_artifact(
            markdown=markdown, key="reproduction-figure-diff", description=f"{row.output}: {row.detail}"
        )


def _default_workdir(source: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("reproductions") / f"{Path(source).stem or 'run'}-{stamp}"


def _check_fresh(workdir: Path) -> None:
    if WorkdirLayout(workdir).run_record.exists():
        raise ReproductionError(
            f"--workdir {workdir}: already holds a run; reproduce re-runs in a fresh work directory: pick a new path"
        )


async def _rerun_and_compare(archived: ArchivedRun, workdir: Path, tolerance: Tolerance, trust: bool) -> Report:
    plan = plan_rerun(archived)
    failure = None
    try:
        await rerun(plan, str(workdir))
    except Exception as error:  # the re-run's failure is part of the report, not the end of it
        failure = f"the re-run failed: {type(error).__name__}: {error}"
        get_run_logger().warning(failure)
    layout = WorkdirLayout(workdir)
    with open_run(workdir) as new:
        report = compare_runs(archived, new, tolerance, diffs=layout.reproduction_diffs, trust_archive=trust)
    report.notes += plan.notes + ([failure] if failure else [])
    return report


@json_flow(
    name="reproduce", description="Re-run an archived run's workflow in a fresh folder and compare every output."
)
async def reproduce(
    source: str,
    workdir: str | None = None,
    rtol: float = Tolerance.rtol,
    atol: float = Tolerance.atol,
    image_tolerance: float = Tolerance.image,
    trust_archive: bool = False,
) -> dict[str, Any]:
    """Reproduce ``source`` in ``workdir``; return the report (``reproduction.json``'s content).

    Args:
        source: the archived run: its work directory, crate folder or archive zip.
        workdir: a fresh folder for the new run (the report goes to its _mltoolkit/ folder); default:
            reproductions/<source name>-<UTC time> in the current folder.
        rtol: relative tolerance of numbers (scores, values in JSON/YAML files).
        atol: absolute tolerance of numbers.
        image_tolerance: share of a figure's pixels (0..1) that may differ.
        trust_archive: load the archived pickles to compare them (they run code when loaded:
            only for archives you trust); otherwise models are compared by their summaries.
    """
    install_expected_error_filter()
    root = Path(workdir or _default_workdir(source)).resolve()
    root.mkdir(parents=True, exist_ok=True)
    tolerance = Tolerance(rtol=rtol, atol=atol, image=image_tolerance)
    with guarded_run(root, "reproduce"):
        _check_fresh(root)
        with open_run(source) as archived:
            report = await _rerun_and_compare(archived, root, tolerance, trust_archive)
        layout = WorkdirLayout(root)
        write_reports(report, layout.reproduction("json"), layout.reproduction("md"), f"Reproduction of {source}")
    await publish_report(report)
    return report.as_json()
