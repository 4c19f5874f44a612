"""A workflow: a list of stages, each with its dependencies and its scheduler.

A stage is a named rule: when its dependencies are ready (``jsonpath_ready``:
every expression selects finished stages; ``expressions_fulfilled``: every
reference resolves), its scheduler adds steps. ``dependencies`` may be written
as a plain list of expressions (or left out: no dependencies). The virtual
stage ``init`` holds the inputs. A stage's name names its step folders, so it
must be a safe folder name (:mod:`~mltoolkit.yadage.model.names`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mltoolkit.workdir.layout import INIT_DIR
from mltoolkit.yadage.model.base import SpecModel, check_selector
from mltoolkit.yadage.model.names import NAME_RULE, name_problem
from mltoolkit.yadage.model.references import OutputReference
from mltoolkit.yadage.model.stages import Case, JqStage, MultistepStage, Scheduler, SinglestepStage

__all__ = ["Dependencies", "Stage", "Workflow"]


class Dependencies(SpecModel):
    """When a stage may be applied: every expression ready (JSONPath) or fulfilled (references)."""

    dependency_type: Literal["jsonpath_ready", "expressions_fulfilled"] = "jsonpath_ready"
    expressions: list[Any] = Field(default_factory=list)

    @model_validator(mode="after")
    def _expressions_match_type(self) -> Dependencies:
        check = _jsonpath_expression if self.dependency_type == "jsonpath_ready" else _reference_expression
        self.expressions = [check(expression, index) for index, expression in enumerate(self.expressions)]
        return self


def _jsonpath_expression(expression: Any, index: int) -> str:
    if not isinstance(expression, str):
        raise PydanticCustomError(
            "bad_dependency",
            "found {found}, expected a stage name or JSONPath string",
            {"found": repr(expression), "subpath": ["expressions", index]},
        )
    check_selector(expression, "dependency")
    return expression


def _reference_expression(expression: Any, index: int) -> OutputReference:
    if isinstance(expression, dict):
        try:
            return OutputReference.model_validate(expression)
        except ValidationError:
            pass
    raise PydanticCustomError(
        "bad_dependency",
        "found {found}, expected a reference {stages: NAME, output: KEY} (dependency_type expressions_fulfilled)",
        {"found": repr(expression), "subpath": ["expressions", index]},
    )


class Stage(SpecModel):
    """A named rule: when its dependencies are ready, its scheduler adds steps."""

    name: str
    dependencies: Dependencies = Field(default_factory=Dependencies)
    scheduler: Scheduler

    _where: str = PrivateAttr(default="")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if name == INIT_DIR:
            raise PydanticCustomError("bad_name", "stage name 'init' is reserved for the inputs", {})
        problem = name_problem(name)
        if problem is not None:
            raise PydanticCustomError(
                "bad_name",
                "stage name {name} cannot name a folder ({problem}); expected {rule}",
                {"name": repr(name), "problem": problem, "rule": NAME_RULE},
            )
        return name

    @field_validator("dependencies", mode="before")
    @classmethod
    def _list_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"dependency_type": "jsonpath_ready", "expressions": value}
        if value is None:
            return {}
        return value

    @property
    def where(self) -> str:
        """Where the stage is defined (file, line, pointer), for messages."""
        return self._where or f"stage {self.name!r}"

    def locate(self, where: str) -> None:
        """Remember where the stage is defined (set by validation)."""
        self._where = where


class Workflow(SpecModel):
    """A list of stages; the virtual stage ``init`` holds the inputs."""

    stages: list[Stage]

    _where: str = PrivateAttr(default="")
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def where(self) -> str:
        """Where the workflow is defined, for messages."""
        return self._where or "workflow"

    @property
    def warnings(self) -> list[str]:
        """What validation added because the spec implies it without saying so, one line each.

        Collected on the workflow that was validated (nested workflows' lines included).
        """
        return list(self._warnings)

    def warn(self, line: str) -> None:
        """Add a warning line (set by validation)."""
        if line not in self._warnings:
            self._warnings.append(line)

    def locate(self, where: str) -> None:
        """Remember where the workflow is defined (set by validation)."""
        self._where = where

    def stage(self, name: str) -> Stage:
        """The stage called ``name``.

        Raises:
            KeyError: no such stage.
        """
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


# The stage models refer to Workflow (a stage may run a nested workflow): resolve that now.
Case.model_rebuild()
SinglestepStage.model_rebuild()
MultistepStage.model_rebuild()
JqStage.model_rebuild()
Stage.model_rebuild()
Workflow.model_rebuild()
