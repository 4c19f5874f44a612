"""The run record ``WORKDIR/_mltoolkit/run.json``: its typed model, its one reader and writer.

Both flows write one record per run; provenance (the RO-Crate) and other tools
read it. The format is stable; its JSON schema is ``docs/run-record.schema.json``
(regenerate it with ``python -m mltoolkit.workdir.record --schema > docs/run-record.schema.json``)::

    {"status": "completed" | "failed", "flow": "ml-workflow" | "spec-workflow",
     "flow_run_id": "...", "started": ISO, "ended": ISO, "workflow": {...}, "inputs": {...},
     "software": {"mltoolkit": ..., "python": ..., "prefect": ..., "scikit-learn": ...},
     "environment": {"platform": "Linux-6.1-x86_64-with-glibc2.36", "machine": "x86_64",
                     "cpu_flags": ["avx", "avx2", ...]},
     "steps": [{"id": "/classification_0", "scope": "" | "/map/0", "stage": "classification",
                "index": 0, "name": "classification_0", "workdir": "<absolute path>",
                "parameters": {...}, "published": {...},
                "state": "COMPLETED" | "CACHED" | "FAILED" | ...,
                "outputs": {"classification_0/rbf_svm.pkl": "<sha256>", ...},
                "started": ISO, "ended": ISO, "attempts": 1, "task_run_id": "...",
                "error": null,
                "resources": {"requested": ["CVMFS", {"kubernetes_memory_limit": "8Gi"}],
                              "applied": {"kubernetes_memory_limit": "address-space limit 8Gi ..."},
                              "provided": {"CVMFS": "--provide CVMFS=/cvmfs"},
                              "ignored": {}, "warnings": []}}]}

A record keeps exactly the keys its writer set: optional fields that a writer
does not fill (a step's ``cache``, ``environment``, ``resources``, ``stubbed``)
are absent from the file, not ``null``, so records written before those fields
existed read back unchanged. Unknown keys are kept as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from mltoolkit.errors import WorkdirError
from mltoolkit.workdir.artifacts import atomic_write_text
from mltoolkit.workdir.layout import WorkdirLayout

__all__ = [
    "RunEnvironment",
    "RunRecord",
    "RunStep",
    "RunWorkflow",
    "StepCache",
    "StepEnvironment",
    "StepResources",
    "read_run_record",
    "run_record_schema",
    "write_run_record",
]


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"found {value!r}, expected an ISO 8601 time") from None
    return value


def _text_of_path(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: An ISO 8601 time, kept as written (``run.json`` keeps microseconds and the offset).
IsoTime = Annotated[str, AfterValidator(_iso_time)]
#: A path, written as text.
PathText = Annotated[str, BeforeValidator(_text_of_path)]


class _RecordPart(BaseModel):
    # Unknown keys survive a read and a write: newer writers may add fields.
    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)


class StepCache(_RecordPart):
    """Why a step ran or was reused."""

    reused: bool
    """The step's stored result was reused instead of running it."""
    reason: str
    """Why, e.g. ``first run``, ``code changed: mltoolkit/analysis/classifiers.py``, ``--refresh``."""


class StepEnvironment(_RecordPart):
    """Where a step ran."""

    kind: str
    """``local``, ``docker``, ``noop``... (the spec's environment, or how it was mapped)."""
    image: str | None = None
    """The container image the spec names, if any."""
    image_id: str | None = None
    """The id (``sha256:...``) of the image the step's container ran, when it ran in one."""
    container: str | None = None
    """The container the step ran in (its name), when it ran in one."""
    container_id: str | None = None
    """That container's id."""
    mapped_to: str | None = None
    """The local environment an image was mapped to, when it ran without a container."""


