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
does not implement (manual steps, tarball/umbrella environments, environment
``resources``...) raise :class:`~mltoolkit.errors.UnsupportedFeatureError`
instead of being skipped.

Defaults (from the schemas): ``interpreter: sh``; ``imagetag: latest``;
``glob: false`` and ``relative_paths: false`` for ``interpolated-pub``;
``script: '.'`` (and ``tryExact: true``) for ``fromparjq-pub``;
``stepscript: '[.]'`` and ``postscript: '.'`` for ``jq-stage``; no dependencies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mltoolkit.errors import SpecError, UnsupportedFeatureError
from mltoolkit.yadage.load import LoadedSpec, format_pointer
from mltoolkit.yadage.selectors import compile_jq, is_plain_name, parse_jsonpath, root_stage

__all__ = [
    "ENVIRONMENT_TYPES",
    "PROCESS_TYPES",
    "PUBLISHER_TYPES",
    "SCHEDULER_TYPES",
    "Case",
    "ConstantPub",
    "Dependencies",
    "DockerEncapsulatedEnv",
    "FromGlobPub",
    "FromParJqPub",
    "FromParPub",
    "FromYamlPub",
    "InterpolatedPub",
    "InterpolatedScriptCmd",
    "JqStage",
    "LocalProcEnv",
    "MultistepStage",
    "NoopEnv",
    "OutputReference",
    "ParMount",
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
    "validate_step",
    "validate_workflow",
]

PROCESS_TYPES = ("string-interpolated-cmd", "interpolated-script-cmd")
ENVIRONMENT_TYPES = ("localproc-env", "noop-env", "docker-encapsulated")
PUBLISHER_TYPES = (
    "frompar-pub",
    "interpolated-pub",
    "fromglob-pub",
    "fromyaml-pub",
    "constant-pub",
    "fromparjq-pub",
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
        "manual-instructions-proc": "it asks a person to do the work interactively",
        "test-process": "it is packtivity's internal test fixture",
    },
    "environment_type": {
        "manual-instructions-env": "it asks a person to set up the environment interactively",
        "tarball": "tarball environments download and unpack an environment archive",
        "umbrella": "umbrella environments need the umbrella tool",
    },
    "publisher_type": {
        "manual-publishing": "it asks a person to type the published JSON",
        "manual-instructions-pub": "it asks a person to type the published JSON",
    },
    "scheduler_type": {
        "init-stage": "init stages are created by the engine, not written in specs",
    },
}

_UNSUPPORTED_TAG = "__unsupported__"
_UNKNOWN_TAG = "__unknown__"
_REFERENCE_KEYS = ("step", "stages", "steps")


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


def _unsupported_discriminator(field: str, choices: tuple[str, ...]):
    def choose(data: Any) -> str | None:
        if isinstance(data, BaseModel):
            return getattr(data, field, None)
        if not isinstance(data, dict):
            return None
        tag = data.get(field)
        if isinstance(tag, str) and tag in _UNSUPPORTED[field]:
            return _UNSUPPORTED_TAG
        if isinstance(tag, str) and tag not in choices:
            return _UNKNOWN_TAG
        return tag if isinstance(tag, str) else None

    choose.__name__ = field
    return Discriminator(
        choose,
        custom_error_type="missing_type",
        custom_error_message=f"missing or non-string {field!r}; expected one of: {', '.join(choices)}",
        custom_error_context={"subpath": [field]},
    )


class _UnknownType(BaseModel):
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


class _Unsupported(BaseModel):
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


# --- process -------------------------------------------------------------------------------


class StringInterpolatedCmd(SpecModel):
    """``string-interpolated-cmd``: a shell command line with ``{name}`` placeholders."""

    process_type: Literal["string-interpolated-cmd"] = "string-interpolated-cmd"
    cmd: str


class InterpolatedScriptCmd(SpecModel):
    """``interpolated-script-cmd``: a script with ``{name}`` placeholders, run by ``interpreter``."""

    process_type: Literal["interpolated-script-cmd"] = "interpolated-script-cmd"
    script: str
    interpreter: str = "sh"


Process = Annotated[
    Annotated[StringInterpolatedCmd, Tag("string-interpolated-cmd")]
    | Annotated[InterpolatedScriptCmd, Tag("interpolated-script-cmd")]
    | Annotated[_Unsupported, Tag(_UNSUPPORTED_TAG)]
    | Annotated[_UnknownType, Tag(_UNKNOWN_TAG)],
    _unsupported_discriminator("process_type", PROCESS_TYPES),
]


