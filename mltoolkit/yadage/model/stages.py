"""Stage schedulers: how a stage turns its parameters into steps (or subworkflow instances).

* ``singlestep-stage``: one step (or one instance) with the resolved parameters;
* ``multistep-stage``: one per element of the ``scatter`` parameters (``zip`` or
  ``cartesian``), optionally grouped by ``batchsize`` or ``partitionsize``;
* ``jq-stage``: a jq program turns ``bindings`` into parameter sets
  (defaults ``stepscript: '[.]'``, ``postscript: '.'``);
* ``cases``: the first branch whose jq ``if`` holds runs.

What runs is a ``step`` (:class:`~mltoolkit.yadage.model.steps.StepSpec`) or a
nested ``workflow`` (:class:`~mltoolkit.yadage.model.workflow.Workflow`, defined
there because a workflow is made of stages; the forward references are resolved
when that module is imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, PositiveInt, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mltoolkit.yadage.model.base import (
    SCHEDULER_TYPES,
    UNKNOWN_TAG,
    UNSUPPORTED_TAG,
    SpecModel,
    UnknownType,
    Unsupported,
    check_jq,
    type_discriminator,
)
from mltoolkit.yadage.model.references import ParameterValue, parameters_as_mapping
from mltoolkit.yadage.model.steps import StepSpec

if TYPE_CHECKING:
    from mltoolkit.yadage.model.workflow import Workflow

__all__ = [
    "Case",
    "JqStage",
    "MultistepStage",
    "Scatter",
    "Scheduler",
    "SinglestepStage",
    "WorkflowOpts",
]


class Scatter(SpecModel):
    """How a multistep stage splits its parameters into steps."""

    method: Literal["zip", "cartesian"]
    parameters: list[str]


class WorkflowOpts(SpecModel):
    """Options of a nested workflow."""

    discover: bool = False

    @field_validator("discover")
    @classmethod
    def _no_discover(cls, value: bool) -> bool:
        if value:
            raise PydanticCustomError(
                "unsupported_feature",
                "workflow_opts.discover is not supported by this loader (it globs init files of "
                "subworkflows); pass the files as parameters instead",
                {},
            )
        return value


class _Runs(SpecModel):
    """Exactly one of ``step``, ``workflow`` or (where allowed) ``cases``."""

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict):
            choices = [key for key in ("step", "workflow", "cases") if key in cls.model_fields]
            given = [key for key in choices if data.get(key) is not None]
            if not given:
                raise PydanticCustomError(
                    "missing_runnable",
                    "missing {choices}: add what the stage runs",
                    {"choices": " or ".join(repr(key) for key in choices)},
                )
            if len(given) > 1:
                raise PydanticCustomError(
                    "ambiguous_runnable",
                    "has both {given}; keep exactly one of {choices}",
                    {
                        "given": " and ".join(repr(key) for key in given),
                        "choices": ", ".join(repr(key) for key in choices),
                        "subpath": [given[1]],
                    },
                )
        return data


class Case(_Runs):
    """One branch of ``cases``: a jq condition on the parameters and what to run."""

    condition: str = Field(alias="if")
    step: StepSpec | None = None
    workflow: Workflow | None = None

    @field_validator("condition")
    @classmethod
    def _compiles(cls, value: str) -> str:
        check_jq(value)
        return value


class _ParameterStage(_Runs):
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    step: StepSpec | None = None
    workflow: Workflow | None = None
    cases: list[Case] | None = None
    register_values: dict[str, ParameterValue] | None = None
    workflow_opts: WorkflowOpts | None = None

    @field_validator("parameters", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return parameters_as_mapping(value) if value is not None else {}


class SinglestepStage(_ParameterStage):
    """``singlestep-stage``: one step (or one nested workflow) with the resolved parameters."""

    scheduler_type: Literal["singlestep-stage"] = "singlestep-stage"


class MultistepStage(_ParameterStage):
    """``multistep-stage``: one step per element of the scattered parameters."""

    scheduler_type: Literal["multistep-stage"] = "multistep-stage"
    scatter: Scatter
    batchsize: PositiveInt | None = None
    partitionsize: PositiveInt | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MultistepStage:
        if self.batchsize is not None and self.partitionsize is not None:
            raise PydanticCustomError(
                "batch_and_partition",
                "has both batchsize and partitionsize; keep one",
                {"subpath": ["partitionsize"]},
            )
        for index, name in enumerate(self.scatter.parameters):
            if name not in self.parameters:
                raise PydanticCustomError(
                    "scatter_unknown",
                    "scatter parameter {name} is not among the stage's parameters ({known}); "
                    "add it to parameters or fix the name",
                    {
                        "name": repr(name),
                        "known": ", ".join(self.parameters) or "none",
                        "subpath": ["scatter", "parameters", index],
                    },
                )
        return self


class JqStage(_Runs):
    """``jq-stage``: a jq program turns ``bindings`` into one parameter set per step."""

    scheduler_type: Literal["jq-stage"] = "jq-stage"
    bindings: dict[str, Any] = Field(default_factory=dict)
    stepscript: str = "[.]"
    postscript: str = "."
    register_values: dict[str, ParameterValue] | None = None
    workflow_opts: WorkflowOpts | None = None
    step: StepSpec | None = None
    workflow: Workflow | None = None

    @field_validator("stepscript", "postscript")
    @classmethod
    def _compiles(cls, value: str) -> str:
        check_jq(value)
        return value

    @field_validator("bindings")
    @classmethod
    def _wflowrefs(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_wflowrefs(value, [])
        return value


def _check_wflowrefs(node: Any, path: list[Any]) -> None:
    """Refuse a ``{$wflowref: ...}`` in jq bindings that is not two compiling jq programs."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_wflowrefs(item, path + [index])
        return
    if not isinstance(node, dict):
        return
    if "$wflowref" not in node:
        for key, item in node.items():
            _check_wflowrefs(item, path + [key])
        return
    ref = node["$wflowref"]
    if not (isinstance(ref, list) and len(ref) == 2 and all(isinstance(x, str) for x in ref)):
        raise PydanticCustomError(
            "bad_wflowref",
            "$wflowref must be [NODE_SELECTOR_JQ, RESULT_JQ], found {found}",
            {"found": repr(ref), "subpath": path + ["$wflowref"]},
        )
    for program in ref:
        check_jq(program)


#: The scheduler of a stage, chosen by ``scheduler_type``.
Scheduler = Annotated[
    Annotated[SinglestepStage, Tag("singlestep-stage")]
    | Annotated[MultistepStage, Tag("multistep-stage")]
    | Annotated[JqStage, Tag("jq-stage")]
    | Annotated[Unsupported, Tag(UNSUPPORTED_TAG)]
    | Annotated[UnknownType, Tag(UNKNOWN_TAG)],
    type_discriminator("scheduler_type", SCHEDULER_TYPES),
]
