"""Per-step caching that lives in the work directory, on top of Prefect's task caching.

A step's cache key covers everything that can change its outputs
(:mod:`flows.cache_keys`): the step's definition and parameters, its input files
by content, **all the code it can run** -- a digest of every file of the
toolkit's installed packages, which hold the analysis, the step scripts and the
spec interpreter -- the versions of Python and the scientific libraries, and
for a step run in Docker, the image's id. Paths inside the work directory enter
the key relative to it, so a copied or moved work directory keeps its cache.

Prefect stores each cached result in the work directory (``WorkdirLayout.cache``)
as JSON (:mod:`flows.cache_records`): results are file references and numbers,
so the cache holds no pickles. Before a run, :func:`prune_stale_cache` drops
every record that is not exactly ours or whose output files are missing or
changed, so the producing step runs again. Resuming after a failed or killed run
is the same mechanism: finished steps are cached, the rest run.

Every step says why it ran or was reused (``run.json``'s ``cache`` field,
:func:`step_cache_record`), and the commands print one summary line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import CachePolicy

from flows.cache_keys import (
    TOOLKIT_PACKAGES,
    KeyStore,
    compute_step_key,
    forget_key_stores,
    toolkit_code,
    wait_for_code_facts,
)
from flows.cache_records import StepResultSerializer, prune_stale_cache
from mltoolkit.preservation import CodeDigest, Fingerprinter, KeyComponents
from mltoolkit.preservation.keys import REUSED
from mltoolkit.workdir.artifacts import FileHasher
from mltoolkit.workdir.layout import CACHE_DIR, WorkdirLayout

__all__ = [
    "CACHE_DIR",
    "CacheSettings",
    "StepCachePolicy",
    "begin_cached_run",
    "cache_options",
    "prune_stale_cache",
    "step_cache_record",
]

#: Parameters that say where a step writes, not what it computes.
LOCATION_PARAMETERS = frozenset({"workdir"})


@dataclass(frozen=True)
class CacheSettings:
    """How a run uses the cache: ``enabled`` (default) and ``refresh`` (re-run everything, then store)."""

    enabled: bool = True
    refresh: bool = False


@dataclass
class StepCachePolicy(CachePolicy):
    """Prefect cache policy of a native step.

    Attributes:
        workdir: the run's work directory.
        step: the step's id in ``run.json``, formatted with the task's inputs (``/classification_{index}``).
        definition: what the step runs (its pipeline function's qualified name; the code is in the key anyway).
        named: parameters that name the run's own input files (the dataset), which may be read outside the workdir.
        unused_code: from the task's inputs, the toolkit's top-level functions the step cannot run, by
            file (the registry's builders of other classifiers); everything else of the toolkit is in the key.
        refresh: ``--refresh``: the key is computed, its stored result replaced.
    """

    workdir: str = ""
    step: str = ""
    definition: str = ""
    named: tuple[str, ...] = ()
    unused_code: Callable[[dict[str, Any]], dict[str, frozenset[str]]] | None = None
    refresh: bool = False

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """The step's key (:func:`~flows.cache_keys.compute_step_key`); hashing is bounded by ``step_timeout``."""
        step_id = self.step.format(**inputs)
        values = {name: value for name, value in inputs.items() if name not in LOCATION_PARAMETERS}
        named = [value for name, value in values.items() if name in self.named and isinstance(value, str)]

        def build(hasher: FileHasher, code: CodeDigest, libraries: dict[str, str]) -> KeyComponents:
            fingerprinter = Fingerprinter(self.workdir, named=named, hasher=hasher, code_roots=TOOLKIT_PACKAGES)
            parameters, files = fingerprinter.parameters(values)
            return KeyComponents(step_id, self.definition, parameters, code.digest, libraries, inputs=files)

        timeout = flow_parameters.get("step_timeout")
        unused = self.unused_code(inputs) if self.unused_code else {}
        wait_for_code_facts()
        return compute_step_key(
            task_ctx,
            self.workdir,
            (step_id, task_ctx.task.name),
            build,
            timeout=float(timeout) if timeout else None,
            refresh=self.refresh,
            code=toolkit_code(frozenset((file, frozenset(names)) for file, names in unused.items())),
        )


def cache_options(workdir: str | os.PathLike[str], settings: CacheSettings, policy: CachePolicy) -> dict[str, Any]:
    """``Task.with_options`` keyword arguments for a step cached by ``policy`` under ``settings``."""
    from prefect.cache_policies import NO_CACHE

    if not settings.enabled:
        return {"cache_policy": NO_CACHE, "persist_result": False}
    return {
        "cache_policy": policy,
        "persist_result": True,
        "result_storage": WorkdirLayout(workdir).cache,
        "result_serializer": StepResultSerializer(),
        "refresh_cache": settings.refresh,
    }


def begin_cached_run(workdir: str | os.PathLike[str], settings: CacheSettings) -> dict[str, str]:
    """Before a run: drop stored results that may not be reused, start the run's reasons; return what was dropped."""
    if not settings.enabled:
        return {}
    removed = prune_stale_cache(workdir)
    forget_key_stores()
    KeyStore(workdir).begin_run()
    return removed


def step_cache_record(
    workdir: str | os.PathLike[str], flow_run: Any, settings: CacheSettings
) -> Callable[[str, str], dict[str, Any] | None]:
    """A function from (step id, final state) to the step's ``run.json`` ``cache`` field (``None``: not run)."""
    noted = KeyStore(workdir).reasons(str(flow_run)) if settings.enabled else {}

    def record(step_id: str, state: str) -> dict[str, Any] | None:
        if state == "CACHED":
            return {"reused": True, "reason": REUSED}
        if state not in ("COMPLETED", "FAILED"):
            return None
        if not settings.enabled:
            return {"reused": False, "reason": "--no-cache"}
        reused, reason = noted.get(step_id, (False, "reason not recorded"))
        return {"reused": False, "reason": "the stored result could not be read" if reused else reason}

    return record