# --- environment ---------------------------------------------------------------------------


class LocalProcEnv(SpecModel):
    """``localproc-env``: run on this machine as is."""

    environment_type: Literal["localproc-env"] = "localproc-env"


class NoopEnv(SpecModel):
    """``noop-env``: run nothing, only publish."""

    environment_type: Literal["noop-env"] = "noop-env"


class ParMount(SpecModel):
    """A file made from the parameters (jq program) and mounted at ``mountpath``."""

    jqscript: str
    mountpath: str

    @field_validator("jqscript")
    @classmethod
    def _compiles(cls, value: str) -> str:
        _check_jq(value)
        return value


class DockerEncapsulatedEnv(SpecModel):
    """``docker-encapsulated``: run inside ``image:imagetag``."""

    environment_type: Literal["docker-encapsulated"] = "docker-encapsulated"
    image: str
    imagetag: str = "latest"
    resources: list[Any] = Field(default_factory=list)
    envscript: str = ""
    env: dict[str, str | int | float | bool] = Field(default_factory=dict)
    workdir: str | None = None
    par_mounts: list[ParMount] = Field(default_factory=list)

    @field_validator("resources")
    @classmethod
    def _no_resources(cls, value: list[Any]) -> list[Any]:
        if value:
            names = ", ".join(str(item if not isinstance(item, dict) else next(iter(item), item)) for item in value)
            raise PydanticCustomError(
                "unsupported_feature",
                "environment resources ({names}) are not supported by this loader (they need "
                "site services such as CVMFS or grid credentials)",
                {"names": names},
            )
        return value

    @field_validator("imagetag", mode="before")
    @classmethod
    def _tag_as_text(cls, value: Any) -> Any:
        # YAML reads `imagetag: 1.0` as a float; the tag is meant as text.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @property
    def full_image(self) -> str:
        """``image:tag`` (the image's own tag wins when it has one)."""
        last = self.image.rsplit("/", 1)[-1]
        if ":" in last or "@" in last:
            return self.image
        return f"{self.image}:{self.imagetag}"


Environment = Annotated[
    Annotated[LocalProcEnv, Tag("localproc-env")]
    | Annotated[NoopEnv, Tag("noop-env")]
    | Annotated[DockerEncapsulatedEnv, Tag("docker-encapsulated")]
    | Annotated[_Unsupported, Tag(_UNSUPPORTED_TAG)]
    | Annotated[_UnknownType, Tag(_UNKNOWN_TAG)],
    _unsupported_discriminator("environment_type", ENVIRONMENT_TYPES),
]


# --- publisher -----------------------------------------------------------------------------


class FromParPub(SpecModel):
    """``frompar-pub``: publish parameters; ``outputmap`` leaves name parameters."""

    publisher_type: Literal["frompar-pub"] = "frompar-pub"
    outputmap: dict[str, Any]


class InterpolatedPub(SpecModel):
    """``interpolated-pub``: publish ``publish`` with ``{name}``/``{workdir}`` filled in."""

    publisher_type: Literal["interpolated-pub"] = "interpolated-pub"
    publish: dict[str, Any] | list[Any] | str | bool | int | float
    glob: bool = False
    relative_paths: bool = False


class FromGlobPub(SpecModel):
    """``fromglob-pub``: publish the files matching ``globexpression`` in the workdir."""

    publisher_type: Literal["fromglob-pub"] = "fromglob-pub"
    globexpression: str
    outputkey: str


class FromYamlPub(SpecModel):
    """``fromyaml-pub``: publish the content of a YAML file the step wrote."""

    publisher_type: Literal["fromyaml-pub"] = "fromyaml-pub"
    yamlfile: str


class ConstantPub(SpecModel):
    """``constant-pub``: publish a constant mapping."""

    publisher_type: Literal["constant-pub"] = "constant-pub"
    publish: dict[str, Any]


class FromParJqPub(SpecModel):
    """``fromparjq-pub``: publish a jq transformation of the parameters."""

    publisher_type: Literal["fromparjq-pub"] = "fromparjq-pub"
    script: str = "."
    glob: bool = False
    relative_paths: bool = False
    tryExact: bool = True

    @field_validator("script")
    @classmethod
    def _compiles(cls, value: str) -> str:
        _check_jq(value)
        return value


