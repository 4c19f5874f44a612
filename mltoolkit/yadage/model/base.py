"""What every spec model shares: unknown keys are errors, type names are checked.

Type fields (``process_type``, ``environment_type``, ``publisher_type``,
``scheduler_type``) choose a model. A name yadage knows but this loader does not
implement (tarball environments, packtivity's interactive ``manual-publishing``...)
selects :class:`Unsupported`,
any other unknown name :class:`UnknownType`; both refuse with a message that says
which names are expected, so nothing is skipped silently.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Discriminator, model_validator
from pydantic_core import PydanticCustomError

from mltoolkit.yadage.selectors import compile_jq, is_plain_name, parse_jsonpath

__all__ = [
    "ENVIRONMENT_TYPES",
    "NULL_TAG",
    "PROCESS_TYPES",
    "PUBLISHER_TYPES",
    "SCHEDULER_TYPES",
    "UNKNOWN_TAG",
    "UNSUPPORTED_TAG",
    "SpecModel",
    "UnknownType",
    "Unsupported",
    "check_jq",
    "check_selector",
    "type_discriminator",
]

PROCESS_TYPES = ("string-interpolated-cmd", "interpolated-script-cmd", "manual-instructions-proc")
ENVIRONMENT_TYPES = ("localproc-env", "noop-env", "docker-encapsulated", "manual-instructions-env")
PUBLISHER_TYPES = (
    "frompar-pub",
    "interpolated-pub",
    "fromglob-pub",
    "fromyaml-pub",
    "constant-pub",
    "fromparjq-pub",
    "manual-instructions-pub",
)
SCHEDULER_TYPES = ("singlestep-stage", "multistep-stage", "jq-stage")
_TYPE_CHOICES = {
    "process_type": PROCESS_TYPES,
    "environment_type": ENVIRONMENT_TYPES,
    "publisher_type": PUBLISHER_TYPES,
    "scheduler_type": SCHEDULER_TYPES,
}

# Known to yadage/packtivity but not implemented here: reported, never skipped.
_UNSUPPORTED = {
    "process_type": {
        "test-process": "it is packtivity's internal test fixture",
    },
    "environment_type": {
        "tarball": "tarball environments download and unpack an environment archive",
        "umbrella": "umbrella environments need the umbrella tool",
    },
    "publisher_type": {
        "manual-publishing": (
            "it is packtivity's terminal prompt, outside yadage's schema; write "
            "'publisher_type: manual-instructions-pub' for a person to provide the values"
        ),
    },
    "scheduler_type": {
        "init-stage": "init stages are created by the engine, not written in specs",
    },
}

#: Union tag of the model that refuses a known but unimplemented type name.
UNSUPPORTED_TAG = "__unsupported__"
#: Union tag of the model that refuses an unknown type name.
UNKNOWN_TAG = "__unknown__"
#: Union tag of ``null`` where a part may be left out (``process: null``).
NULL_TAG = "__null__"


class SpecModel(BaseModel):
    """Base of all spec models: unknown keys are errors that name the allowed keys."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key {key}; expected one of: {allowed}",
                        {"key": repr(key), "allowed": ", ".join(allowed), "subpath": [key]},
                    )
        return data


def type_discriminator(field: str, choices: tuple[str, ...], *, nullable: bool = False) -> Discriminator:
    """Choose a union member by the type name in ``field`` (unsupported and unknown names included).

    With ``nullable``, ``None`` chooses the member tagged :data:`NULL_TAG`.
    """

    def choose(data: Any) -> str | None:
        if data is None and nullable:
            return NULL_TAG
        if isinstance(data, BaseModel):
            return getattr(data, field, None)
        if not isinstance(data, dict):
            return None
        tag = data.get(field)
        if not isinstance(tag, str):
            return None
        if tag in _UNSUPPORTED[field]:
            return UNSUPPORTED_TAG
        return tag if tag in choices else UNKNOWN_TAG

    choose.__name__ = field
    return Discriminator(
        choose,
        custom_error_type="missing_type",
        custom_error_message=f"missing or non-string {field!r}; expected one of: {', '.join(choices)}",
        # pydantic hands the context on as is; messages.py reads the subpath list from it
        custom_error_context={"subpath": [field]},  # type: ignore[dict-item]
    )


class UnknownType(BaseModel):
    """Stands for a type name that is neither supported nor known (most likely a typo)."""

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, data: Any) -> Any:
        for field, choices in _TYPE_CHOICES.items():
            if isinstance(data, dict) and isinstance(data.get(field), str):
                raise PydanticCustomError(
                    "unknown_type",
                    "found {found}, expected one of: {choices}",
                    {"found": repr(data[field]), "choices": ", ".join(choices), "subpath": [field]},
                )
        raise PydanticCustomError("unknown_type", "unknown type", {})


class Unsupported(BaseModel):
    """Stands for a construct that is recognised but not implemented."""

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, data: Any) -> Any:
        for field, known in _UNSUPPORTED.items():
            if isinstance(data, dict) and data.get(field) in known:
                raise PydanticCustomError(
                    "unsupported_feature",
                    "{field} {value} is not supported by this loader ({why})",
                    {"field": field, "value": repr(data[field]), "why": known[data[field]], "subpath": [field]},
                )
        raise PydanticCustomError("unsupported_feature", "unsupported construct", {})


def check_jq(program: str) -> None:
    """Refuse a jq program that does not compile (as a validation error of the field)."""
    try:
        compile_jq(program)
    except ValueError as error:
        raise PydanticCustomError("jq_syntax", "{message}", {"message": str(error)}) from None


def check_selector(text: str, what: str) -> None:
    """Refuse a stage selection that is neither a plain name nor valid JSONPath."""
    if is_plain_name(text):
        return
    try:
        parse_jsonpath(text)
    except ValueError as error:
        raise PydanticCustomError("bad_selector", "{what}: {message}", {"what": what, "message": str(error)}) from None
