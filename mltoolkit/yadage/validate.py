"""Would this spec run here? A report on a validated spec, without running anything.

The analogue of ``yadage-validate`` and ``reana-client validate``, with this
machine's answers: :func:`validation_report` lists every stage (nested
workflows indented under the stage that runs them) with its scheduler, what it
waits for, where its steps would run and the resources they need, and finds
what would stop a run here, one line each (:attr:`ValidationReport.problems`):

* a ``docker-encapsulated`` image with no Docker engine and no image-map entry;
* a required resource (``CVMFS``, ``GRIDProxy``...) that nothing provides;
* an init value the top-level stages read that the inputs do not give (only
  when inputs were given: without them the report lists what the workflow reads).

The spec's own warnings (dependencies its references imply) are
:attr:`ValidationReport.warnings`. Human steps are listed with what they will
ask for; they stop nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mltoolkit.yadage.model import (
    DockerEncapsulatedEnv,
    EnvironmentSpec,
    LocalProcEnv,
    NoopEnv,
    OutputReference,
    Stage,
    StepSpec,
    Workflow,
)
from mltoolkit.yadage.packtivity.environments import ImageMapping, lookup_image
from mltoolkit.yadage.packtivity.resources import find_provider, provide_hint
from mltoolkit.yadage.readers import ReadOutputs, init_outputs_read, outputs_read

__all__ = ["StageReport", "ValidationReport", "step_summary", "validation_report"]


@dataclass
class StageReport:
    """One stage: where it is, when it runs, where its steps run, what they need."""

    name: str
    depth: int  # 0 at the top level, +1 per nested workflow
    scope: str  # the stage's scope: "/" at the top level, "/outer_stage" inside its nested workflow
    scheduler: str
    after: list[str]
    steps: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _type_name(part: Any) -> str:
    """A process, environment or publisher by its type name (``none`` for ``null``)."""
    if part is None:
        return "none"
    return str(
        getattr(part, "process_type", None)
        or getattr(part, "environment_type", None)
        or getattr(part, "publisher_type", None)
        or type(part).__name__
    )


def step_summary(step: StepSpec) -> str:
    """One line on a step's parts: ``process in environment, publishes with publisher``."""
    return f"{_type_name(step.process)} in {_type_name(step.environment)}, publishes with {_type_name(step.publisher)}"


