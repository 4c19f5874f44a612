"""Warm worker processes for the analysis' CPU-bound step bodies.

Prefect's thread runner keeps orchestration cheap (one process, one API client),
but Python threads share one core for CPU-bound work. Task bodies therefore hand
their computation to a *zygote* (:mod:`mltoolkit.processes.zygote`): a process that has
already imported scikit-learn, matplotlib and the toolkit and forks a fresh child
per call. Starting it is the first thing our command lines do, so its imports
run on the second core while the main process imports Prefect; each step then
starts in milliseconds and the classifiers use every core.

Without an active pool (a unit test, ``--runner process`` or ``dask``),
:func:`run_in_pool` calls the function in the current process.

This module must not import Prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mltoolkit.errors import StepFailedError, ZygoteError, ZygoteTimeout
from mltoolkit.processes.kept_zygote import fork_zygote
from mltoolkit.processes.zygote import RunningZygote, ZygoteClient, start_zygote

__all__ = ["PRELOAD_MODULES", "ComputePool", "active_pool", "pool_for_flow", "run_in_pool", "start_pool"]

T = TypeVar("T")

#: Imported once by the zygote; every worker inherits them.
PRELOAD_MODULES = ["mltoolkit.analysis.preload"]


class ComputePool:
    """A zygote server plus a client limited to ``workers`` concurrent calls."""

    def __init__(self, workers: int | None = None, *, fork: bool = False) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._zygote: RunningZygote = (_forked_zygote() if fork else None) or start_zygote(PRELOAD_MODULES)
        self._client: ZygoteClient = self._zygote.client(self.workers)

    @property
    def socket_path(self) -> str:
        """The zygote's socket (for the ``python`` shim of spec steps)."""
        return self._zygote.socket_path

    def run(self, function: Callable[..., T], /, *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
        """Run ``function`` in a fresh warm child and return its result (re-raising its error).

        After ``timeout`` seconds the child and everything it started are killed
        and :class:`~mltoolkit.errors.StepFailedError` is raised.
        """
        try:
            return self._client.call_with_timeout(function, args, kwargs, timeout)
        except ZygoteTimeout as error:
            raise StepFailedError(str(error)) from None

    def shutdown(self) -> None:
        """Stop the zygote."""
        self._zygote.stop()


def _forked_zygote() -> RunningZygote | None:
    """A zygote forked from this process, when it has imported the preload and may fork (no other thread)."""
    if not all(name in sys.modules for name in PRELOAD_MODULES):
        return None
    try:
        return fork_zygote()
    except ZygoteError:  # other threads run: start a new interpreter instead
        return None


_active: ComputePool | None = None


def active_pool() -> ComputePool | None:
    """The pool in use in this process, if any."""
    return _active


def start_pool(workers: int | None = None, *, fork: bool = False) -> ComputePool:
    """Start (once) the process-wide pool; it is stopped when the process exits.

    ``fork``: fork the zygote from this process if it has imported the preload
    modules (a warm command, :mod:`flows.startup.warm_commands`) instead of
    starting a new interpreter that imports them.

    Call it from the main thread (as :func:`flows.startup.prepare_cli_process`
    does): the zygote dies with the thread that started it, even on SIGKILL.
    """
    global _active
    if _active is None:
        _active = ComputePool(workers, fork=fork)
        atexit.register(_shutdown_active)
    return _active


def _shutdown_active() -> None:
    global _active
    if _active is not None:
        _active.shutdown()
        _active = None


def run_in_pool(function: Callable[..., T], /, *args: Any, timeout: float | None = None, **kwargs: Any) -> T:
    """Run ``function`` in the active pool, or in this process when there is none.

    ``timeout`` applies in the pool (in-process calls rely on Prefect's task timeout).
    """
    pool = _active
    if pool is None:
        return function(*args, **kwargs)
    return pool.run(function, *args, timeout=timeout, **kwargs)


@contextlib.contextmanager
def pool_for_flow(enabled: bool = True) -> Iterator[ComputePool | None]:
    """Use the process-wide pool, starting one for this block if none is active.

    A pool started here is stopped when the block ends (and dies with this
    thread if the process is killed); one started earlier (by a command line)
    is left running for later flows in the same process.
    """
    global _active
    if not enabled or _active is not None:
        yield _active
        return
    pool = ComputePool()
    _active = pool
    try:
        yield pool
    finally:
        _active = None
        pool.shutdown()
