"""The Docker engine the docker tests use, and the image they build once per session.

Which engine: ``MLTK_TEST_DOCKER_HOST`` when set (``.ci/run`` sets it to the
engine ``.ci/docker-engine`` started, without exposing that engine to the rest
of the suite), else ``DOCKER_HOST``, else Docker's default socket.

Which base: ``MLTK_TEST_BASE_IMAGE`` when set, else ``local/debian:bookworm``
when the engine has it (the offline route: debootstrap + ``docker import``,
made by ``.ci/docker-engine start``), else the Dockerfile's default
``python:3.11-slim-bookworm``, which needs a registry.

Extra CA certificates: the host's ``/usr/local/share/ca-certificates/**/*.crt``
(``MLTK_TEST_EXTRA_CA_CERTS`` names another folder) go into
``deployments/ca-certificates/`` of the build context, the documented way. The
context is a temporary copy of the working tree (its files that git does not
ignore), so the test never writes into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.constants import REPO_ROOT

__all__ = [
    "DEFAULT_OFFLINE_BASE",
    "BuiltImage",
    "build_image",
    "docker",
    "docker_environment",
    "engine_problem",
    "leftover_containers",
]

DEFAULT_OFFLINE_BASE = "local/debian:bookworm"
#: Where the Dockerfile reads extra CA certificates from (relative to the build context).
CA_FOLDER = Path("deployments") / "ca-certificates"
HOST_CA_FOLDER = Path("/usr/local/share/ca-certificates")


def docker_environment() -> dict[str, str]:
    """The environment for ``docker`` commands (and the Prefect docker worker)."""
    environment = dict(os.environ)
    host = os.environ.get("MLTK_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if host:
        environment["DOCKER_HOST"] = host
    return environment


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS`` against the tests' engine; on failure (with ``check``) say what it printed."""
    completed = subprocess.run(
        ["docker", *args], env=docker_environment(), capture_output=True, text=True, timeout=timeout
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args[:3])} ... exited {completed.returncode}:\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return completed


def engine_problem() -> str | None:
    """None when an engine answers ``docker info``; otherwise one line saying why and what to do."""
    where = docker_environment().get("DOCKER_HOST", "the default socket")
    remedy = "start one with `.ci/docker-engine start` (CI=true or MLTK_DOCKER_INSTALL=1 installs docker.io)"
    if shutil.which("docker") is None:
        return f"no docker command on PATH; {remedy}"
    try:
        completed = docker("info", "--format", "{{.ServerVersion}}", timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return f"docker info at {where} did not answer within 60 s; {remedy}"
    if completed.returncode != 0:
        reason = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers at {where} ({reason}); {remedy}"
    return None


@dataclass(frozen=True)
class BuiltImage:
    """The image the session built: its tag, base, build time and size."""

    tag: str
    base: str
    build_seconds: float
    size_bytes: int


def _image_exists(reference: str) -> bool:
    return docker("image", "inspect", reference, timeout=60, check=False).returncode == 0


def choose_base_image() -> str | None:
    """The ``BASE_IMAGE`` build argument to use (None: the Dockerfile's default)."""
    chosen = os.environ.get("MLTK_TEST_BASE_IMAGE")
    if chosen:
        return chosen
    return DEFAULT_OFFLINE_BASE if _image_exists(DEFAULT_OFFLINE_BASE) else None


def extra_ca_certificates() -> list[Path]:
    """The host's extra CA certificates (the Debian way: ``*.crt`` below the folder)."""
    folder = Path(os.environ.get("MLTK_TEST_EXTRA_CA_CERTS", HOST_CA_FOLDER))
    return sorted(folder.rglob("*.crt")) if folder.is_dir() else []


def make_build_context(destination: Path, certificates: list[Path]) -> Path:
    """A copy of the working tree's files (those git does not ignore) plus the certificates."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    )
    for relative in filter(None, listed.stdout.decode().split("\0")):
        source = REPO_ROOT / relative
        if source.is_file():  # a tracked file deleted in the working tree is left out, as Docker would
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    ca_folder = destination / CA_FOLDER
    ca_folder.mkdir(parents=True, exist_ok=True)
    for index, certificate in enumerate(certificates):
        shutil.copy(certificate, ca_folder / f"host-{index}-{certificate.name}")
    return destination


def build_image(tag: str, context_parent: Path) -> BuiltImage:
    """``docker build`` the repository's Dockerfile under ``tag`` and return what was built."""
    base = choose_base_image()
    context = make_build_context(context_parent / "context", extra_ca_certificates())
    arguments = ["build", "--tag", tag]
    if base is not None:
        arguments += ["--build-arg", f"BASE_IMAGE={base}"]
    started = time.monotonic()
    docker(*arguments, str(context), timeout=3000)
    seconds = time.monotonic() - started
    size = int(docker("image", "inspect", "--format", "{{.Size}}", tag, timeout=60).stdout.strip())
    return BuiltImage(tag=tag, base=base or "(the Dockerfile's default)", build_seconds=seconds, size_bytes=size)


def leftover_containers(label_filter: str) -> list[str]:
    """Ids of containers (running or not) whose labels match ``label_filter`` (``key=value``)."""
    listed = docker("ps", "--all", "--quiet", "--filter", f"label={label_filter}", timeout=60)
    return listed.stdout.split()