@dataclass
class ValidationReport:
    """What :func:`validation_report` found (``ok``: nothing would stop a run here)."""

    source: str
    docker: bool
    stages: list[StageReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the spec would run here."""
        return not self.problems

    def lines(self) -> list[str]:
        """The report as text, one stage a block (problems are not included: print them as errors)."""
        engine = "answers" if self.docker else "does not answer (images need an image-map entry)"
        lines = [f"workflow: {self.source}", f"docker engine: {engine}", f"stages ({len(self.stages)}):"]
        for stage in self.stages:
            indent = "  " * (stage.depth + 1)
            where = f" in {stage.scope}" if stage.scope != "/" else ""
            after = ", ".join(stage.after) or "nothing"
            lines.append(f"{indent}{stage.name}{where} [{stage.scheduler}] after: {after}")
            lines += [f"{indent}    {kind}: {text}" for kind, items in _parts(stage) for text in items]
        lines += [f"warning: {warning}" for warning in self.warnings]
        verdict = "ok: the workflow would run here" if self.ok else f"{len(self.problems)} problem(s)"
        return [*lines, verdict]


def _parts(stage: StageReport) -> list[tuple[str, list[str]]]:
    return [("step", stage.steps), ("runs", stage.runs), ("needs", stage.needs), ("note", stage.notes)]


def _dependency_text(expression: Any) -> str:
    if isinstance(expression, OutputReference):
        return f"{expression.selection} (output {expression.output or 'all'})"
    return str(expression)


def _runnables(stage: Stage) -> Iterator[StepSpec | Workflow]:
    scheduler = stage.scheduler
    for runnable in [getattr(scheduler, "step", None), getattr(scheduler, "workflow", None)]:
        if runnable is not None:
            yield runnable
    for case in getattr(scheduler, "cases", None) or []:
        yield from (part for part in (case.step, case.workflow) if part is not None)


@dataclass
class _Checker:
    """Walks the spec; collects stage reports and problems."""

    image_map: Mapping[str, ImageMapping]
    provided: Mapping[str, str]
    docker: bool
    reads: dict[str, ReadOutputs]
    report: ValidationReport
    missing_images: dict[str, list[str]] = field(default_factory=dict)  # image -> stages

    def walk(self, workflow: Workflow, depth: int, scope: str = "/") -> None:
        for stage in workflow.stages:
            entry = StageReport(
                stage.name,
                depth,
                scope,
                str(getattr(stage.scheduler, "scheduler_type", "?")),
                [_dependency_text(item) for item in stage.dependencies.expressions],
            )
            self.report.stages.append(entry)
            for runnable in _runnables(stage):
                if isinstance(runnable, Workflow):
                    entry.runs.append(f"a nested workflow of {len(runnable.stages)} stage(s), listed below")
                    self.walk(runnable, depth + 1, f"{scope.rstrip('/')}/{stage.name}")
                else:
                    self._step(stage, runnable, entry)

    def _step(self, stage: Stage, step: StepSpec, entry: StageReport) -> None:
        environment = step.environment
        entry.steps.append(step_summary(step))
        if step.human:
            asked = self.reads.get(stage.name)
            keys = ", ".join(asked.sorted_keys()) if asked is not None and asked.keys else "a confirmation"
            entry.runs.append(f"a person (human step: the run pauses for {keys})")
            return
        if step.publish_only or isinstance(environment, NoopEnv):
            entry.runs.append("nothing (the step only publishes)")
        elif isinstance(environment, LocalProcEnv):
            entry.runs.append("this machine (localproc-env)")
        elif isinstance(environment, DockerEncapsulatedEnv):
            entry.runs.append(self._image(stage, environment.full_image))
        if isinstance(environment, EnvironmentSpec) and not step.publish_only and environment.resources:
            self._resources(stage, environment, entry)

    def _image(self, stage: Stage, image: str) -> str:
        mapping = lookup_image(image, self.image_map)
        if mapping is not None:
            return f"image {image} -> image map: {mapping.kind}"
        if self.docker:
            return f"image {image} in Docker"
        self.missing_images.setdefault(image, []).append(stage.name)
        return f"image {image} -> NOT AVAILABLE (no Docker engine, no image-map entry)"

    def _resources(self, stage: Stage, environment: EnvironmentSpec, entry: StageReport) -> None:
        request = environment.request
        image = environment.full_image if isinstance(environment, DockerEncapsulatedEnv) else None
        mapping = lookup_image(image, self.image_map) if image is not None else None
        for name in request.requirements:
            provider = find_provider(name, self.provided, mapping, image)
            if provider is not None:
                entry.needs.append(f"{name} (provided by {provider[1]})")
                continue
            entry.needs.append(f"{name} (NOT PROVIDED)")
            self.report.problems.append(
                f"{stage.where}: stage {stage.name!r} needs resource {name!r}, which nothing provides here; "
                f"pass {provide_hint(name)} (or add 'provides: [{name}]' to the image's image-map entry)"
            )
        if request.timeout is not None:
            entry.notes.append(f"step timeout {request.timeout:g} s (from {request.timeout_key})")
        if request.memory_limit is not None:
            entry.notes.append(f"memory limit {request.memory_limit} bytes (from {request.memory_key})")
        if request.ignored:
            entry.notes.append(f"recorded only: {', '.join(sorted(request.ignored))}")


def _init_problems(workflow: Workflow, init: Mapping[str, Any] | None, report: ValidationReport) -> None:
    """Init values the top-level stages read: missing ones are problems once inputs were given."""
    read = init_outputs_read(workflow)
    missing = [key for key in read.sorted_keys() if init is None or key not in init]
    if not missing:
        return
    if init is None:
        report.warnings.append(f"inputs not checked (none given); the workflow reads init values: {', '.join(missing)}")
        return
    for key in missing:
        report.problems.append(
            f"inputs: the workflow reads init value {key!r} (stages {', '.join(sorted(read.keys[key]))}), which "
            f"the inputs do not give; add it to INPUTS or pass -p {key}=VALUE"
        )


def validation_report(
    workflow: Workflow,
    *,
    source: str,
    image_map: Mapping[str, ImageMapping],
    provided: Mapping[str, str],
    docker: bool,
    init: Mapping[str, Any] | None = None,
) -> ValidationReport:
    """The report on ``workflow`` (validated) for this machine.

    Args:
        workflow: the validated spec (its ``warnings`` become the report's).
        source: where the spec came from, for the report's first line.
        image_map: the image map (built-in entries included).
        provided: resources this machine provides (``--provide``).
        docker: whether a Docker engine answers.
        init: the init values, when inputs were given (``None``: not checked).
    """
    report = ValidationReport(source, docker, warnings=list(workflow.warnings))
    checker = _Checker(image_map, provided, docker, outputs_read(workflow), report)
    checker.walk(workflow, 0)
    for image, stages in checker.missing_images.items():
        name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        report.problems.append(
            f"image {image!r} (stages {', '.join(dict.fromkeys(stages))}): no Docker engine answers and the "
            f"image map has no entry for it; pass --image-map {name}=local (or local:/container/path=/host/path), "
            "or start Docker"
        )
    _init_problems(workflow, init, report)
    return report
