"""Helpers of the spec-in-Docker tests: the environment of a run against the tests' engine, its checks."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.docker.engine import docker_environment

__all__ = ["DOCKER_LINE", "assert_ran_in_docker", "run_spec", "spec_env"]

#: The first line a step run in Docker writes to its log.
DOCKER_LINE = re.compile(
    r"^\[mltoolkit\] running in Docker: image (?P<image>\S+) \((?P<id>sha256:[0-9a-f]{64})\), "
    r"container (?P<name>mltk-[\w.-]+-[0-9a-f]{8}), user (?P<user>\d+:\d+), network (?P<network>\S+)$"
)


def spec_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """``base`` (a CLI environment) talking to the tests' engine, plus ``extra``."""
    env = dict(base)
    host = docker_environment().get("DOCKER_HOST")
    if host:
        env["DOCKER_HOST"] = host
    env.update(extra)
    return env


def run_spec(
    run_cli: Any, env: dict[str, str], workdir: Path, toplevel: Path, workflow: str, *args: str
) -> subprocess.CompletedProcess:
    """``python -m flows.spec_workflow WORKDIR WORKFLOW ARGS... --toplevel TOPLEVEL`` (``run_cli``, a fixture)."""
    command = ["-m", "flows.spec_workflow", str(workdir), workflow, *args, "--toplevel", str(toplevel)]
    return run_cli(command, env, timeout=900)


def assert_ran_in_docker(step: dict[str, Any], image: str, image_id: str, network: str) -> None:
    """The step's record and log say it ran in a container of ``image`` (``image_id``)."""
    environment = step["environment"]
    assert environment["kind"] == "docker" and environment["image"] == image, environment
    assert environment["image_id"] == image_id, environment
    assert re.fullmatch(r"[0-9a-f]{64}", environment["container_id"]), environment
    log = Path(step["workdir"]) / "_packtivity" / f"{step['name']}.run.log"
    first = DOCKER_LINE.match(log.read_text().splitlines()[0])
    assert first, log.read_text()[:500]
    assert (first["image"], first["id"], first["name"]) == (image, image_id, environment["container"])
    assert first["user"] == f"{os.getuid()}:{os.getgid()}" and first["network"] == network
