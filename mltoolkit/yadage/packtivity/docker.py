"""Running a step in Docker: the engine probe, the image, the ``docker run`` line, the container's end.

The engine is whichever one the ``docker`` command talks to (``DOCKER_HOST``, else
Docker's default socket). A step's container runs as the invoking user
(``--user uid:gid``), with the run's folders mounted at their own paths, is removed
when it ends (``--rm``) and has a unique ``--name``, so a timeout or an interrupt can
remove it (:func:`remove_container`); with ``--init``, a signal to its ``docker run``
client (which forwards it) ends it too. It runs the image by its id, so the id the run
record names is the one that ran.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CONTAINER_LABEL",
    "DockerRun",
    "container_name",
    "docker_available",
    "docker_command",
    "docker_problem",
    "engine_address",
    "image_id",
    "pull_image",
    "remove_container",
]

#: Label on every step container (its value: the step's label), for ``docker ps --filter label=...``.
CONTAINER_LABEL = "org.mltoolkit.step"
_PROBE_SECONDS = 15
_INSPECT_SECONDS = 60
#: Pulling a large image over a slow link takes a while; a registry that never answers must not hang the run.
_PULL_SECONDS = 1800

_probe_lock = threading.Lock()
_problems: dict[str, str | None] = {}


def engine_address() -> str:
    """The engine the ``docker`` command talks to: ``DOCKER_HOST``, else Docker's default socket."""
    return os.environ.get("DOCKER_HOST") or "the default socket"


def _last_line(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _docker(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``docker ARGS``, output captured (raises ``FileNotFoundError`` without a ``docker`` command)."""
    executable = shutil.which("docker")
    if executable is None:
        raise FileNotFoundError("docker")
    return subprocess.run(
        [executable, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )


def docker_problem(*, refresh: bool = False) -> str | None:
    """``None`` when an engine answers ``docker info``; otherwise why not, in a few words.

    Asked once per engine address (``DOCKER_HOST``) and process unless ``refresh``.
    """
    address = engine_address()
    with _probe_lock:
        if refresh or address not in _problems:
            try:
                probe = _docker("info", "--format", "{{.ServerVersion}}", timeout=_PROBE_SECONDS)
                problem = None if probe.returncode == 0 else f"{address}: {_last_line(probe.stderr)}"
            except FileNotFoundError:
                problem = "no docker command on PATH"
            except subprocess.TimeoutExpired:
                problem = f"{address}: docker info did not answer within {_PROBE_SECONDS} s"
            except OSError as error:
                problem = f"cannot run docker ({error.strerror})"
            _problems[address] = problem
        return _problems[address]


def docker_available(*, refresh: bool = False) -> bool:
    """True when a Docker engine answers (:func:`docker_problem` is ``None``)."""
    return docker_problem(refresh=refresh) is None


def image_id(image: str) -> str | None:
    """The id (``sha256:...``) of ``image`` on the engine, ``None`` when the engine does not have it."""
    try:
        inspected = _docker("image", "inspect", "--format", "{{.Id}}", image, timeout=_INSPECT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = inspected.stdout.strip()
    return found if inspected.returncode == 0 and found else None


def pull_image(image: str) -> str | None:
    """``docker pull image``: ``None`` when it worked, otherwise docker's reason (one line)."""
    try:
        pulled = _docker("pull", "--quiet", image, timeout=_PULL_SECONDS)
    except subprocess.TimeoutExpired:
        return f"docker pull did not finish within {_PULL_SECONDS} s"
    except OSError as error:
        return f"cannot run docker ({error.strerror})"
    return None if pulled.returncode == 0 else _last_line(pulled.stderr or pulled.stdout)


def container_name(step_name: str) -> str:
    """A unique container name for a step: ``mltk-<step name>-<8 hex digits>`` (Docker's name rules)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", step_name).strip("-.")[:40] or "step"
    return f"mltk-{readable}-{uuid.uuid4().hex[:8]}"


def remove_container(name: str) -> None:
    """``docker rm --force NAME``: stop and remove the container if it exists (errors are ignored)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        _docker("rm", "--force", name, timeout=_INSPECT_SECONDS)


def _bind(source: str, target: str, *, read_only: bool) -> str:
    """A ``--mount`` value; CSV-quoted, so paths with commas, quotes or spaces stay whole."""
    fields = ["type=bind", f"source={source}", f"target={target}"] + (["readonly"] if read_only else [])
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(fields)
    return text.getvalue()


def _within(path: str, folders: Iterable[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


@dataclass
class DockerRun:
    """What a ``docker run`` of a step needs besides the command.

    Attributes:
        image: the image to run (a name or, better, its ``sha256:`` id).
        name: the container's unique name (:func:`container_name`).
        workdir: the step's folder, mounted at its own path and the default working directory.
        container_workdir: the spec's ``workdir`` key (the container's working directory).
        shared_dirs: more folders mounted read-write at their own paths (the run's folder).
        read_only: ``(host path, container path)`` pairs mounted read-only (par_mounts, datasets).
        env: variables set in the container.
        labels: container labels (``CONTAINER_LABEL`` among them).
        network: ``--network`` (``None``: the engine's default).
        memory: ``--memory`` (``None``: no limit).
        cidfile: where docker writes the container's id.
    """

    image: str
    name: str
    workdir: str
    container_workdir: str | None = None
    shared_dirs: tuple[str, ...] = ()
    read_only: tuple[tuple[str, str], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str | None = None
    memory: str | None = None
    cidfile: str | None = None


def docker_command(run: DockerRun, argv: list[str]) -> list[str]:
    """The ``docker run`` command line that runs ``argv`` as :class:`DockerRun` describes."""
    # --init: a small init as PID 1 passes signals on (a shell as PID 1 ignores SIGTERM), so a
    # client that is told to stop (docker run forwards its signals) stops the container too.
    command = ["docker", "run", "--rm", "--init", "--name", run.name]
    if hasattr(os, "getuid"):
        command += ["--user", f"{os.getuid()}:{os.getgid()}"]
    mounted: list[str] = []
    # the run's folder covers the step's folder inside it: one mount each is enough
    for folder in [*run.shared_dirs, run.workdir]:
        if not _within(folder, mounted):
            mounted.append(folder)
            command += ["--mount", _bind(folder, folder, read_only=False)]
    for host, container in run.read_only:
        command += ["--mount", _bind(host, container, read_only=True)]
    command += ["--workdir", run.container_workdir or run.workdir]
    for key, value in run.env.items():
        command += ["--env", f"{key}={value}"]
    for key, value in run.labels.items():
        command += ["--label", f"{key}={value}"]
    if run.network:
        command += ["--network", run.network]
    if run.memory:
        command += ["--memory", run.memory]
    if run.cidfile:
        command += ["--cidfile", run.cidfile]
    return [*command, run.image, *argv]