Publisher = Annotated[
    Annotated[FromParPub, Tag("frompar-pub")]
    | Annotated[InterpolatedPub, Tag("interpolated-pub")]
    | Annotated[FromGlobPub, Tag("fromglob-pub")]
    | Annotated[FromYamlPub, Tag("fromyaml-pub")]
    | Annotated[ConstantPub, Tag("constant-pub")]
    | Annotated[FromParJqPub, Tag("fromparjq-pub")]
    | Annotated[_Unsupported, Tag(_UNSUPPORTED_TAG)]
    | Annotated[_UnknownType, Tag(_UNKNOWN_TAG)],
    _unsupported_discriminator("publisher_type", PUBLISHER_TYPES),
]


class StepSpec(SpecModel):
    """A packtivity: what to run (process), where (environment), what it publishes."""

    process: Process
    environment: Environment
    publisher: Publisher


# --- parameters and references -------------------------------------------------------------


def _check_jq(program: str) -> None:
    try:
        compile_jq(program)
    except ValueError as error:
        raise PydanticCustomError("jq_syntax", "{message}", {"message": str(error)}) from None


def _check_selector(text: str, what: str) -> None:
    if is_plain_name(text):
        return
    try:
        parse_jsonpath(text)
    except ValueError as error:
        raise PydanticCustomError("bad_selector", "{what}: {message}", {"what": what, "message": str(error)}) from None


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
        given = [key for key in _REFERENCE_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "reference_selector",
                "a reference needs exactly one of 'step', 'stages' (alias 'steps'), found {found}",
                {"found": ", ".join(given) or "none"},
            )
        _check_selector(self.selection, "stage selection")
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
    if kind == "stage-output-selector" or any(key in data for key in _REFERENCE_KEYS):
        return "reference"
    return None


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


def _parameters_as_mapping(value: Any) -> Any:
    # The canonical schema form is a list of {key, value}; the shorthand a mapping.
    if isinstance(value, list) and all(
        isinstance(item, dict) and set(item) <= {"key", "value"} and "key" in item for item in value
    ):
        return {item["key"]: item.get("value") for item in value}
    return value


# --- stages --------------------------------------------------------------------------------


class Dependencies(SpecModel):
    """When a stage may be applied: every expression ready (JSONPath) or fulfilled (references)."""

    dependency_type: Literal["jsonpath_ready", "expressions_fulfilled"] = "jsonpath_ready"
    expressions: list[Any] = Field(default_factory=list)

    @model_validator(mode="after")
    def _expressions_match_type(self) -> Dependencies:
        checked: list[Any] = []
        for index, expression in enumerate(self.expressions):
            if self.dependency_type == "jsonpath_ready":
                if not isinstance(expression, str):
                    raise PydanticCustomError(
                        "bad_dependency",
                        "found {found}, expected a stage name or JSONPath string",
                        {"found": repr(expression), "subpath": ["expressions", index]},
                    )
                _check_selector(expression, "dependency")
                checked.append(expression)
            else:
                if isinstance(expression, dict):
                    try:
                        checked.append(OutputReference.model_validate(expression))
                        continue
                    except ValidationError:
                        pass
                raise PydanticCustomError(
                    "bad_dependency",
                    "found {found}, expected a reference {stages: NAME, output: KEY} "
                    "(dependency_type expressions_fulfilled)",
                    {"found": repr(expression), "subpath": ["expressions", index]},
                )
        self.expressions = checked
        return self


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
        _check_jq(value)
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
        return _parameters_as_mapping(value) if value is not None else {}


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
        _check_jq(value)
        return value

    @field_validator("bindings")
    @classmethod
    def _wflowrefs(cls, value: dict[str, Any]) -> dict[str, Any]:
        def visit(node: Any, path: list[Any]) -> None:
            if isinstance(node, dict):
                if "$wflowref" in node:
                    ref = node["$wflowref"]
                    if not (isinstance(ref, list) and len(ref) == 2 and all(isinstance(x, str) for x in ref)):
                        raise PydanticCustomError(
                            "bad_wflowref",
                            "$wflowref must be [NODE_SELECTOR_JQ, RESULT_JQ], found {found}",
                            {"found": repr(ref), "subpath": path + ["$wflowref"]},
                        )
                    for program in ref:
                        _check_jq(program)
                    return
                for key, item in node.items():
                    visit(item, path + [key])
            elif isinstance(node, list):
                for index, item in enumerate(node):
                    visit(item, path + [index])

        visit(value, [])
        return value


