"""The yadage spec loader, in phases, without Prefect.

1. :mod:`~mltoolkit.yadage.load` -- read YAML, resolve ``$ref`` (files, fragments, URLs);
2. :mod:`~mltoolkit.yadage.model` -- typed spec with yadage's defaults, one-line errors;
3. :mod:`~mltoolkit.yadage.selectors` -- stage selection and output references;
4. :mod:`~mltoolkit.yadage.schedulers` and :mod:`~mltoolkit.yadage.planner` -- the
   workflow state machine an executor drives;
5. :mod:`~mltoolkit.yadage.packtivity` -- run one step (quoting, environments,
   image map, publishers);
6. :mod:`~mltoolkit.yadage.inputs` -- init values from ``INPUTS`` and ``-p``;
7. :mod:`~mltoolkit.yadage.requirements` -- what the steps need provided, checked
   before any step runs;
8. :mod:`~mltoolkit.yadage.readers` -- which outputs of each stage later stages read
   (what a human step asks for, what a stub publishes);
9. :mod:`~mltoolkit.yadage.validate` -- a report on whether a spec would run here,
   without running anything;

plus :mod:`~mltoolkit.yadage.runner`, a plain executor (the reference for adapters).
"""

from __future__ import annotations

from mltoolkit.yadage.inputs import init_dir, read_inputs
from mltoolkit.yadage.load import LoadedSpec, load_step_ref, load_workflow
from mltoolkit.yadage.model import StepSpec, Workflow, validate_step, validate_workflow
from mltoolkit.yadage.packtivity import (
    DEFAULT_IMAGE_MAP,
    EnvironmentUnavailableError,
    ImageMapping,
    StepOptions,
    StepResult,
    docker_available,
    interpolate,
    parse_image_map,
    publish,
    run_step,
)
from mltoolkit.yadage.packtivity.manual import HumanRequest
from mltoolkit.yadage.packtivity.stub import StubPlan
from mltoolkit.yadage.planner import PlannedStage, PlannedStep, StepRecord, WorkflowRun
from mltoolkit.yadage.readers import ReadOutputs, outputs_read
from mltoolkit.yadage.requirements import StageRequirement, check_requirements, parse_provided, stage_requirements
from mltoolkit.yadage.runner import planned_request, run_planned_step, run_workflow, stub_plan
from mltoolkit.yadage.visualize import VisualizationError, write_workflow_pictures

__all__ = [
    "DEFAULT_IMAGE_MAP",
    "EnvironmentUnavailableError",
    "HumanRequest",
    "ImageMapping",
    "LoadedSpec",
    "PlannedStage",
    "PlannedStep",
    "ReadOutputs",
    "StageRequirement",
    "StepOptions",
    "StepRecord",
    "StepResult",
    "StepSpec",
    "StubPlan",
    "VisualizationError",
    "Workflow",
    "WorkflowRun",
    "check_requirements",
    "docker_available",
    "init_dir",
    "interpolate",
    "load_step_ref",
    "load_workflow",
    "outputs_read",
    "parse_image_map",
    "parse_provided",
    "planned_request",
    "publish",
    "read_inputs",
    "run_planned_step",
    "run_step",
    "run_workflow",
    "stage_requirements",
    "stub_plan",
    "validate_step",
    "validate_workflow",
    "write_workflow_pictures",
]
