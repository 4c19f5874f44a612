"""Test-wide set-up: an isolated Prefect home and one Prefect API server per test session.

Pure tests never touch Prefect. Tests that run flows (in-process or as CLI
subprocesses) use the session-scoped ``prefect_api`` fixture: one
``prefect_test_harness`` server for the whole run, whose URL subprocesses get
through ``PREFECT_API_URL``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from tests.constants import REPO_ROOT

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mltoolkit-tests-"))

# Must be set before anything imports prefect.
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ["PREFECT_LOGGING_LEVEL"] = os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["MLTOOLKIT_API_IDLE_TIMEOUT"] = "0"
os.environ["MLTOOLKIT_CACHE"] = str(_SESSION_DIR / "download-cache")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One Prefect test server for the session; returns its API URL (also set in the env)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        url = PREFECT_API_URL.value()
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture
def cli_env(prefect_api: str) -> dict[str, str]:
    """Environment for CLI subprocesses: the session's Prefect API, no kept-alive servers."""
    environment = dict(os.environ)
    environment["PREFECT_API_URL"] = prefect_api
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return environment


@pytest.fixture
def offline_env() -> dict[str, str]:
    """Environment for CLI subprocesses that must fail before touching Prefect's API."""
    environment = dict(os.environ)
    environment["PREFECT_API_URL"] = "http://127.0.0.1:9/api"  # discard port: nothing answers
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return environment


def run_cli(args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 300):
    """Run ``python <args>`` as a subprocess and return the CompletedProcess (text mode)."""
    import subprocess

    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
