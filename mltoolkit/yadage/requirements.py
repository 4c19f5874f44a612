"""What a workflow needs from the machine, checked before any step runs.

Every step an environment's ``resources`` name as requirements (``CVMFS``,
``GRIDProxy``, ``kerberos: true``...) runs only where they are provided: by
``--provide NAME[=VALUE]`` or by the image-map entry of the step's image
(``provides:``). :func:`check_requirements` walks every stage -- nested
workflows and ``cases`` included -- and stops a run that would meet an unmet
requirement before it starts, with one line naming the stage, the resource and
the option that provides it. :func:`stage_requirements` lists what each stage
needs (for a ``validate`` command or a report).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from mltoolkit.errors import EnvironmentUnavailableError
from mltoolkit.yadage.model import (
    DockerEncapsulatedEnv,
    EnvironmentSpec,
    JqStage,
    MultistepStage,
    SinglestepStage,
    Stage,
    StepSpec,
    Workflow,
)
from mltoolkit.yadage.packtivity.environments import ImageMapping, lookup_image
from mltoolkit.yadage.packtivity.resources import find_provider, parse_provided, provide_hint

__all__ = ["StageRequirement", "check_requirements", "parse_provided", "stage_requirements"]


@dataclass(frozen=True)
class StageRequirement:
    """One resource one stage's step needs, and what provides it (``None``: nothing)."""

    stage: Stage
    resource: str
    image: str | None
    provider: str | None

    @property
    def met(self) -> bool:
        """True when something provides the resource."""
        return self.provider is not None


def _steps_of(workflow: Workflow) -> Iterator[tuple[Stage, StepSpec]]:
    """(stage, step) of every step definition, nested workflows and cases included."""
    for stage in workflow.stages:
        scheduler = stage.scheduler
        if not isinstance(scheduler, (SinglestepStage, MultistepStage, JqStage)):
            continue  # validation refuses every other scheduler
        runnables: list[StepSpec | Workflow | None] = [scheduler.step, scheduler.workflow] + [
            part for case in getattr(scheduler, "cases", None) or [] for part in (case.step, case.workflow)
        ]
        for runnable in runnables:
            if isinstance(runnable, StepSpec):
                yield stage, runnable
            elif isinstance(runnable, Workflow):
                yield from _steps_of(runnable)


def stage_requirements(
    workflow: Workflow, provided: Mapping[str, str], image_map: Mapping[str, ImageMapping]
) -> list[StageRequirement]:
    """Every requirement of every stage's step, in spec order, with what provides it."""
    found: list[StageRequirement] = []
    for stage, step in _steps_of(workflow):
        environment = step.environment
        if not isinstance(environment, EnvironmentSpec) or step.publish_only or step.human:
            continue  # nothing runs there: a publish-only step, or a person does the work
        if not environment.resources:
            continue
        image = environment.full_image if isinstance(environment, DockerEncapsulatedEnv) else None
        mapping = lookup_image(image, image_map) if image is not None else None
        for name in environment.request.requirements:
            provider = find_provider(name, provided, mapping, image)
            found.append(StageRequirement(stage, name, image, provider[1] if provider else None))
    return found


def check_requirements(
    workflow: Workflow, provided: Mapping[str, str], image_map: Mapping[str, ImageMapping]
) -> list[StageRequirement]:
    """Every requirement, provided; stop when one is not.

    Raises:
        EnvironmentUnavailableError: a stage needs a resource nothing provides; one line
            naming the stage, the resource and the option that provides it.
    """
    requirements = stage_requirements(workflow, provided, image_map)
    unmet = [item for item in requirements if not item.met]
    if unmet:
        first = unmet[0]
        others = sorted({f"{item.stage.name}: {item.resource}" for item in unmet[1:]} - {_pair(first)})
        more = f" (also unmet: {', '.join(others)})" if others else ""
        image = f" (image {first.image})" if first.image else ""
        raise EnvironmentUnavailableError(
            f"{first.stage.where}: stage {first.stage.name!r}{image} needs resource {first.resource!r}, "
            f"which nothing provides here; pass {provide_hint(first.resource)} (or add 'provides: "
            f"[{first.resource}]' to the image's entry in --image-map-file){more}"
        )
    return requirements


def _pair(item: StageRequirement) -> str:
    return f"{item.stage.name}: {item.resource}"
