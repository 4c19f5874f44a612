"""Parameter values: literals, references to published outputs, registered values.

yadage's ``raw_with_defaults`` loader accepts references written as
``{step|stages|steps: ..., output: ...}`` without ``expression_type``, and
``parameters`` as a mapping as well as the canonical ``[{key, value}]`` list;
so do these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Tag, model_validator
from pydantic_core import PydanticCustomError

from mltoolkit.yadage.model.base import SpecModel, check_selector
from mltoolkit.yadage.selectors import parse_jsonpath

__all__ = [
    "REFERENCE_KEYS",
    "OutputReference",
    "ParameterValue",
    "ValueReference",
    "is_reference",
    "parameters_as_mapping",
]

#: The keys that make a mapping a reference to published outputs.
REFERENCE_KEYS = ("step", "stages", "steps")


class OutputReference(SpecModel):
    """``{stages|steps|step: SELECTION, output: KEY, unwrap, flatten}``: values published upstream."""

    expression_type: Literal["stage-output-selector"] = "stage-output-selector"
    stages: str | None = None
    steps: str | None = None
    step: str | None = None
    output: str | None = None
    unwrap: bool = False
    flatten: bool = False

    @model_validator(mode="after")
    def _one_selector(self) -> OutputReference:
        given = [key for key in REFERENCE_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "reference_selector",
                "a reference needs exactly one of 'step', 'stages' (alias 'steps'), found {found}",
                {"found": ", ".join(given) or "none"},
            )
        check_selector(self.selection, "stage selection")
        if self.output is not None and self.output not in ("", "$"):
            try:
                parse_jsonpath(self.output)
            except ValueError as error:
                raise PydanticCustomError(
                    "bad_selector", "output: {message}", {"message": str(error), "subpath": ["output"]}
                ) from None
        return self

    @property
    def selection(self) -> str:
        """The stage/step selection expression."""
        return self.stages or self.steps or self.step or ""

    @property
    def single(self) -> bool:
        """True for the ``step:`` form, which selects exactly one step and one value."""
        return self.step is not None


class ValueReference(SpecModel):
    """``{expression_type: fromvalue, key: K}``: a value registered with ``register_values``."""

    expression_type: Literal["fromvalue"]
    key: str


def is_reference(value: Any) -> bool:
    """True for the reference objects of the model (output or registered-value references)."""
    return isinstance(value, (OutputReference, ValueReference))


def _parameter_kind(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        return "value" if isinstance(data, ValueReference) else "reference"
    if not isinstance(data, dict):
        return "literal"
    kind = data.get("expression_type")
    if kind == "fromvalue":
        return "value"
    if kind == "stage-output-selector" or any(key in data for key in REFERENCE_KEYS):
        return "reference"
    return None


#: A parameter: a reference, a registered value, or any literal that is not a mapping.
ParameterValue = Annotated[
    Annotated[OutputReference, Tag("reference")]
    | Annotated[ValueReference, Tag("value")]
    | Annotated[Any, Tag("literal")],
    Discriminator(
        _parameter_kind,
        custom_error_type="bad_parameter",
        custom_error_message=(
            "a mapping value must be a reference such as {step: NAME, output: KEY} or "
            "{stages: NAME, output: KEY, flatten: true} (or {expression_type: fromvalue, key: K})"
        ),
    ),
]


def parameters_as_mapping(value: Any) -> Any:
    """The canonical ``[{key, value}]`` parameter list as a mapping; anything else unchanged."""
    if isinstance(value, list) and all(
        isinstance(item, dict) and set(item) <= {"key", "value"} and "key" in item for item in value
    ):
        return {item["key"]: item.get("value") for item in value}
    return value