class StepResources(_RecordPart):
    """What a step's environment asked of the machine (its ``resources``), and what became of each."""

    requested: list[str | dict[str, Any]] = Field(default_factory=list)
    """The resources as the spec lists them (``CVMFS``, ``{kubernetes_memory_limit: 8Gi}``...)."""
    applied: dict[str, str] = Field(default_factory=dict)
    """Resource key -> how it was applied (``step timeout 3600 s``, ``address-space limit 8Gi ...``)."""
    provided: dict[str, str] = Field(default_factory=dict)
    """Required resource -> what provided it (``--provide CVMFS=/cvmfs``, an image-map entry)."""
    ignored: dict[str, str] = Field(default_factory=dict)
    """Resource key -> why it means nothing here (``compute_backend``, ``kubernetes_uid``...)."""
    warnings: list[str] = Field(default_factory=list)
    """What was asked but could not be honoured (a memory limit this platform cannot apply)."""


def _resources_of_old_records(value: Any) -> Any:
    # records written before the field had parts held the spec's list as it was
    return {"requested": value} if isinstance(value, list) else value


class RunStep(_RecordPart):
    """One step of a run: what it was given, what it published and wrote, how it ended."""

    id: str | None = None
    """The step's identity in the run (``/classification_0``, ``/map/0/stage1``)."""
    scope: str = ""
    """``""`` at the top level, a JSON pointer (``/map/0``) inside a subworkflow instance."""
    stage: str
    """The stage that scheduled the step."""
    index: int | None = None
    """The step's position in a multistep stage, ``None`` for a singlestep stage."""
    name: str
    """The step's name, also its folder's name (``classification_0``)."""
    workdir: PathText | None = None
    """The step's own folder (absolute)."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """The parameters as the step saw them (``{workdir}`` filled in)."""
    published: dict[str, Any] | None = None
    """What the step published for later steps (``None`` when it did not finish)."""
    state: str = "PENDING"
    """Prefect's final state, upper case: ``COMPLETED``, ``CACHED``, ``FAILED``, ``PENDING``..."""
    outputs: dict[str, str] = Field(default_factory=dict)
    """The files the step wrote: path (relative to the work directory) -> sha256."""
    started: IsoTime | None = None
    """When the step started."""
    ended: IsoTime | None = None
    """When the step ended."""
    attempts: int | None = Field(default=None, ge=1)
    """How often the step ran, retries included."""
    task_run_id: str | None = None
    """The Prefect task run that ran the step."""
    error: str | None = None
    """Why the step failed (one line), ``None`` when it did not."""
    cache: StepCache | None = None
    """Why the step ran or was reused (absent when not recorded)."""
    environment: StepEnvironment | None = None
    """Where the step ran (absent when not recorded)."""
    resources: Annotated[StepResources | None, BeforeValidator(_resources_of_old_records)] = None
    """What the step's environment asked for and what became of it (absent when it asked for nothing)."""
    stubbed: bool | None = None
    """The step was replaced by a stub that only wrote its declared outputs (absent when not)."""


class RunWorkflow(_RecordPart):
    """What ran: the native flow (``flow``, ``file``) or a yadage spec (``workflow``, ``toplevel``)."""

    flow: str | None = None
    """The native flow's entry point (``flows/ml_workflow.py:ml_workflow``)."""
    file: PathText | None = None
    """The native flow's source file."""
    workflow: PathText | None = None
    """A spec's workflow file (path or URL)."""
    toplevel: PathText | None = None
    """The folder (or base URL) a spec's relative references resolve against."""


#: Where Linux describes the processor (its ``flags`` lines).
CPUINFO = Path("/proc/cpuinfo")


def _cpu_flags(cpuinfo: Path) -> list[str]:
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux, or /proc not mounted
        return []
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip() in ("flags", "Features"):  # x86 / ARM
            return sorted(set(value.split()))
    return []


class RunEnvironment(_RecordPart):
    """The machine a run ran on: what a reproduction compares beside the software versions."""

    platform: str
    """``platform.platform()``: operating system, kernel, C library."""
    machine: str
    """``platform.machine()``: the processor architecture (``x86_64``, ``arm64``...)."""
    cpu_flags: list[str] = Field(default_factory=list)
    """The processor's feature flags, sorted (``/proc/cpuinfo``; empty where unknown)."""

    @classmethod
    def current(cls, cpuinfo: Path = CPUINFO) -> RunEnvironment:
        """This machine."""
        return cls(platform=platform.platform(), machine=platform.machine(), cpu_flags=_cpu_flags(cpuinfo))


