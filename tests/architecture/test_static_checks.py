"""The tree passes its static checks: lint, formatting, layer contracts and types.

Each check runs the pinned tool (see the ``test`` extra in ``pyproject.toml``) over
the repository with the configuration in ``pyproject.toml``, as a developer would.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.constants import REPO_ROOT

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
    "import contracts": [
        sys.executable,
        "-c",
        "from importlinter.cli import lint_imports_command; lint_imports_command()",
    ],
    "mypy": [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null"],
}


@pytest.mark.parametrize("command", CHECKS.values(), ids=CHECKS.keys())
def test_static_check_passes(command):
    checked = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    output = (checked.stdout + checked.stderr)[-6000:]
    assert checked.returncode == 0, output
