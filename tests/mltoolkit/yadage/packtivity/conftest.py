"""Fixtures for the step-runner tests: build validated steps from a few fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mltoolkit.yadage import StepSpec, validate_step


def _make_step(
    cmd: str | None = None,
    *,
    script: str | None = None,
    interpreter: str | None = None,
    environment: dict[str, Any] | None = None,
    publisher: dict[str, Any] | None = None,
) -> StepSpec:
    if script is not None:
        process: dict[str, Any] = {"process_type": "interpolated-script-cmd", "script": script}
        if interpreter:
            process["interpreter"] = interpreter
    else:
        process = {"process_type": "string-interpolated-cmd", "cmd": cmd}
    return validate_step(
        {
            "process": process,
            "environment": environment or {"environment_type": "localproc-env"},
            "publisher": publisher or {"publisher_type": "constant-pub", "publish": {}},
        }
    )


@pytest.fixture(scope="session")
def make_step() -> Callable[..., StepSpec]:
    """``make_step(cmd)`` or ``make_step(script=..., interpreter=...)``: a localproc step (constant-pub)."""
    return _make_step


@pytest.fixture(scope="session")
def docker_step() -> Callable[..., StepSpec]:
    """``docker_step(cmd, image, **environment fields)``: a docker-encapsulated step."""

    def build(cmd: str, image: str = "some/image", **extra: Any) -> StepSpec:
        return _make_step(cmd, environment={"environment_type": "docker-encapsulated", "image": image, **extra})

    return build