Scheduler = Annotated[
    Annotated[SinglestepStage, Tag("singlestep-stage")]
    | Annotated[MultistepStage, Tag("multistep-stage")]
    | Annotated[JqStage, Tag("jq-stage")]
    | Annotated[_Unsupported, Tag(_UNSUPPORTED_TAG)]
    | Annotated[_UnknownType, Tag(_UNKNOWN_TAG)],
    _unsupported_discriminator("scheduler_type", SCHEDULER_TYPES),
]


class Stage(SpecModel):
    """A named rule: when its dependencies are ready, its scheduler adds steps."""

    name: str
    dependencies: Dependencies = Field(default_factory=Dependencies)
    scheduler: Scheduler

    _where: str = PrivateAttr(default="")

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


class Workflow(SpecModel):
    """A list of stages; the virtual stage ``init`` holds the inputs."""

    stages: list[Stage]

    _where: str = PrivateAttr(default="")

    @property
    def where(self) -> str:
        """Where the workflow is defined, for messages."""
        return self._where or "workflow"

    def stage(self, name: str) -> Stage:
        """The stage called ``name``.

        Raises:
            KeyError: no such stage.
        """
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


Case.model_rebuild()
SinglestepStage.model_rebuild()
MultistepStage.model_rebuild()
JqStage.model_rebuild()
Stage.model_rebuild()
Workflow.model_rebuild()


# --- turning errors into one line ----------------------------------------------------------

_HINTS = {
    "missing": "add it",
    "unknown_key": "remove or rename it",
    "literal_error": "use one of the expected values",
    "union_tag_invalid": "use one of the expected values",
    "missing_type": "add it",
    "unknown_type": "use one of the expected values",
    "unsupported_feature": "rewrite that part of the spec or run it with yadage itself",
    "jq_syntax": "fix the jq program",
    "bad_selector": "fix the expression",
    "bad_parameter": "fix the value",
    "reference_selector": "keep one",
    # these messages already say how to fix the problem
    "scatter_unknown": "",
    "batch_and_partition": "",
    "missing_runnable": "",
    "ambiguous_runnable": "",
}


