"""One yadage step as a Prefect task, and the cache policy that keys it.

:func:`run_spec_step` runs one planned step (:class:`~mltoolkit.yadage.planner.PlannedStep`)
in a clean folder and returns a :class:`StepOutcome`: what it published, the files
it produced with their sha256, and when it ran. Its cache key
(:class:`SpecStepCachePolicy`) covers the step's spec, parameters and placement
(:func:`step_identity`), its input files by content, the toolkit's code and
library versions, and, for a step run in Docker, the image's id (:func:`environment_identity`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import CachePolicy
from prefect.logging import get_run_logger

from flows.cache_keys import TOOLKIT_PACKAGES, compute_step_key, remember_stored_key, take_key_note
from flows.expected_errors import install_expected_error_filter
from flows.run_record import now_iso
from flows.step_log import CappedStepLog
from mltoolkit.errors import HashingTimeoutError
from mltoolkit.preservation import CodeDigest, Fingerprinter, KeyComponents
from mltoolkit.workdir.artifacts import FileHasher, lineage_environment
from mltoolkit.workdir.layout import remove_tree, step_private_dir
from mltoolkit.yadage import StepOptions, run_planned_step
from mltoolkit.yadage.packtivity import environment_identity
from mltoolkit.yadage.planner import PlannedStep

__all__ = [
    "SpecStepCachePolicy",
    "StepOutcome",
    "relocated",
    "run_spec_step",
    "spec_step_components",
    "step_identity",
    "task_run_label",
    "text_leaves",
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


def text_leaves(value: Any) -> list[str]:
    """Every string inside ``value`` (nested dicts and lists), in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in text_leaves(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in text_leaves(item)]
    return []


def _produced_files(planned: PlannedStep, published: Any, run_root: Path, hasher: FileHasher) -> dict[str, str]:
    """Files the step wrote (its folder) or published, as workdir-relative path -> sha256.

    Only regular files inside the work directory count: a link leading out of
    it is not followed (its target's hash would end up in ``run.json``), and a
    FIFO or device is never opened.

    Raises:
        HashingTimeoutError: hashing ran past the step's deadline.
    """
    candidates: list[str] = []
    folder = os.path.realpath(planned.workdir)
    if Path(folder).is_relative_to(run_root):
        # Below a resolved folder only links need resolving (os.walk enters no linked folder):
        # every lstat of a resolution is a wait for the interpreter lock in a busy flow process.
        for current, _, names in os.walk(folder):
            for name in sorted(names):
                path = os.path.join(current, name)
                candidates.append(os.path.realpath(path) if os.path.islink(path) else path)
    published_paths = [text for text in text_leaves(published) if len(text) < 4096 and os.path.isabs(text)]
    candidates += map(os.path.realpath, published_paths)
    files: dict[str, str] = {}
    for real in map(Path, candidates):  # resolved: realpath makes a link loop no error
        if not real.is_relative_to(run_root):
            continue
        digest = hasher.digest(real)
        if digest is not None:
            files[real.relative_to(run_root).as_posix()] = digest
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


def spec_step_components(
    step_id: str,
    identity: dict[str, Any],
    run_root: Path,
    parts: tuple[FileHasher, CodeDigest, dict[str, str]],
    named: tuple[str, ...] = (),
) -> KeyComponents:
    """The parts of a spec step's key: its identity's parameters and the rest of it as its definition.

    ``parts`` are the hasher (with the step's deadline), the toolkit's code and the
    library versions; ``named`` the run's own input paths (init values), which
    may be read outside the work directory, as may the image map's host folders.
    """
    hasher, code, libraries = parts
    mounts = [host for _, mapping_mounts, *_ in identity["image_map"].values() for _, host in mapping_mounts]
    fingerprinter = Fingerprinter(
        run_root, own_dir=identity["workdir"], named=[*named, *mounts], hasher=hasher, code_roots=TOOLKIT_PACKAGES
    )
    parameters, files = fingerprinter.parameters(identity["parameters"])
    # the image id is a component of its own (its change is named as such), not part of the definition
    placement = {key: value for key, value in identity["environment"].items() if key != "image_id"}
    definition = fingerprinter.of(
        {**{key: value for key, value in identity.items() if key != "parameters"}, "environment": placement}
    )
    image = identity["environment"].get("image_id")
    return KeyComponents(step_id, definition, parameters, code.digest, libraries, image=image, inputs=files)


