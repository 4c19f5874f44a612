"""Human steps: what to ask a person, and what the step publishes once they answered.

A step with any ``manual-instructions-*`` part runs nothing. yadage-schemas gives
each such part only ``instructions``; packtivity printed them with the step's
parameters and, for its interactive publisher, read the published JSON from the
terminal. Here a step becomes a :class:`HumanRequest`: the instructions of each
manual part, the step's parameters, the command a manual *environment* asks the
person to run (the step's own process, filled in and quoted as a real run would
fill it), and the values to provide:

* with a ``manual-instructions-pub``, the outputs later stages read from the
  stage (:mod:`~mltoolkit.yadage.readers`), one value each; when a reference
  reads the whole publication, or nothing reads it, a mapping ``other_values``
  holds whatever else to publish (optional);
* with any other publisher, nothing: the person confirms they did the work,
  and the step's publisher then runs on what they left in the step's folder.

An orchestrator asks (the Prefect flow pauses its run with a form built from
:attr:`HumanRequest.fields`), then calls :func:`publish_answer`. The request and
the answer are kept in the step's ``_packtivity/`` folder
(:func:`write_request`, :func:`write_answer`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mltoolkit.errors import HumanStepError
from mltoolkit.workdir.artifacts import atomic_write_text
from mltoolkit.workdir.layout import inside_workdir, step_private_dir
from mltoolkit.yadage.model import InterpolatedScriptCmd, ManualInstructionsPub, StepSpec, StringInterpolatedCmd
from mltoolkit.yadage.packtivity.interpolate import interpolate
from mltoolkit.yadage.packtivity.publishers import publish
from mltoolkit.yadage.packtivity.step import script_language
from mltoolkit.yadage.readers import ReadOutputs

__all__ = [
    "DEFAULT_HUMAN_TIMEOUT",
    "OTHER_VALUES",
    "HumanField",
    "HumanRequest",
    "human_request",
    "publish_answer",
    "write_answer",
    "write_request",
]

#: Seconds a human step waits for its answer by default (a working day and a night).
DEFAULT_HUMAN_TIMEOUT = 86_400.0
#: The form field for values nobody reads by key (the whole publication is read, or nothing reads it).
OTHER_VALUES = "other_values"


@dataclass(frozen=True)
class HumanField:
    """One value a person provides: the output key it is published under, and what it is for."""

    key: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class HumanRequest:
    """What a human step asks of a person."""

    label: str  # "stage 'approve' step approve"
    stage: str
    name: str
    workdir: str
    instructions: list[tuple[str, str]]  # (part, text): environment, process, publisher
    parameters: dict[str, Any]
    command: str | None = None  # the step's own command, when a manual environment asks to run it
    fields: tuple[HumanField, ...] = field(default_factory=tuple)

    @property
    def publishes_answer(self) -> bool:
        """True when the person's values are what the step publishes (``manual-instructions-pub``)."""
        return bool(self.fields)

    def markdown(self) -> str:
        """The request as Markdown (what the Prefect UI shows above the form)."""
        lines = [f"### Human step: stage `{self.stage}`, step `{self.name}`", ""]
        for part, text in self.instructions:
            lines += [f"**{_HEADINGS[part]}** ({part}):", "", text.strip(), ""]
        if self.command:
            lines += ["**The command to run** (in the step's folder):", "", "```", self.command, "```", ""]
        lines += [f"**Step folder:** `{self.workdir}`", "", "**Parameters:**", "", "```yaml"]
        lines += [_yaml(self.parameters).rstrip(), "```", ""]
        lines += [self.ask_line()]
        return "\n".join(lines)

    def ask_line(self) -> str:
        """One line saying what resuming needs."""
        if not self.fields:
            return "Resume the run once done; the step then publishes what its publisher finds in the step folder."
        needed = ", ".join(f"`{item.key}`" + ("" if item.required else " (optional)") for item in self.fields)
        return f"Resume the run with the values to publish: {needed}."

    def text(self) -> str:
        """The request as plain text, for a terminal."""
        lines = [f"human step: {self.label} waits for a person", ""]
        for part, text in self.instructions:
            lines += [f"  {_HEADINGS[part]} ({part}):"] + [f"    {line}" for line in text.strip().splitlines()]
        if self.command:
            lines += ["  the command to run (in the step's folder):", f"    {self.command}"]
        lines += [f"  step folder: {self.workdir}", "  parameters:"]
        lines += [f"    {line}" for line in _yaml(self.parameters).splitlines()]
        for item in self.fields:
            lines.append(f"  provide {item.key}{'' if item.required else ' (optional)'}: {item.description}")
        return "\n".join(lines)


