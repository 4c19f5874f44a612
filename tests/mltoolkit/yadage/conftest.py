"""Shared helpers for the yadage loader tests (pure: no Prefect, no network).

Spec fixtures live in ``tests/specs/<case>/`` (:data:`tests.constants.SPECS`);
specs written inline use :data:`STEP_YAML` / :data:`NOOP_STEP` and :func:`write_workflow`.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.yadage import load_workflow, read_inputs, validate_workflow
from mltoolkit.yadage.model import Workflow
from mltoolkit.yadage.planner import PlannedStage, PlannedStep, WorkflowRun
from tests.constants import SPECS

#: A step in YAML, to follow a stage's ``scheduler:`` lines that end with the 8 spaces before closing quotes.
STEP_YAML = """    step:
              process: {process_type: string-interpolated-cmd, cmd: 'echo {x}'}
              environment: {environment_type: localproc-env}
              publisher: {publisher_type: frompar-pub, outputmap: {y: x}}
"""

#: A step that runs nothing and publishes its parameter ``value``.
NOOP_STEP: dict[str, Any] = {
    "process": {"process_type": "string-interpolated-cmd", "cmd": "true"},
    "environment": {"environment_type": "noop-env"},
    "publisher": {"publisher_type": "frompar-pub", "outputmap": {"value": "value"}},
}


@pytest.fixture(scope="session")
def specs() -> Path:
    """``tests/specs``: one folder per spec fixture."""
    return SPECS


def load_case(case: str) -> Workflow:
    """The validated workflow of ``tests/specs/<case>/workflow.yml``."""
    return validate_workflow(load_workflow(SPECS / case / "workflow.yml"))


def case_inputs(case: str) -> dict[str, Any]:
    """The init values of ``tests/specs/<case>/inputs.yml`` (empty when there is none)."""
    path = SPECS / case / "inputs.yml"
    return read_inputs(path if path.exists() else None)


def write_workflow(folder: Path, text: str) -> Path:
    """Write ``text`` (dedented) as ``folder/workflow.yml``; returns its path."""
    path = folder / "workflow.yml"
    path.write_text(textwrap.dedent(text))
    return path


def noop_stage(name: str, deps: list[str], parameters: dict[str, Any], **scheduler: Any) -> dict[str, Any]:
    """A stage running :data:`NOOP_STEP` (``scheduler_type`` defaults to ``singlestep-stage``)."""
    kind = scheduler.pop("scheduler_type", "singlestep-stage")
    return {
        "name": name,
        "dependencies": deps,
        "scheduler": {"scheduler_type": kind, "parameters": parameters, "step": copy.deepcopy(NOOP_STEP), **scheduler},
    }


def plan_all(run: WorkflowRun, publish: Callable[[PlannedStep], Any] | None = None) -> list[PlannedStage]:
    """Drive ``run`` to the end, publishing ``publish(step)`` (default: the step's parameters)."""
    stages = []
    while True:
        new = run.advance()
        if not new:
            break
        for planned in new:
            stages.append(planned)
            for step in planned.steps:
                run.record_success(step.id, publish(step) if publish else dict(step.parameters))
    return stages
