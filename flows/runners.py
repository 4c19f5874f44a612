"""Task runners the flows can use: Prefect's thread and process pools, and Dask.

``thread`` (the default) keeps Prefect's engine, its API client and its task
state in one process; the CPU-bound step bodies still run in parallel on every
core because tasks hand them to the warm compute pool (``flows.compute_pool``).
That beats ``process`` (each worker process imports Prefect, scikit-learn and
matplotlib, ~2.5 s, and runs a Prefect engine of its own) for short steps;
``dask`` scales the same flow from a laptop (a ``LocalCluster`` on 127.0.0.1) to a
cluster (``--dask-address tcp://scheduler:8786``).

Deployments choose the runner with the ``MLTOOLKIT_TASK_RUNNER`` (and
``MLTOOLKIT_DASK_ADDRESS``) environment variables of their job.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from mltoolkit.errors import CommandLineError

__all__ = ["RUNNERS", "RunnerName", "make_task_runner", "runner_from_environment", "uses_compute_pool"]

RunnerName = Literal["thread", "process", "dask"]
RUNNERS: tuple[str, ...] = ("thread", "process", "dask")


def make_task_runner(name: str, dask_address: str | None = None, workers: int | None = None) -> Any:
    """Build the task runner called ``name`` (one of :data:`RUNNERS`).

    Raises:
        CommandLineError: unknown runner name, or a Dask address with another runner.
    """
    if name not in RUNNERS:
        raise CommandLineError(f"--runner {name!r}: unknown task runner; choose one of {', '.join(RUNNERS)}")
    if dask_address and name != "dask":
        raise CommandLineError(f"--dask-address {dask_address!r} needs --runner dask (found --runner {name})")
    workers = workers or os.cpu_count() or 1
    if name == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max(4, 2 * workers))
    if name == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if dask_address:
        if not dask_address.startswith(("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
            raise CommandLineError(
                f"--dask-address {dask_address!r}: expected a scheduler address such as tcp://127.0.0.1:8786"
            )
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    )


def runner_from_environment() -> Any:
    """The runner named by ``MLTOOLKIT_TASK_RUNNER`` (default ``thread``), for deployments."""
    return make_task_runner(
        os.environ.get("MLTOOLKIT_TASK_RUNNER", "thread") or "thread",
        os.environ.get("MLTOOLKIT_DASK_ADDRESS") or None,
    )


def uses_compute_pool(task_runner: Any) -> bool:
    """Whether tasks under ``task_runner`` should hand their work to the warm compute pool."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return isinstance(task_runner, ThreadPoolTaskRunner)
