"""One yadage step as a Prefect task, and the cache policy that keys it.

:func:`run_spec_step` runs one planned step (:class:`~mltoolkit.yadage.planner.PlannedStep`)
in a clean folder and returns a :class:`StepOutcome`: what it published, the files
it produced with their sha256, and when it ran. Its cache key
(:class:`SpecStepCachePolicy`) covers the step's spec, parameters and placement
(:func:`step_identity`) and its input files by content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import CachePolicy
from prefect.logging import get_run_logger

from flows.caching import record_step_outputs, step_cache_key
from flows.expected_errors import install_expected_error_filter
from flows.run_record import now_iso
from mltoolkit.workdir.artifacts import sha256_file
from mltoolkit.workdir.layout import remove_tree
from mltoolkit.yadage import StepOptions, run_planned_step
from mltoolkit.yadage.packtivity import environment_identity
from mltoolkit.yadage.planner import PlannedStep

__all__ = [
    "SpecStepCachePolicy",
    "StepOutcome",
    "relocated",
    "run_spec_step",
    "spec_step_key",
    "step_identity",
    "task_run_label",
]


@dataclass(frozen=True)
class StepOutcome:
    """What a step task returns: its published values and the files it left behind."""

    published: Any
    files: dict[str, str] = field(default_factory=dict)
    #: The run's folder when the step ran: published paths under it are moved to
    #: the current folder when the outcome is reused from a copied or moved workdir.
    root: str = ""
    #: When the step ran and in which attempt (kept with a cached outcome: that is
    #: when its outputs were made).
    started: str | None = None
    ended: str | None = None
    attempts: int = 1
    #: The step's resources record (``None`` when its environment asked for none).
    resources: dict[str, Any] | None = None
    #: Where it ran (the run record's step ``environment``: Docker image and container, or the image map's entry).
    environment: dict[str, Any] | None = None


def relocated(value: Any, old_root: str, new_root: str) -> Any:
    """``value`` with every path string under ``old_root`` moved under ``new_root``."""
    if isinstance(value, str):
        if value == old_root or value.startswith(old_root + os.sep):
            return new_root + value[len(old_root) :]
        return value
    if isinstance(value, dict):
        return {key: relocated(item, old_root, new_root) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [relocated(item, old_root, new_root) for item in value]
    return value


def _leaf_paths(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [path for item in value.values() for path in _leaf_paths(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in _leaf_paths(item)]
    return []


def _produced_files(planned: PlannedStep, published: Any, run_root: Path) -> dict[str, str]:
    """Files the step wrote (its folder) or published, as workdir-relative path -> sha256."""
    files: dict[str, str] = {}
    candidates = [path for path in planned.workdir.rglob("*") if path.is_file()] if planned.workdir.is_dir() else []
    for text in _leaf_paths(published):
        if len(text) < 4096 and os.path.isabs(text):
            candidates.append(Path(text))
    for path in candidates:
        try:
            if not path.is_file():
                continue
            resolved = path.resolve()
            relative = resolved.relative_to(run_root).as_posix() if resolved.is_relative_to(run_root) else str(resolved)
            files[relative] = sha256_file(resolved)
        except OSError:
            continue
    return files


def step_identity(planned: PlannedStep, options: StepOptions) -> dict[str, Any]:
    """What a step's cache key covers besides input file contents: spec, parameters, placement."""
    return {
        "scope": planned.scope,
        "stage": planned.stage,
        "index": planned.index,
        "name": planned.name,
        "workdir": str(planned.workdir),
        "parameters": planned.parameters,
        "step": planned.step.model_dump(mode="json"),
        "quote": options.quote,
        "image_map": {
            image: [mapping.kind, list(map(list, mapping.mounts)), list(map(list, mapping.provides))]
            for image, mapping in sorted(options.image_map.items())
        },
        # what the machine provides (a CVMFS path, a proxy file) can change what a step computes
        "provided": dict(sorted(options.provided.items())),
        # where it runs: Docker (with the image's id) or an image map's entry
        "environment": environment_identity(planned.step, options),
    }


def spec_step_key(identity: dict[str, Any], run_root: Path) -> str:
    """A spec step's cache key: its identity, with input files by content (its own folder excluded)."""
    return step_cache_key(identity["stage"], "", {"identity": identity}, run_root, own_dir=identity["workdir"])


@dataclass
class SpecStepCachePolicy(CachePolicy):
    """Prefect cache policy of a spec step: :func:`spec_step_key` of its ``identity`` argument."""

    run_root: str = ""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        """The key of the step whose ``identity`` is among ``inputs``."""
        return spec_step_key(inputs["identity"], Path(self.run_root))


def task_run_label(planned: PlannedStep) -> str:
    """A step's task run name: its stage, index and scope (``stage1[0] @/map/1``)."""
    label = planned.stage if planned.index is None else f"{planned.stage}[{planned.index}]"
    return f"{label} @{planned.scope}" if planned.scope else label


@task(name="spec-step", task_run_name="{label}")
def run_spec_step(
    label: str, identity: dict[str, Any], planned: PlannedStep, options: StepOptions, run_root: str
) -> StepOutcome:
    """Run one planned yadage step; its output lines go to Prefect's log and the step's log file.

    Raises:
        WorkdirError: the step's folder is not strictly inside ``run_root`` (nothing is removed).
    """
    from prefect.runtime import task_run as current_task_run

    # Here too, not only where the flow starts: with the process and Dask runners
    # this body runs in a worker process whose loggers the flow never configured.
    install_expected_error_filter()
    logger = get_run_logger()
    started_at = now_iso()
    root = Path(run_root)
    # A step runs in a clean folder, as in yadage: files left by an earlier run of
    # it (another classifier's pickle, a killed attempt) would otherwise be
    # published by globs such as '{outdir}/*.pkl' and hashed into its outputs.
    remove_tree(root, planned.workdir, what=f"step {label!r}'s folder")
    result = run_planned_step(planned, options, on_output=lambda line: logger.info("%s", line))
    files = _produced_files(planned, result.published, root)
    record_step_outputs(root, files)
    return StepOutcome(
        published=result.published,
        files=files,
        root=str(root),
        started=started_at,
        ended=now_iso(),
        attempts=max(1, int(current_task_run.run_count or 1)),
        resources=result.resources,
        environment=result.where,
    )