def _walk(data: Any, loc: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """Map a pydantic error location to a path in the data (dropping union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
            path.append(part)
        elif (
            isinstance(node, (dict, list))
            and isinstance(part, str)
            and (
                part in ("reference", "value", "literal", _UNSUPPORTED_TAG, _UNKNOWN_TAG)
                or part in PROCESS_TYPES + ENVIRONMENT_TYPES + PUBLISHER_TYPES + SCHEDULER_TYPES
                or part.endswith("]")  # pydantic's tags for Optional[...] / list[...] branches
            )
        ):
            continue
        else:
            path.append(part)
            node = None
    return path, node


def _stage_chain(data: Any, path: list[Any]) -> tuple[list[str], int]:
    """Names of the (nested) stages ``path`` goes through, and where the innermost starts."""
    names: list[str] = []
    start = 0
    node = data
    for index, part in enumerate(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent_key = path[index - 1] if index else None
            node = node[part]
            if parent_key == "stages" and isinstance(node, dict):
                names.append(str(node.get("name", f"#{part}")))
                start = index + 1
        else:
            break
    return names, start


def _describe_value(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _error_line(error: dict, data: Any, loaded: LoadedSpec | None, what: str) -> str:
    context = error.get("ctx") or {}
    path, _node = _walk(data, tuple(error["loc"]))
    subpath = list(context.get("subpath", []))
    if error["type"] == "missing":
        # the missing key is part of loc already; point at the mapping that lacks it
        missing_key = path.pop() if path else "?"
        problem = f"missing required key {missing_key!r}"
    elif error["type"] in (
        "unknown_key",
        "missing_type",
        "unknown_type",
        "unsupported_feature",
        "bad_dependency",
        "scatter_unknown",
        "batch_and_partition",
        "ambiguous_runnable",
        "missing_runnable",
        "reference_selector",
        "bad_selector",
        "jq_syntax",
        "bad_wflowref",
        "bad_parameter",
    ):
        problem = error["msg"]
        path = path + subpath
    elif error["type"] in ("literal_error", "union_tag_invalid"):
        expected = context.get("expected") or context.get("expected_tags") or ""
        found = error.get("input") if error["type"] == "literal_error" else context.get("tag")
        if error["type"] == "union_tag_invalid":
            path = path + [str(context.get("discriminator", "")).rstrip("()")]
        problem = f"found {found!r}, expected {expected}"
    else:
        message = str(error["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        message = message.replace("Input should be", "expected")
        problem = f"found {_describe_value(error.get('input'))}, {message[0].lower() + message[1:]}"
    names, start = _stage_chain(data, path)
    key = ".".join(str(part) for part in path[start:]) or "(the mapping itself)"
    where = loaded.where(path) if loaded is not None else f"{what} #{format_pointer(path)}"
    stage = f"stage {' > '.join(repr(n) for n in names)}, " if names else ""
    hint = _HINTS.get(error["type"], "fix it there")
    return f"{where}: {stage}key {key}: {problem}" + (f"; {hint}" if hint else "")


def _raise_for(exc: ValidationError, data: Any, loaded: LoadedSpec | None, what: str) -> None:
    errors = exc.errors(include_url=False)
    # An unsupported construct needs another fix than a typo: report it first.
    errors.sort(key=lambda error: error["type"] != "unsupported_feature")
    lines = [_error_line(error, data, loaded, what) for error in errors]
    first = lines[0]
    if len(lines) > 1:
        first += f" (and {len(lines) - 1} more problem{'s' if len(lines) > 2 else ''})"
    error_type = UnsupportedFeatureError if errors[0]["type"] == "unsupported_feature" else SpecError
    error = error_type(first)
    error.problems = lines  # type: ignore[attr-defined]
    raise error from None


# --- cross-stage checks --------------------------------------------------------------------


def _references_of(stage: Stage) -> list[tuple[list[Any], OutputReference]]:
    scheduler = stage.scheduler
    found: list[tuple[list[Any], OutputReference]] = []
    for key, value in getattr(scheduler, "parameters", {}).items():
        if isinstance(value, OutputReference):
            found.append((["scheduler", "parameters", key], value))
    for key, value in (getattr(scheduler, "register_values", None) or {}).items():
        if isinstance(value, OutputReference):
            found.append((["scheduler", "register_values", key], value))
    if stage.dependencies.dependency_type == "expressions_fulfilled":
        for index, value in enumerate(stage.dependencies.expressions):
            found.append((["dependencies", "expressions", index], value))
    return found


def _dependency_roots(stage: Stage) -> list[tuple[int, str | None]]:
    if stage.dependencies.dependency_type == "jsonpath_ready":
        return [(index, root_stage(expr)) for index, expr in enumerate(stage.dependencies.expressions)]
    return [(index, root_stage(ref.selection)) for index, ref in enumerate(stage.dependencies.expressions)]


def _check_workflow(workflow: Workflow, path: list[Any], loaded: LoadedSpec | None, what: str) -> None:
    def where(sub: list[Any]) -> str:
        return loaded.where(sub) if loaded is not None else f"{what} #{format_pointer(sub)}"

    names: dict[str, int] = {}
    for index, stage in enumerate(workflow.stages):
        stage_path = path + ["stages", index]
        stage._where = where(stage_path)
        if stage.name == "init":
            raise SpecError(
                f"{where(stage_path + ['name'])}: stage name 'init' is reserved for the inputs; rename the stage"
            )
        if stage.name in names:
            raise SpecError(
                f"{where(stage_path + ['name'])}: stage name {stage.name!r} is used twice "
                f"(also stage #{names[stage.name]}); stage names must be unique within a workflow"
            )
        names[stage.name] = index
    known = set(names) | {"init"}
    listing = ", ".join(["init", *names])

    direct: dict[str, set[str]] = {}
    open_ended: set[str] = set()
    for index, stage in enumerate(workflow.stages):
        stage_path = path + ["stages", index]
        deps: set[str] = set()
        for position, root in _dependency_roots(stage):
            sub = stage_path + ["dependencies", "expressions", position]
            if root is None:
                open_ended.add(stage.name)
                continue
            if root not in known:
                raise SpecError(
                    f"{where(sub)}: stage {stage.name!r} depends on unknown stage {root!r}; expected one of: {listing}"
                )
            if root == stage.name:
                raise SpecError(f"{where(sub)}: stage {stage.name!r} depends on itself; remove that dependency")
            deps.add(root)
        direct[stage.name] = deps

    # Dependency cycles would leave the stages waiting forever.
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in sorted(direct.get(name, ())):
            if dep == "init":
                continue
            if state.get(dep) == 1:
                cycle = " -> ".join(trail[trail.index(dep) :] + [dep]) if dep in trail else f"{name} -> {dep}"
                stage_index = names[name]
                raise SpecError(
                    f"{where(path + ['stages', stage_index, 'dependencies'])}: stages depend on each other "
                    f"in a cycle ({cycle}); none of them could ever start: remove one dependency"
                )
            if state.get(dep) != 2:
                visit(dep, trail + [dep])
        state[name] = 2

    for name in names:
        if state.get(name) != 2:
            visit(name, [name])

    closure: dict[str, set[str]] = {}

    def reach(name: str) -> set[str]:
        if name not in closure:
            closure[name] = set()
            result = {"init"}
            for dep in direct.get(name, ()):
                result.add(dep)
                if dep != "init":
                    result |= reach(dep)
            closure[name] = result
        return closure[name]

    for index, stage in enumerate(workflow.stages):
        stage_path = path + ["stages", index]
        for sub, reference in _references_of(stage):
            root = root_stage(reference.selection)
            if root is None:
                continue
            if root not in known:
                raise SpecError(
                    f"{where(stage_path + sub)}: stage {stage.name!r} reads outputs of unknown stage "
                    f"{root!r}; expected one of: {listing}"
                )
            if (
                sub[0] == "scheduler"
                and sub[1] == "parameters"
                and stage.name not in open_ended
                and root not in reach(stage.name)
            ):
                raise SpecError(
                    f"{where(stage_path + sub)}: stage {stage.name!r} reads outputs of stage {root!r} "
                    f"but does not depend on it (dependencies: "
                    f"{', '.join(stage.dependencies.expressions) if stage.dependencies.dependency_type == 'jsonpath_ready' else 'expressions'}"
                    f"); add {root!r} to its dependencies"
                )
        scheduler = stage.scheduler
        nested: list[tuple[list[Any], Workflow]] = []
        if getattr(scheduler, "workflow", None) is not None:
            nested.append((stage_path + ["scheduler", "workflow"], scheduler.workflow))
        for case_index, case in enumerate(getattr(scheduler, "cases", None) or []):
            if case.workflow is not None:
                nested.append((stage_path + ["scheduler", "cases", case_index, "workflow"], case.workflow))
        for sub_path, sub_workflow in nested:
            sub_workflow._where = where(sub_path)
            _check_workflow(sub_workflow, sub_path, loaded, what)


def validate_workflow(loaded: LoadedSpec | dict) -> Workflow:
    """Validate a loaded workflow spec into a :class:`Workflow` with yadage's defaults.

    Besides the schema, checks that stage names are unique (and not ``init``),
    that dependencies and references name existing stages, that there are no
    dependency cycles, and that a stage depends on every stage it reads from.

    Raises:
        UnsupportedFeatureError: a construct yadage knows that this loader does not run.
        SpecError: anything else; one line with file, line, JSON pointer, stage and
            key, what was found and what was expected. ``error.problems`` lists every
            problem when there are several.
    """
    spec = loaded if isinstance(loaded, LoadedSpec) else None
    data = loaded.data if isinstance(loaded, LoadedSpec) else loaded
    what = "workflow"
    if not isinstance(data, dict):
        where = spec.where() if spec else what
        raise SpecError(f"{where}: found {type(data).__name__}, expected a mapping with a 'stages' list")
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        _raise_for(exc, data, spec, what)
        raise  # unreachable: _raise_for always raises
    workflow._where = spec.where() if spec else what
    _check_workflow(workflow, [], spec, what)
    return workflow


def validate_step(loaded: LoadedSpec | dict) -> StepSpec:
    """Validate one step definition (process, environment, publisher).

    Raises:
        UnsupportedFeatureError / SpecError: as :func:`validate_workflow`.
    """
    spec = loaded if isinstance(loaded, LoadedSpec) else None
    data = loaded.data if isinstance(loaded, LoadedSpec) else loaded
    if not isinstance(data, dict):
        where = spec.where() if spec else "step"
        raise SpecError(
            f"{where}: found {type(data).__name__}, expected a mapping with process, environment, publisher"
        )
    try:
        return StepSpec.model_validate(data)
    except ValidationError as exc:
        _raise_for(exc, data, spec, "step")
        raise
