"""Validate loaded spec data into the typed models: schema first, then the cross-stage checks."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mltoolkit.errors import SpecError
from mltoolkit.yadage.load import LoadedSpec, format_pointer
from mltoolkit.yadage.model.checks import Locate, check_workflow
from mltoolkit.yadage.model.messages import raise_validation_error
from mltoolkit.yadage.model.steps import StepSpec
from mltoolkit.yadage.model.workflow import Workflow

__all__ = ["validate_step", "validate_workflow"]


def _split(loaded: LoadedSpec | dict) -> tuple[LoadedSpec | None, Any]:
    if isinstance(loaded, LoadedSpec):
        return loaded, loaded.data
    return None, loaded


def _locator(spec: LoadedSpec | None, what: str) -> Locate:
    if spec is not None:
        return spec.where
    return lambda path: f"{what} #{format_pointer(path)}"


def validate_workflow(loaded: LoadedSpec | dict) -> Workflow:
    """Validate a loaded workflow spec into a :class:`Workflow` with yadage's defaults.

    Besides the schema, checks that stage names are safe folder names, unique and
    not ``init``, that dependencies and references name existing stages, that
    there are no dependency cycles. A stage that reads from a stage it does not
    depend on is made to depend on it, with a line in ``workflow.warnings``.

    Raises:
        UnsupportedFeatureError: a construct yadage knows that this loader does not run.
        SpecError: anything else; one line with file, line, JSON pointer, stage and
            key, what was found and what was expected. ``error.problems`` lists every
            problem when there are several.
    """
    spec, data = _split(loaded)
    what = "workflow"
    if not isinstance(data, dict):
        where = spec.where() if spec else what
        raise SpecError(f"{where}: found {type(data).__name__}, expected a mapping with a 'stages' list")
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        raise_validation_error(exc, data, spec, what)
    workflow.locate(spec.where() if spec else what)
    check_workflow(workflow, [], _locator(spec, what), workflow.warn)
    return workflow


def validate_step(loaded: LoadedSpec | dict) -> StepSpec:
    """Validate one step definition (process, environment, publisher).

    Raises:
        UnsupportedFeatureError / SpecError: as :func:`validate_workflow`.
    """
    spec, data = _split(loaded)
    if not isinstance(data, dict):
        where = spec.where() if spec else "step"
        raise SpecError(
            f"{where}: found {type(data).__name__}, expected a mapping with process, environment, publisher"
        )
    try:
        return StepSpec.model_validate(data)
    except ValidationError as exc:
        raise_validation_error(exc, data, spec, "step")