class RunRecord(_RecordPart):
    """One run of a flow in a work directory (``WORKDIR/_mltoolkit/run.json``)."""

    status: Literal["running", "completed", "failed"]
    """How the run ended."""
    flow: str | None = None
    """The Prefect flow that ran: ``ml-workflow`` or ``spec-workflow``."""
    flow_run_id: str | None = None
    """The Prefect flow run."""
    started: IsoTime | None = None
    """When the run started."""
    ended: IsoTime | None = None
    """When the run ended (when the record was written)."""
    workflow: RunWorkflow | str | None = None
    """What ran (older records name the workflow file as a string)."""
    inputs: dict[str, Any] | None = None
    """The run's inputs (the native flow's parameters, a spec's init values)."""
    software: dict[str, str] = Field(default_factory=dict)
    """Versions of the software that ran it: ``python``, ``mltoolkit``, ``prefect``, ``scikit-learn``..."""
    environment: RunEnvironment | None = None
    """The machine it ran on (absent in records written before it was recorded)."""
    error: str | None = None
    """Why the run failed when no step says so (absent when not recorded)."""
    license: str | None = None
    """The license of the run's outputs (absent when none was declared)."""
    steps: list[RunStep] = Field(default_factory=list)
    """Every step, in the order they were scheduled."""


def run_record_schema() -> dict[str, Any]:
    """The JSON schema of ``run.json`` (what ``docs/run-record.schema.json`` holds)."""
    return RunRecord.model_json_schema()


def _problems(error: ValidationError) -> str:
    """The first problem pydantic found (where: what), and how many more there are."""
    problems = error.errors(include_url=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = f", and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def read_run_record(workdir: str | os.PathLike[str]) -> RunRecord:
    """The run record of ``workdir``.

    Raises:
        WorkdirError: no record, or a file that is not valid JSON or not a run
            record; the one-line message names the file and what was wrong.
    """
    path = WorkdirLayout(workdir).run_record
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise WorkdirError(
            f"{path}: no run record; expected the run.json every run writes: is {path.parent.parent} "
            "the work directory of a run?"
        ) from None
    except OSError as error:
        raise WorkdirError(f"{path}: cannot read the run record ({error.strerror})") from None
    try:
        return RunRecord.model_validate_json(text)
    except ValidationError as error:
        if error.errors()[0]["type"] == "json_invalid":
            raise WorkdirError(
                f"{path}: the run record is not valid JSON ({_problems(error)}); the file is damaged: "
                "run the workflow again in this work directory"
            ) from None
        raise WorkdirError(
            f"{path}: not an mltoolkit run record ({_problems(error)}); expected the run.json a run of mltoolkit writes"
        ) from None


def write_run_record(workdir: str | os.PathLike[str], record: RunRecord) -> Path:
    """Write ``record`` as ``workdir``'s ``run.json`` atomically (temp file + rename); return its path.

    Only the keys set on the record are written, so optional fields nobody
    filled stay absent.
    """
    path = WorkdirLayout(workdir).run_record
    # `fallback=str`: a value no JSON type fits (a path inside parameters) is written
    # as its text, as the records always did.
    text = record.model_dump_json(indent=2, exclude_unset=True, fallback=str)
    atomic_write_text(path, text + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mltoolkit.workdir.record --schema``: print the JSON schema of ``run.json``."""
    parser = argparse.ArgumentParser(
        prog="python -m mltoolkit.workdir.record", description="The run record of mltoolkit (run.json)."
    )
    parser.add_argument("--schema", action="store_true", help="print the JSON schema of run.json")
    arguments = parser.parse_args(argv)
    if not arguments.schema:
        parser.print_help()
        return 1
    sys.stdout.write(json.dumps(run_record_schema(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
