"""Phase 2 of the spec loader: a typed model of yadage specs, with yadage's defaults.

The models follow the JSON schemas of ``yadage-schemas`` (workflow, stage,
schedulers, packtivity process/environment/publisher) plus the shorthands its
``raw_with_defaults`` loader accepts: ``dependencies`` as a plain list of
expressions, ``parameters`` as a mapping (or the canonical ``[{key, value}]``
list), references written as ``{step|stages: ..., output: ...}`` without
``expression_type``.

:func:`validate_workflow` turns every problem into ONE line that says where
(file, line, JSON pointer, stage, key), what was found, what was expected and how
to fix it (:class:`~mltoolkit.errors.SpecError`). Constructs this loader knows but
does not implement (tarball/umbrella environments...) raise
:class:`~mltoolkit.errors.UnsupportedFeatureError` instead of being skipped.
Checks across stages may also add what a spec implies but does not say (a
dependency on a stage whose outputs a stage reads); each such addition is a
warning in :attr:`Workflow.warnings`.

Modules, in the order a spec meets them:

* :mod:`~mltoolkit.yadage.model.base` -- what every model shares (unknown keys, type names);
* :mod:`~mltoolkit.yadage.model.steps` -- processes, environments, publishers: a step;
* :mod:`~mltoolkit.yadage.model.resources` -- an environment's ``resources`` sorted by use;
* :mod:`~mltoolkit.yadage.model.references` -- parameter values and references;
* :mod:`~mltoolkit.yadage.model.stages` -- the schedulers (single, multi, jq, cases);
* :mod:`~mltoolkit.yadage.model.workflow` -- stages, their dependencies, workflows;
* :mod:`~mltoolkit.yadage.model.names` -- the rule for names that become folders;
* :mod:`~mltoolkit.yadage.model.checks` -- checks across stages (graphlib for cycles);
* :mod:`~mltoolkit.yadage.model.messages` -- pydantic errors as one line each;
* :mod:`~mltoolkit.yadage.model.validation` -- :func:`validate_workflow`, :func:`validate_step`.
"""

from __future__ import annotations

from mltoolkit.yadage.model.base import ENVIRONMENT_TYPES, PROCESS_TYPES, PUBLISHER_TYPES, SCHEDULER_TYPES, SpecModel
from mltoolkit.yadage.model.references import OutputReference, ValueReference, is_reference
from mltoolkit.yadage.model.resources import ResourceRequest, parse_resources
from mltoolkit.yadage.model.stages import Case, JqStage, MultistepStage, Scatter, SinglestepStage, WorkflowOpts
from mltoolkit.yadage.model.steps import (
    ConstantPub,
    DockerEncapsulatedEnv,
    EnvironmentSpec,
    FromGlobPub,
    FromParJqPub,
    FromParPub,
    FromYamlPub,
    InterpolatedPub,
    InterpolatedScriptCmd,
    LocalProcEnv,
    ManualInstructionsEnv,
    ManualInstructionsProc,
    ManualInstructionsPub,
    NoopEnv,
    ParMount,
    StepSpec,
    StringInterpolatedCmd,
)
from mltoolkit.yadage.model.validation import validate_step, validate_workflow
from mltoolkit.yadage.model.workflow import Dependencies, Stage, Workflow

__all__ = [
    "ENVIRONMENT_TYPES",
    "PROCESS_TYPES",
    "PUBLISHER_TYPES",
    "SCHEDULER_TYPES",
    "Case",
    "ConstantPub",
    "Dependencies",
    "DockerEncapsulatedEnv",
    "EnvironmentSpec",
    "FromGlobPub",
    "FromParJqPub",
    "FromParPub",
    "FromYamlPub",
    "InterpolatedPub",
    "InterpolatedScriptCmd",
    "JqStage",
    "LocalProcEnv",
    "ManualInstructionsEnv",
    "ManualInstructionsProc",
    "ManualInstructionsPub",
    "MultistepStage",
    "NoopEnv",
    "OutputReference",
    "ParMount",
    "ResourceRequest",
    "Scatter",
    "SinglestepStage",
    "SpecModel",
    "Stage",
    "StepSpec",
    "StringInterpolatedCmd",
    "ValueReference",
    "Workflow",
    "WorkflowOpts",
    "is_reference",
    "parse_resources",
    "validate_step",
    "validate_workflow",
]
