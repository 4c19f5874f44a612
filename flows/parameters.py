"""Typed flow parameters, so the Prefect UI shows a form with validation instead of raw JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mltoolkit.analysis.classifiers import ClassifierSpec, registered_names

__all__ = ["ClassifierName", "ClassifierParameter", "CustomClassifier", "to_parameter", "to_spec"]

#: One of the registered classifier names (a drop-down in the UI). The registry is only
#: known at run time, so type checkers see a plain string.
if TYPE_CHECKING:
    ClassifierName = str
else:
    ClassifierName = Literal[tuple(registered_names())]


class CustomClassifier(BaseModel):
    """Any scikit-learn classifier, given by import path and constructor parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Label for the figure, the score table and the output file name.",
        pattern=r"^[A-Za-z0-9_.\-]+$",
        examples=["forest"],
    )
    estimator: str = Field(
        description="Import path of the estimator class.",
        pattern=r"^[A-Za-z_][\w.]*([.:][A-Za-z_]\w*)$",
        examples=["sklearn.ensemble.RandomForestClassifier"],
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of the estimator's constructor.",
        examples=[{"n_estimators": 50, "random_state": 0}],
    )


ClassifierParameter = ClassifierName | CustomClassifier


def to_spec(parameter: ClassifierParameter | dict[str, Any] | ClassifierSpec) -> ClassifierSpec:
    """Convert a flow parameter entry into the toolkit's :class:`ClassifierSpec`."""
    from mltoolkit.analysis.classifiers import parse_classifier

    if isinstance(parameter, CustomClassifier):
        parameter = parameter.model_dump()
    return parse_classifier(parameter)


def to_parameter(spec: ClassifierSpec) -> str | dict[str, Any]:
    """Convert a :class:`ClassifierSpec` into a JSON-ready flow parameter entry."""
    if spec.estimator is None:
        return spec.name
    return {"name": spec.name, "estimator": spec.estimator, "params": dict(spec.params)}
