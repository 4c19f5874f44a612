"""The task runner of deployed flows: the one ``MLTOOLKIT_TASK_RUNNER`` names when a flow run starts.

A flow's ``task_runner`` is fixed when its ``@flow`` decorator runs, at import.
Reading the environment there would make importing a flow module depend on it
(an invalid value would break every import, tests and ``prefect deploy``
included). Instead the flows get an :class:`EnvironmentTaskRunner`: Prefect's
engine runs each flow run with ``flow.task_runner.duplicate()``, and this
runner's duplicate is the runner the environment names, built at that moment.
The command lines choose theirs with :func:`chosen_task_runner` around the flow
call: the duplicate is then a duplicate of that runner. (``flow.with_options``
would do as well, but builds the flow again: its parameter schema, ~30 ms of a
cached re-run.)
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner

from flows.runners import runner_from_environment

__all__ = ["EnvironmentTaskRunner", "chosen_task_runner"]

_chosen: contextvars.ContextVar[TaskRunner[Any] | None] = contextvars.ContextVar("chosen_task_runner", default=None)


@contextlib.contextmanager
def chosen_task_runner(task_runner: TaskRunner[Any]) -> Iterator[None]:
    """Flow runs started inside this block (in this context) run with ``task_runner``, not the environment's."""
    token = _chosen.set(task_runner)
    try:
        yield
    finally:
        _chosen.reset(token)


class EnvironmentTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """Stands for the runner named by ``MLTOOLKIT_TASK_RUNNER`` and ``MLTOOLKIT_DASK_ADDRESS``.

    Only its :meth:`duplicate` is ever used: Prefect runs a flow with the duplicate.
    """

    @property
    def name(self) -> str:
        """Shown by Prefect for this runner."""
        return "environment"

    def duplicate(self) -> Any:
        """The runner :func:`chosen_task_runner` chose, else the one the environment names now (``thread`` when unset).

        Raises:
            CommandLineError: the variables name an unknown runner or a bad Dask address.
        """
        chosen = _chosen.get()
        return chosen.duplicate() if chosen is not None else runner_from_environment()

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> PrefectFuture[Any]:
        """Not used: tasks are submitted to the runner :meth:`duplicate` returns."""
        raise NotImplementedError("EnvironmentTaskRunner is never entered; Prefect runs flows with its duplicate()")
