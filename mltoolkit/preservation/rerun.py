"""What to run again to reproduce an archived run: the flow and its inputs, from the copies kept with it.

A run keeps exact copies of what it was given under ``_mltoolkit/submitted/``
(``submitted.json`` says which). Reproducing re-runs *those* -- the spec files
as stored with the run, the dataset copy -- never whatever is on disk now. A
native run made before runs kept copies can still be re-run from its record's
inputs (the plan says so in a note); a spec run cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mltoolkit.errors import ReproductionError
from mltoolkit.preservation.sources import ArchivedRun

__all__ = ["NATIVE_FLOW", "SPEC_FLOWS", "RerunPlan", "plan_rerun"]

#: The native flow's name in run records.
NATIVE_FLOW = "ml-workflow"
#: Flow names of spec runs in run records.
SPEC_FLOWS = frozenset({"spec-workflow", "seed-spec-workflow"})


@dataclass
class RerunPlan:
    """The flow to run again and its inputs.

    Native: ``dataset``, ``dataset_sha256``, ``classifiers`` (names or
    ``{name, estimator, params}`` mappings, as run records keep them) and
    ``custom_classifiers`` (the flow's parameter, when it was recorded apart). Spec: ``workflow`` (relative to
    ``toplevel``), ``toplevel`` (a folder of the archived run) and ``inputs`` (init values).
    """

    kind: Literal["native", "spec"]
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _submitted_file(run: ArchivedRun, relative: str, what: str) -> Path:
    """A file or folder inside the run's ``submitted/``, after checking it is there and untampered."""
    base = run.layout.submitted
    path = (base / relative).resolve()
    if not path.is_relative_to(base.resolve()) or not path.exists():
        raise ReproductionError(
            f"{run.source}: submitted.json names {what} {relative!r}, which is not in {run.layout.relative(base)}; "
            "the archive is incomplete: archive the run again"
        )
    inside = run.layout.relative(path)
    for finding in run.tampered:
        if finding.path == inside or finding.path.startswith(f"{inside}/"):
            raise ReproductionError(f"{run.source}: {finding.describe()}; a tampered submitted file is never run")
    return path


def _dataset_copies(run: ArchivedRun) -> dict[str, str]:
    """``{dataset as originally given: what to use now}`` -- the kept copy, else its URL."""
    copies: dict[str, str] = {}
    for entry in (run.submitted or {}).get("datasets") or []:
        original = str(entry.get("original") or "")
        if entry.get("path"):
            copies[original] = str(_submitted_file(run, str(entry["path"]), "the dataset copy"))
        elif entry.get("url"):
            copies[original] = str(entry["url"])
    return copies


def _dataset_sha256(run: ArchivedRun, original: str) -> str | None:
    for entry in (run.submitted or {}).get("datasets") or []:
        if str(entry.get("original") or "") == original and entry.get("sha256"):
            return str(entry["sha256"])
    return None


def _native_plan(run: ArchivedRun, inputs: dict[str, Any], notes: list[str]) -> RerunPlan:
    if "dataset" not in inputs or "classifiers" not in inputs:
        raise ReproductionError(
            f"{run.source}: the recorded inputs of the native run lack 'dataset' or 'classifiers' "
            f"(found {sorted(inputs)}); expected the parameters of ml-workflow"
        )
    original = str(inputs["dataset"])
    copies = _dataset_copies(run)
    dataset = copies.get(original) or (next(iter(copies.values())) if len(copies) == 1 else original)
    sha256 = inputs.get("dataset_sha256") or _dataset_sha256(run, original)
    parameters = {
        "dataset": dataset,
        "dataset_sha256": sha256,
        "classifiers": list(inputs["classifiers"]),
        "custom_classifiers": list(inputs.get("custom_classifiers") or []),
    }
    return RerunPlan("native", parameters, notes)


def _spec_plan(run: ArchivedRun, submitted: dict[str, Any]) -> RerunPlan:
    workflow, toplevel = submitted.get("workflow"), submitted.get("toplevel") or ""
    if not workflow:
        raise ReproductionError(f"{run.source}: submitted.json names no workflow file; expected a spec run's copies")
    workflow_file, hash_sign, pointer = str(workflow).partition("#")
    workflow_path = _submitted_file(run, workflow_file, "the workflow")
    top = _submitted_file(run, str(toplevel), "the toplevel folder") if toplevel else workflow_path.parent
    copies = _dataset_copies(run)
    inputs = {
        key: copies.get(value, value) if isinstance(value, str) else value
        for key, value in (submitted.get("inputs") or {}).items()
    }
    relative = workflow_path.relative_to(top).as_posix() if workflow_path.is_relative_to(top) else str(workflow_path)
    relative += hash_sign + pointer  # a workflow inside a larger document: spec/all.yml#/workflow
    return RerunPlan("spec", {"workflow": relative, "toplevel": str(top), "inputs": inputs})


def plan_rerun(run: ArchivedRun) -> RerunPlan:
    """What to run again for ``run``, from its submitted copies (or, for an older native run, its record).

    Raises:
        ReproductionError: an unknown flow, a spec run without submitted copies,
            a submitted file missing or tampered.
    """
    flow = (run.submitted or {}).get("flow") or run.record.flow
    if flow != NATIVE_FLOW and flow not in SPEC_FLOWS:
        known = ", ".join(sorted({NATIVE_FLOW, *SPEC_FLOWS}))
        raise ReproductionError(
            f"{run.source}: the run was made by flow {flow!r}, which reproduce does not know; expected one of {known}"
        )
    if run.submitted is None:
        if flow != NATIVE_FLOW:
            raise ReproductionError(
                f"{run.source}: no {run.layout.relative(run.layout.submitted_manifest)}: the run kept no copies of "
                "its spec, so it cannot be re-run as it was; re-run the spec with this version of mltoolkit first"
            )
        note = "the run kept no submitted copies (made before mltoolkit kept them): re-ran its recorded inputs"
        return _native_plan(run, dict(run.record.inputs or {}), [note])
    if flow == NATIVE_FLOW:
        return _native_plan(run, dict(run.submitted.get("inputs") or run.record.inputs or {}), [])
    return _spec_plan(run, run.submitted)
