"""What the kept command process imports once, before it forks flow commands (see :mod:`flows.startup.warm_commands`).

Importing this module does what a command does before it imports Prefect (its
console logging level, :func:`~flows.startup.prefect_settings.quiet_console_logging`),
then imports every command's modules: Prefect, the flows, the toolkit and the
RO-Crate library, and the step modules (scikit-learn, matplotlib), which a
command's step zygote then has at once (:func:`~mltoolkit.processes.kept_zygote.fork_zygote`).
"""

from __future__ import annotations

import contextlib
import importlib
import mimetypes

import pydantic

from flows.startup.compute_pool import PRELOAD_MODULES as STEP_MODULES
from flows.startup.prefect_settings import quiet_console_logging

__all__ = ["PRELOADED_MODULES"]

#: The modules a forked command finds imported.
PRELOADED_MODULES = (
    "flows.cli.app",
    "flows.ml_workflow",
    "flows.spec_workflow",
    "flows.spec_step",
    "flows.reproduce",
    "mltoolkit.workdir.provenance",
    # what a flow run imports on first use (found by diffing sys.modules after a run)
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.telemetry.run_telemetry",
    "prefect.utilities.visualization",
    "prefect._internal.control_listener",
    "anyio._backends._asyncio",
    "graphviz",
    "typer._adapters",
)


def _subclasses(model: type[pydantic.BaseModel]) -> list[type[pydantic.BaseModel]]:
    found = []
    for subclass in model.__subclasses__():
        found += [subclass, *_subclasses(subclass)]
    return found


def _complete_prefect_models() -> None:
    """Build now the validators Prefect's models would build on first use in every forked command.

    Models with forward references are completed lazily, per process: a fork of a
    kept process that never used them rebuilt ~250 of them in each command
    (create_flow_run, artifacts, events, log records).
    """
    for model in _subclasses(pydantic.BaseModel):
        if model.__module__.startswith("prefect.") and not model.__pydantic_complete__:
            with contextlib.suppress(Exception):  # one that cannot be built now is left to its first use, as before
                model.model_rebuild()


def _preload() -> None:
    quiet_console_logging()  # as prepare_cli_process does, before Prefect reads its logging settings
    for name in (*PRELOADED_MODULES, *STEP_MODULES):
        importlib.import_module(name)
    _complete_prefect_models()
    from flows.cache_records import prepare_result_types

    prepare_result_types()
    mimetypes.init()  # the system's table of media types, which the run's RO-Crate looks up
    # Nothing that goes into a cache key is computed here (code digest, library versions):
    # each command reads them itself, so a cached result never outlives what made it.


_preload()
