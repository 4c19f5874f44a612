"""Prefect's own per-task cost, the floor under a spec step: bare tasks mapped in one flow.

Run by ``bench/scale.py`` against the kept API server of its Prefect home (the same
server the scatter used; ``PREFECT_API_URL`` and its auth string are set): one flow maps a task that
returns its argument over ``N`` items, for each ``N`` given, with the task runner
and worker count of our flows' default (``flows.runners.make_task_runner("thread")``)
and the result persisted to local storage, as a cached spec step's is. No process,
no file, no cache key: what remains is Prefect's engine (states, events, the result
record) and the server recording each task run. Prints one line per ``N``:
``N seconds`` (the map alone, from its submission to its last result).

Internal helper: ``python bench/_prefect_floor.py RESULTS_FOLDER N [N ...]``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from prefect import flow, task

from flows.runners import make_task_runner


@task(persist_result=True, cache_policy=None)
def bare(item: int) -> int:
    """Nothing: the task's value is its argument."""
    return item


@flow(task_runner=make_task_runner("thread"), log_prints=False)
def mapped(count: int, results: str) -> float:
    """Seconds from submitting ``count`` bare task runs to the last one's result."""
    start = time.perf_counter()
    bare.with_options(result_storage=Path(results)).map(range(count)).result()
    return time.perf_counter() - start


def main() -> None:
    results, *counts = sys.argv[1:]
    if not os.environ.get("PREFECT_API_URL"):  # Prefect would start a temporary server of its own
        raise SystemExit("PREFECT_API_URL is not set: run by bench/scale.py against its kept server")
    for count in map(int, counts):
        print(count, f"{mapped(count, results):.4f}", flush=True)


if __name__ == "__main__":
    main()