@dataclass
class SpecStepCachePolicy(CachePolicy):
    """Prefect cache policy of a spec step (its ``identity``, ``planned`` and ``options`` arguments).

    Attributes:
        run_root: the run's work directory.
        timeout: the step timeout, which also bounds hashing its inputs.
        named: the run's own input paths (init values), readable outside the work directory.
        refresh: ``--refresh``: the key is computed, its stored result replaced.
    """

    run_root: str = ""
    timeout: float | None = None
    named: tuple[str, ...] = ()
    refresh: bool = False

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        """The key of the step whose ``identity`` is among ``inputs``."""
        planned: PlannedStep = inputs["planned"]

        def build(hasher: FileHasher, code: CodeDigest, libraries: dict[str, str]) -> KeyComponents:
            parts = (hasher, code, libraries)
            return spec_step_components(planned.id, inputs["identity"], Path(self.run_root), parts, self.named)

        step = (planned.id, inputs["identity"]["stage"])
        return compute_step_key(task_ctx, self.run_root, step, build, timeout=self.timeout, refresh=self.refresh)


def task_run_label(planned: PlannedStep) -> str:
    """A step's task run name: its stage, index and scope (``stage1[0] @/map/1``)."""
    label = planned.stage if planned.index is None else f"{planned.stage}[{planned.index}]"
    return f"{label} @{planned.scope}" if planned.scope else label


def _with_lineage(
    planned: PlannedStep, options: StepOptions, root: Path, lineage: dict[str, str] | None
) -> StepOptions:
    """``options`` whose environment tells the step's scripts the sha256 of each upstream file (if known)."""
    if lineage is None:
        return options
    spill = step_private_dir(planned.workdir) / "lineage.json"
    environment = lineage_environment(root, lineage, planned.workdir, spill)
    return replace(options, extra_env={**options.extra_env, **environment})


@task(name="spec-step", task_run_name="{label}")
def run_spec_step(
    label: str,
    identity: dict[str, Any],
    planned: PlannedStep,
    options: StepOptions,
    run_root: str,
    lineage: dict[str, str] | None = None,
) -> StepOutcome:
    """Run one planned yadage step; its output goes to the step's log file and (capped) to Prefect's log.

    ``lineage``: the sha256 of each file the step's upstream steps wrote in this
    run (workdir-relative path -> sha256); its scripts load pickles only with those.

    Raises:
        WorkdirError: the step's folder is not strictly inside ``run_root`` (nothing is removed).
        HashingTimeoutError: hashing its inputs or outputs ran past the step timeout.
    """
    from prefect.runtime import task_run as current_task_run

    # Here too, not only where the flow starts: with the process and Dask runners
    # this body runs in a worker process whose loggers the flow never configured.
    install_expected_error_filter()
    started_at = now_iso()
    root = Path(run_root)
    try:
        note = take_key_note()
    except HashingTimeoutError as error:
        raise HashingTimeoutError(f"{label}: {error}") from None
    # A step runs in a clean folder, as in yadage: files left by an earlier run of
    # it (another classifier's pickle, a killed attempt) would otherwise be
    # published by globs such as '{outdir}/*.pkl' and hashed into its outputs.
    remove_tree(root, planned.workdir, what=f"step {label!r}'s folder")
    log = CappedStepLog(get_run_logger(), step_private_dir(planned.workdir) / f"{planned.name}.run.log")
    try:
        result = run_planned_step(planned, _with_lineage(planned, options, root, lineage), on_output=log)
    finally:
        with contextlib.suppress(OSError):
            (step_private_dir(planned.workdir) / "lineage.json").unlink()
    try:
        # hashing the outputs is bounded by the step timeout too
        files = _produced_files(planned, result.published, root, FileHasher.within(options.timeout))
    except HashingTimeoutError as error:
        raise HashingTimeoutError(f"{label}: outputs: {error}") from None
    remember_stored_key(run_root, note)
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
