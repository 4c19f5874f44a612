"""Typed flow parameters, so the Prefect UI shows a form with validation instead of raw JSON.

The native flow takes its classifiers as two parameters: ``classifiers``, a list of
registered names (a multi-select in the UI, and a bad name is refused with the
valid names listed), and ``custom_classifiers``, any scikit-learn classifier given
by import path. The toolkit itself (and ``inputs.yml``) knows one list that mixes
both; :func:`split_classifiers` and :func:`to_specs` convert between the two forms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mltoolkit.analysis.classifiers import ClassifierSpec, registered_names

__all__ = ["ClassifierName", "CustomClassifier", "split_classifiers", "to_parameter", "to_spec", "to_specs"]

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
    position: int | None = Field(
        default=None,
        ge=0,
        description="Its place among all the classifiers (0 = first); empty: after the registered ones.",
    )


def to_spec(parameter: str | CustomClassifier | dict[str, Any] | ClassifierSpec) -> ClassifierSpec:
    """Convert a flow parameter entry into the toolkit's :class:`ClassifierSpec`."""
    from mltoolkit.analysis.classifiers import parse_classifier

    if isinstance(parameter, CustomClassifier):
        parameter = parameter.model_dump(exclude={"position"})
    return parse_classifier(parameter)


def to_specs(names: Iterable[str], custom: Iterable[CustomClassifier] | None = None) -> list[ClassifierSpec]:
    """The classifiers a native flow run trains, in order.

    The registered ``names`` in their order; each ``custom`` classifier at its
    ``position`` (in increasing order of position), the others after them all.
    """
    specs = [to_spec(name) for name in names]
    entries = list(custom or [])
    placed = sorted((entry for entry in entries if entry.position is not None), key=lambda entry: entry.position or 0)
    for entry in placed:
        specs.insert(min(entry.position or 0, len(specs)), to_spec(entry))
    return specs + [to_spec(entry) for entry in entries if entry.position is None]


def split_classifiers(specs: Iterable[ClassifierSpec]) -> tuple[list[str], list[dict[str, Any]]]:
    """The flow's two parameters for ``specs``: registered names, and custom classifiers as mappings.

    :func:`to_specs` restores the order of ``specs``: when a custom classifier comes
    before a registered one, every custom classifier is given its ``position``.
    """
    names: list[str] = []
    custom: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        entry = to_parameter(spec)
        if isinstance(entry, str):
            names.append(entry)
        else:
            custom.append({**entry, "position": index})
    if all(entry["position"] >= len(names) for entry in custom):  # already last: no positions needed
        custom = [{key: value for key, value in entry.items() if key != "position"} for entry in custom]
    return names, custom


def to_parameter(spec: ClassifierSpec) -> str | dict[str, Any]:
    """Convert a :class:`ClassifierSpec` into a JSON-ready flow parameter entry."""
    if spec.estimator is None:
        return spec.name
    return {"name": spec.name, "estimator": spec.estimator, "params": dict(spec.params)}
