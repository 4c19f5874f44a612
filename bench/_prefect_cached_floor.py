"""Prefect's own cost of a cached re-run of the seed's shape: the floor under ``bench/cache.py``'s run (2).

Run by ``bench/cache.py`` against the kept API server it measured on
(``PREFECT_API_URL`` and its auth string are set, and ``PREFECT_LOCAL_STORAGE_PATH``
to a fresh folder). One async flow with the seed analysis' shape: a preparation
task, five classification tasks mapped over it, a merge; every task cached on its
inputs, its result persisted to local storage, on our flows' default task runner.
The flow is called once (every task runs), then ``REPEATS`` more times in the same
process, where every task is cached: no process start, no import, no file of
ours, no key of ours, no run record. Prints ``first SECONDS`` and ``cached
SECONDS`` (the median of the cached calls).

Internal helper: ``python bench/_prefect_cached_floor.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from prefect import flow, task, unmapped
from prefect.cache_policies import INPUTS

from flows.runners import make_task_runner

#: Cached calls measured after the first one.
REPEATS = 5
CLASSIFIERS = ["nearest_neighbours", "linear_svm", "rbf_svm", "decision_tree", "random_forest"]


@task(cache_policy=INPUTS, persist_result=True)
def prepare(seed: int) -> list[float]:
    """A small data set."""
    return [float((seed * index) % 7) for index in range(200)]


@task(cache_policy=INPUTS, persist_result=True)
def classify(data: list[float], name: str) -> dict[str, Any]:
    """A score."""
    return {"name": name, "score": sum(data) / len(data)}


@task(cache_policy=INPUTS, persist_result=True)
def merge(results: list[dict[str, Any]]) -> dict[str, float]:
    """The scores by name."""
    return {result["name"]: result["score"] for result in results}


@flow(task_runner=make_task_runner("thread"), log_prints=False)
async def seed_shaped(seed: int) -> dict[str, float]:
    """prepare -> classify.map -> merge, as the seed analysis."""
    data = prepare(seed)
    results = classify.map(unmapped(data), CLASSIFIERS).result()
    return merge(results)


def _timed(seed: int) -> float:
    start = time.perf_counter()
    asyncio.run(seed_shaped(seed))
    return time.perf_counter() - start


def main() -> None:
    # without them Prefect would start a temporary server of its own, and store results in the user's home
    if not os.environ.get("PREFECT_API_URL") or not os.environ.get("PREFECT_LOCAL_STORAGE_PATH"):
        raise SystemExit("PREFECT_API_URL or PREFECT_LOCAL_STORAGE_PATH is not set: run by bench/cache.py")
    seed = time.time_ns() % 1_000_003  # inputs no earlier run cached
    first = _timed(seed)
    cached = statistics.median(_timed(seed) for _ in range(REPEATS))
    print(f"first {first:.4f}\ncached {cached:.4f}", flush=True)


if __name__ == "__main__":
    main()