_HEADINGS = {"environment": "Set up", "process": "What to do", "publisher": "What to provide"}


def _yaml(value: Any) -> str:
    return yaml.safe_dump(json.loads(json.dumps(value, default=str)), default_flow_style=False, sort_keys=True)


def _fields(step: StepSpec, reads: ReadOutputs | None) -> tuple[HumanField, ...]:
    if not isinstance(step.publisher, ManualInstructionsPub):
        return ()
    keys = reads.sorted_keys() if reads is not None else []
    found = [HumanField(key, "an output later stages read (any YAML/JSON value)") for key in keys]
    if not keys or (reads is not None and reads.whole):
        found.append(HumanField(OTHER_VALUES, "a mapping of further output names to values", required=False))
    return tuple(found)


def _command(step: StepSpec, parameters: Mapping[str, Any], folder: Path, label: str) -> str | None:
    """The step's own command (a script as a here-document) with its parameters filled in, for a person to run."""
    process = step.process
    if not isinstance(process, (StringInterpolatedCmd, InterpolatedScriptCmd)):
        return None
    language = script_language(process)
    if isinstance(process, StringInterpolatedCmd):
        return interpolate(process.cmd, parameters, workdir=folder, language=language, where=label)
    script = interpolate(process.script, parameters, workdir=folder, language=language, where=label)
    return f"{process.interpreter} <<'EOF'\n{script.rstrip()}\nEOF"


def human_request(
    step: StepSpec,
    parameters: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    name: str,
    stage: str,
    reads: ReadOutputs | None = None,
) -> HumanRequest:
    """What the human step ``step`` asks (``reads``: what later stages read from its stage).

    Raises:
        SpecError: the command of a manual environment's process cannot be filled in.
    """
    folder = Path(workdir).resolve()
    label = f"stage {stage!r} step {name}"
    return HumanRequest(
        label=label,
        stage=stage,
        name=name,
        workdir=str(folder),
        instructions=step.instructions(),
        parameters=dict(parameters),
        command=_command(step, parameters, folder, label),
        fields=_fields(step, reads),
    )


def _publication(request: HumanRequest, answer: Mapping[str, Any]) -> dict[str, Any]:
    """The values to publish from a person's answer (``other_values`` merged in)."""
    missing = [item.key for item in request.fields if item.required and item.key not in answer]
    if missing:
        raise HumanStepError(
            f"{request.label}: the answer lacks {', '.join(map(repr, missing))}; give every value the step "
            f"publishes ({', '.join(item.key for item in request.fields)})"
        )
    values = {item.key: answer[item.key] for item in request.fields if item.key != OTHER_VALUES}
    others = answer.get(OTHER_VALUES) or {}
    if not isinstance(others, Mapping):
        raise HumanStepError(
            f"{request.label}: {OTHER_VALUES} is {type(others).__name__}, expected a mapping of output names to values"
        )
    return {**dict(others), **values}


def publish_answer(step: StepSpec, request: HumanRequest, answer: Mapping[str, Any]) -> Any:
    """What a human step publishes once a person answered ``request`` with ``answer``.

    Raises:
        HumanStepError: a value the step publishes is missing from the answer.
        SpecError: the step's own publisher fails on what the person left (a file it needs is missing).
    """
    given = _publication(request, answer) if request.publishes_answer else None
    return publish(step.publisher, request.parameters, request.workdir, where=request.label, given=given)


def _private_file(request: HumanRequest, suffix: str) -> Path:
    folder = Path(request.workdir)
    private = inside_workdir(folder, step_private_dir(folder), what=f"{request.label}: private folder")
    private.mkdir(parents=True, exist_ok=True)
    return inside_workdir(private, private / f"{request.name}{suffix}", what=f"{request.label}: private file")


def write_request(request: HumanRequest) -> Path:
    """Keep the request as ``<step folder>/_packtivity/<name>.instructions.md``; its path."""
    path = _private_file(request, ".instructions.md")
    atomic_write_text(path, request.markdown() + "\n")
    return path


def write_answer(request: HumanRequest, answer: Mapping[str, Any]) -> Path:
    """Keep the answer as ``<step folder>/_packtivity/<name>.answer.json``; its path."""
    path = _private_file(request, ".answer.json")
    atomic_write_text(path, json.dumps(dict(answer), indent=2, sort_keys=True, default=str) + "\n")
    return path
