"""Task runners the flows can use: Prefect's thread and process pools, and Dask.

``thread`` (the default) keeps Prefect's engine, its API client and its task
state in one process; the CPU-bound step bodies still run in parallel on every
core because tasks hand them to the warm compute pool (``flows.startup.compute_pool``).
That beats ``process`` (each worker process imports Prefect, scikit-learn and
matplotlib, ~2.5 s, and runs a Prefect engine of its own) for short steps;
``dask`` scales the same flow from a laptop (a ``LocalCluster`` on 127.0.0.1) to a
cluster (``--dask-address tcp://scheduler:8786``).

Deployments choose the runner with the ``MLTOOLKIT_TASK_RUNNER`` (and
``MLTOOLKIT_DASK_ADDRESS``) environment variables of their job, read when a flow
run starts (:mod:`flows.environment_runner`).

This module must not import Prefect at import time: the command lines use its
names before they start the API server (see :mod:`flows.startup`).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from mltoolkit.errors import CommandLineError

__all__ = [
    "COMMAND_LINE",
    "ENVIRONMENT",
    "RUNNERS",
    "RunnerName",
    "make_task_runner",
    "runner_from_environment",
    "uses_compute_pool",
]

RunnerName = Literal["thread", "process", "dask"]
RUNNERS: tuple[str, ...] = ("thread", "process", "dask")


#: Where the runner's name and the Dask address come from, for error messages.
COMMAND_LINE = ("--runner", "--dask-address")
ENVIRONMENT = ("MLTOOLKIT_TASK_RUNNER", "MLTOOLKIT_DASK_ADDRESS")


def make_task_runner(
    name: str,
    dask_address: str | None = None,
    workers: int | None = None,
    *,
    source: tuple[str, str] = COMMAND_LINE,
) -> Any:
    """Build the task runner called ``name`` (one of :data:`RUNNERS`).

    ``source`` names the runner and address settings in error messages
    (:data:`COMMAND_LINE` options or :data:`ENVIRONMENT` variables).

    Raises:
        CommandLineError: unknown runner name, or a Dask address with another runner.
    """
    runner_setting, address_setting = source
    if name not in RUNNERS:
        raise CommandLineError(f"{runner_setting} {name!r}: unknown task runner; choose one of {', '.join(RUNNERS)}")
    if dask_address and name != "dask":
        raise CommandLineError(
            f"{address_setting} {dask_address!r} needs {runner_setting} dask (found {runner_setting} {name})"
        )
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
                f"{address_setting} {dask_address!r}: expected a scheduler address such as tcp://127.0.0.1:8786"
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
    """The runner named by ``MLTOOLKIT_TASK_RUNNER`` (default ``thread``), for deployments.

    Raises:
        CommandLineError: an unknown name or a bad ``MLTOOLKIT_DASK_ADDRESS``, naming the variable.
    """
    runner_variable, address_variable = ENVIRONMENT
    return make_task_runner(
        os.environ.get(runner_variable, "thread") or "thread",
        os.environ.get(address_variable) or None,
        source=ENVIRONMENT,
    )


def uses_compute_pool(task_runner: Any) -> bool:
    """Whether tasks under ``task_runner`` should hand their work to the warm compute pool."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return isinstance(task_runner, ThreadPoolTaskRunner)
