"""Shared helpers for the yadage loader tests (pure: no Prefect, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mltoolkit.yadage import load_workflow, read_inputs, validate_workflow
from mltoolkit.yadage.planner import WorkflowRun

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.fixture(scope="session")
def specs() -> Path:
    """``tests/specs``: one folder per spec fixture."""
    return SPECS


def load_case(case: str):
    """The validated workflow of ``tests/specs/<case>/workflow.yml``."""
    return validate_workflow(load_workflow(SPECS / case / "workflow.yml"))


def case_inputs(case: str) -> dict[str, Any]:
    """The init values of ``tests/specs/<case>/inputs.yml`` (empty when there is none)."""
    path = SPECS / case / "inputs.yml"
    return read_inputs(path if path.exists() else None)


def plan_all(run: WorkflowRun, publish=None) -> list:
    """Drive ``run`` to the end, publishing ``publish(step)`` (default: the step's parameters)."""
    stages = []
    while True:
        new = run.advance()
        if not new:
            break
        for stage in new:
            stages.append(stage)
            for step in stage.steps:
                run.record_success(step.id, publish(step) if publish else dict(step.parameters))
    return stages
