"""Step parts (a packtivity): what to run (process), where (environment), what it publishes.

Defaults follow the ``yadage-schemas``: ``interpreter: sh``; ``imagetag: latest``;
``glob: false`` and ``relative_paths: false`` for ``interpolated-pub``;
``script: '.'`` (and ``tryExact: true``) for ``fromparjq-pub``. ``process: null``
or ``environment: null`` make a publish-only step (yadage runs a step only when
it has both). Every environment may list ``resources``
(:mod:`~mltoolkit.yadage.model.resources`).

The ``manual-instructions-*`` parts (``instructions`` text only, as in
yadage-schemas) make a *human step* (:attr:`StepSpec.human`): a person does the
work the process describes, sets up what the environment describes, and provides
the values a ``manual-instructions-pub`` publisher stands for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Tag, field_validator
from pydantic_core import PydanticCustomError

from mltoolkit.yadage.model.base import (
    ENVIRONMENT_TYPES,
    NULL_TAG,
    PROCESS_TYPES,
    PUBLISHER_TYPES,
    UNKNOWN_TAG,
    UNSUPPORTED_TAG,
    SpecModel,
    UnknownType,
    Unsupported,
    check_jq,
    type_discriminator,
)
from mltoolkit.yadage.model.resources import ResourceRequest, parse_resources

__all__ = [
    "ConstantPub",
    "DockerEncapsulatedEnv",
    "Environment",
    "EnvironmentSpec",
    "FromGlobPub",
    "FromParJqPub",
    "FromParPub",
    "FromYamlPub",
    "InterpolatedPub",
    "InterpolatedScriptCmd",
    "LocalProcEnv",
    "ManualInstructionsEnv",
    "ManualInstructionsProc",
    "ManualInstructionsPub",
    "NoopEnv",
    "ParMount",
    "Process",
    "Publisher",
    "StepSpec",
    "StringInterpolatedCmd",
]


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


class ManualInstructionsProc(SpecModel):
    """``manual-instructions-proc``: a person does what ``instructions`` say (a human step)."""

    process_type: Literal["manual-instructions-proc"] = "manual-instructions-proc"
    instructions: str


#: A process, or ``None`` (``process: null``).
Process = Annotated[
    Annotated[StringInterpolatedCmd, Tag("string-interpolated-cmd")]
    | Annotated[InterpolatedScriptCmd, Tag("interpolated-script-cmd")]
    | Annotated[ManualInstructionsProc, Tag("manual-instructions-proc")]
    | Annotated[Unsupported, Tag(UNSUPPORTED_TAG)]
    | Annotated[UnknownType, Tag(UNKNOWN_TAG)]
    | Annotated[None, Tag(NULL_TAG)],
    type_discriminator("process_type", PROCESS_TYPES, nullable=True),
]


# --- environment ---------------------------------------------------------------------------


class EnvironmentSpec(SpecModel):
    """What every environment has: ``resources`` (names it needs provided, REANA limits and hints)."""

    resources: list[Any] = Field(default_factory=list)

    @field_validator("resources", mode="before")
    @classmethod
    def _parses(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise PydanticCustomError(
                "bad_resource",
                "found {found}, expected a list of names (CVMFS) and mappings ({{kubernetes_memory_limit: '8Gi'}})",
                {"found": repr(value)},
            )
        try:
            parse_resources(value)
        except ValueError as error:
            raise PydanticCustomError("bad_resource", "{message}", {"message": str(error)}) from None
        return value

    @property
    def request(self) -> ResourceRequest:
        """The resources sorted into requirements, limits and recorded hints."""
        return parse_resources(self.resources)


class LocalProcEnv(EnvironmentSpec):
    """``localproc-env``: run on this machine as is."""

    environment_type: Literal["localproc-env"] = "localproc-env"


class NoopEnv(EnvironmentSpec):
    """``noop-env``: run nothing, only publish."""

    environment_type: Literal["noop-env"] = "noop-env"


class ParMount(SpecModel):
    """A file made from the parameters (jq program) and mounted at ``mountpath``."""

    jqscript: str
    mountpath: str

    @field_validator("jqscript")
    @classmethod
    def _compiles(cls, value: str) -> str:
        check_jq(value)
        return value


class DockerEncapsulatedEnv(EnvironmentSpec):
    """``docker-encapsulated``: run inside ``image:imagetag``."""

    environment_type: Literal["docker-encapsulated"] = "docker-encapsulated"
    image: str
    imagetag: str = "latest"
    envscript: str = ""
    env: dict[str, str | int | float | bool] = Field(default_factory=dict)
    workdir: str | None = None
    par_mounts: list[ParMount] = Field(default_factory=list)

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


class ManualInstructionsEnv(SpecModel):
    """``manual-instructions-env``: a person prepares where the step runs, as ``instructions`` say."""

    environment_type: Literal["manual-instructions-env"] = "manual-instructions-env"
    instructions: str


#: An environment, or ``None`` (``environment: null``).
Environment = Annotated[
    Annotated[LocalProcEnv, Tag("localproc-env")]
    | Annotated[NoopEnv, Tag("noop-env")]
    | Annotated[DockerEncapsulatedEnv, Tag("docker-encapsulated")]
    | Annotated[ManualInstructionsEnv, Tag("manual-instructions-env")]
    | Annotated[Unsupported, Tag(UNSUPPORTED_TAG)]
    | Annotated[UnknownType, Tag(UNKNOWN_TAG)]
    | Annotated[None, Tag(NULL_TAG)],
    type_discriminator("environment_type", ENVIRONMENT_TYPES, nullable=True),
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
        check_jq(value)
        return value


class ManualInstructionsPub(SpecModel):
    """``manual-instructions-pub``: a person provides the published values, as ``instructions`` say.

    yadage-schemas gives it only ``instructions``; which values to provide is what
    later stages read from the step (see :mod:`mltoolkit.yadage.readers`).
    """

    publisher_type: Literal["manual-instructions-pub"] = "manual-instructions-pub"
    instructions: str


Publisher = Annotated[
    Annotated[FromParPub, Tag("frompar-pub")]
    | Annotated[InterpolatedPub, Tag("interpolated-pub")]
    | Annotated[FromGlobPub, Tag("fromglob-pub")]
    | Annotated[FromYamlPub, Tag("fromyaml-pub")]
    | Annotated[ConstantPub, Tag("constant-pub")]
    | Annotated[FromParJqPub, Tag("fromparjq-pub")]
    | Annotated[ManualInstructionsPub, Tag("manual-instructions-pub")]
    | Annotated[Unsupported, Tag(UNSUPPORTED_TAG)]
    | Annotated[UnknownType, Tag(UNKNOWN_TAG)],
    type_discriminator("publisher_type", PUBLISHER_TYPES),
]


class StepSpec(SpecModel):
    """A packtivity: what to run (process), where (environment), what it publishes.

    ``process`` and ``environment`` must be given, but either may be ``null``: the
    step then runs nothing and only publishes (as yadage's pure-publishing steps).
    """

    process: Process
    environment: Environment
    publisher: Publisher

    @property
    def publish_only(self) -> bool:
        """True when the step runs nothing (no process or no environment) and only publishes."""
        return not self.human and (self.process is None or self.environment is None)

    @property
    def human(self) -> bool:
        """True for a human step: any of its parts is a ``manual-instructions-*`` one."""
        return (
            isinstance(self.process, ManualInstructionsProc)
            or isinstance(self.environment, ManualInstructionsEnv)
            or isinstance(self.publisher, ManualInstructionsPub)
        )

    def instructions(self) -> list[tuple[str, str]]:
        """``(part, text)`` of each ``manual-instructions-*`` part: ``process``, ``environment``, ``publisher``."""
        parts = (("environment", self.environment), ("process", self.process), ("publisher", self.publisher))
        manual = (ManualInstructionsEnv, ManualInstructionsProc, ManualInstructionsPub)
        return [(name, part.instructions) for name, part in parts if isinstance(part, manual)]
