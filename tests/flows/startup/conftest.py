"""Helpers of the start-up tests: the environment of a command in the default configuration."""

from __future__ import annotations

import os
from pathlib import Path

from tests.constants import REPO_ROOT


def default_configuration(folder: Path, idle_timeout: float) -> dict[str, str]:
    """A command's environment with no Prefect configuration, its own ``HOME`` and ``PREFECT_HOME`` in ``folder``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLTOOLKIT_"))}
    env.update(
        HOME=str(folder / "user"),
        PREFECT_HOME=str(folder / "prefect-home"),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        MLTOOLKIT_API_IDLE_TIMEOUT=str(idle_timeout),
        PYTHONPATH=str(REPO_ROOT),
    )
    return env
