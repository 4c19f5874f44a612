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
import os

import pydantic

from flows.startup.compute_pool import PRELOAD_MODULES as STEP_MODULES
from flows.startup.prebuilt_settings import prebuild_root_settings
from flows.startup.prefect_settings import configured_api_url, quiet_console_logging

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


def _prebuild_prefect_settings() -> None:
    """Prefect's settings as a fork will have them once its start-up has chosen the API server.

    A guess of what :func:`~flows.startup.temporary_server.start_early` will add to the
    environment (the kept server recorded now, or the configured API); a fork that ends
    up with another environment builds its own, as before.
    """
    from flows.startup import temporary_server as server

    if server.api_url_configured():
        extra = server.plain_http_client_settings(configured_api_url(), os.environ)
    else:
        record = server.recorded_server() if server.idle_timeout() > 0 else None
        if record is None:
            return
        extra = {"PREFECT_API_URL": record.api_url, "PREFECT_API_AUTH_STRING": record.auth_string}
        extra.update(server.plain_http_client_settings(record.api_url, os.environ))
    prebuild_root_settings(extra)


def _preload() -> None:
    quiet_console_logging()  # as prepare_cli_process does, before Prefect reads its logging settings
    for name in (*PRELOADED_MODULES, *STEP_MODULES):
        importlib.import_module(name)
    _complete_prefect_models()
    from flows.cache_records import prepare_result_types

    prepare_result_types()
    mimetypes.init()  # the system's table of media types, which the run's RO-Crate looks up
    with contextlib.suppress(Exception):  # a fork then reads them itself, and meets the same problem there
        _prebuild_prefect_settings()
    # Nothing that goes into a cache key is computed here (code digest, library versions):
    # each command reads them itself, so a cached result never outlives what made it.


_preload()
