"""Where a step runs: the image map, the Docker probe and command line, the ``python`` on PATH.

A ``docker-encapsulated`` step runs in Docker when an engine answers (probed once);
otherwise the *image map* names a local environment for its image: ``local`` runs
the command here as is, optionally with ``/container/path=/host/path`` mounts
applied as path rewrites; ``toolkit`` (built in for the seed's ``danikam/sklearn``)
maps ``/fun_with_ml`` onto this toolkit's step scripts and puts a ``python`` on
``PATH`` that is this interpreter (or the warm zygote).
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltoolkit.errors import CommandLineError

__all__ = [
    "DEFAULT_IMAGE_MAP",
    "TOOLKIT_MAPPING",
    "TOOLKIT_MOUNT",
    "TOOLKIT_SCRIPTS_DIR",
    "ImageMapping",
    "docker_available",
    "docker_command",
    "lookup_image",
    "parse_image_map",
    "python_shim_dir",
    "rewrite_text",
    "rewrite_values",
]

#: Folder of this toolkit's step scripts (what ``/fun_with_ml`` maps to).
TOOLKIT_SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "analysis" / "fun_with_ml"
#: The container path the seed's image keeps its scripts in.
TOOLKIT_MOUNT = "/fun_with_ml"


@dataclass(frozen=True)
class ImageMapping:
    """How to run a Docker image's steps without Docker.

    Attributes:
        kind: ``"local"`` (run as is) or ``"toolkit"`` (this toolkit's scripts and Python).
        mounts: ``(container_path, host_path)`` pairs applied as path rewrites, the
            way a bind mount would make them visible.
    """

    kind: str = "local"
    mounts: tuple[tuple[str, str], ...] = ()

    @property
    def python_shim(self) -> bool:
        """True when ``python`` on the step's PATH must be this toolkit's interpreter."""
        return self.kind == "toolkit"


TOOLKIT_MAPPING = ImageMapping("toolkit", ((TOOLKIT_MOUNT, str(TOOLKIT_SCRIPTS_DIR)),))
#: Built-in entries: the seed's image runs with this toolkit's scripts.
DEFAULT_IMAGE_MAP: dict[str, ImageMapping] = {"danikam/sklearn": TOOLKIT_MAPPING}


# --- image map -----------------------------------------------------------------------------


def _parse_mounts(text: str, *, base: Path, where: str) -> tuple[tuple[str, str], ...]:
    mounts: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        container, separator, host = item.partition("=")
        if not separator or not container.startswith("/") or not host:
            raise CommandLineError(
                f"{where}: mount {item!r} must be /container/path=/host/path, e.g. local:/fun_with_ml=./scripts"
            )
        host_path = Path(host).expanduser()
        if not host_path.is_absolute():
            host_path = base / host_path
        mounts.append((container.rstrip("/") or "/", str(host_path.resolve())))
    return tuple(mounts)


def _mapping_from_text(text: str, *, base: Path, where: str) -> ImageMapping:
    kind, _, mounts = text.strip().partition(":")
    if kind == "toolkit":
        extra = _parse_mounts(mounts, base=base, where=where) if mounts else ()
        overridden = {container for container, _host in extra}
        kept = tuple(mount for mount in TOOLKIT_MAPPING.mounts if mount[0] not in overridden)
        return ImageMapping("toolkit", kept + extra)
    if kind == "local":
        return ImageMapping("local", _parse_mounts(mounts, base=base, where=where) if mounts else ())
    raise CommandLineError(
        f"{where}: unknown environment {kind!r}; expected 'local', 'local:/container=/host,...' or 'toolkit'"
    )


def parse_image_map(
    entries: Iterable[str] = (),
    file: str | os.PathLike[str] | None = None,
    *,
    defaults: bool = True,
) -> dict[str, ImageMapping]:
    """Build an image map from ``IMAGE=ENV`` entries and/or a YAML file.

    ``ENV`` is ``local``, ``local:/container/path=/host/path[,...]`` or ``toolkit``.
    The file maps images to such strings, or to ``{kind: local, mounts:
    {/container: /host}}``; relative host paths resolve against the file's folder
    (the current directory for entries). Entries override the file, which overrides
    the built-in entries (``defaults``).

    Raises:
        CommandLineError: a malformed entry or file.
    """
    mapping: dict[str, ImageMapping] = dict(DEFAULT_IMAGE_MAP) if defaults else {}
    if file is not None:
        from mltoolkit.yamlfiles import read_yaml

        path = Path(file)
        data = read_yaml(path, what="image map file", error=CommandLineError)
        if not isinstance(data, dict):
            raise CommandLineError(
                f"image map file {path}: found {type(data).__name__}, expected a mapping IMAGE: local|toolkit"
            )
        for image, value in data.items():
            where = f"image map file {path}, image {image!r}"
            if isinstance(value, str):
                mapping[str(image)] = _mapping_from_text(value, base=path.parent.resolve(), where=where)
            elif isinstance(value, dict) and set(value) <= {"kind", "mounts"}:
                mounts = value.get("mounts") or {}
                if not isinstance(mounts, dict):
                    raise CommandLineError(f"{where}: mounts must map /container/path to /host/path")
                text = ",".join(f"{container}={host}" for container, host in mounts.items())
                mapping[str(image)] = _mapping_from_text(
                    f"{value.get('kind', 'local')}:{text}" if text else str(value.get("kind", "local")),
                    base=path.parent.resolve(),
                    where=where,
                )
            else:
                raise CommandLineError(
                    f"{where}: found {value!r}, expected 'local', 'toolkit' or {{kind: local, mounts: {{...}}}}"
                )
    for entry in entries:
        image, separator, value = entry.partition("=")
        if not separator or not image.strip() or not value.strip():
            raise CommandLineError(
                f"--image-map {entry!r}: expected IMAGE=local (or IMAGE=local:/container=/host, IMAGE=toolkit)"
            )
        mapping[image.strip()] = _mapping_from_text(value, base=Path.cwd(), where=f"--image-map {entry!r}")
    return mapping


def lookup_image(image: str, image_map: Mapping[str, ImageMapping]) -> ImageMapping | None:
    """The entry for ``image`` (``name:tag``): an exact ``name:tag`` entry, else one for ``name``."""
    if image in image_map:
        return image_map[image]
    name = image
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name = image[: len(image) - len(last)] + last.split(":", 1)[0]
    if name in image_map:
        return image_map[name]
    for prefix in ("docker.io/", "docker.io/library/"):
        if name.startswith(prefix) and name[len(prefix) :] in image_map:
            return image_map[name[len(prefix) :]]
    return None


_docker_lock = threading.Lock()
_docker_answer: bool | None = None


def docker_available(*, refresh: bool = False) -> bool:
    """True when ``docker info`` succeeds (asked once per process unless ``refresh``)."""
    global _docker_answer
    with _docker_lock:
        if _docker_answer is None or refresh:
            executable = shutil.which("docker")
            if executable is None:
                _docker_answer = False
            else:
                try:
                    probe = subprocess.run(
                        [executable, "info"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=15,
                    )
                    _docker_answer = probe.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    _docker_answer = False
        return _docker_answer


# --- running -------------------------------------------------------------------------------


def docker_command(
    image: str,
    argv: list[str],
    *,
    workdir: Path,
    container_workdir: str | None = None,
    shared_dirs: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    extra_mounts: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """The ``docker run`` command line for a step (folders mounted at their own paths)."""
    command = ["docker", "run", "--rm", "-i"]
    if hasattr(os, "getuid"):
        command += ["--user", f"{os.getuid()}:{os.getgid()}"]
    mounted: list[str] = []
    for folder in [str(workdir), *shared_dirs]:
        if folder not in mounted:
            mounted.append(folder)
            command += ["-v", f"{folder}:{folder}"]
    for host, container in extra_mounts:
        command += ["-v", f"{host}:{container}:ro"]
    command += ["-w", container_workdir or str(workdir)]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    return command + [image, *argv]


# --- mounts as path rewrites ---------------------------------------------------------------


def _mount_pattern(container: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.\-/])" + re.escape(container.rstrip("/")) + r"(?=/|$|[^\w.\-])")


def rewrite_text(text: str, mounts: Iterable[tuple[str, str]], *, shell: bool) -> str:
    """``text`` with every container path of ``mounts`` replaced by its host path (quoted for a shell)."""
    for container, host in mounts:
        replacement = shlex.quote(host) if shell else host
        # a function, not a replacement string: a host path may hold backslashes
        text = _mount_pattern(container).sub(functools.partial(_constant, replacement), text)
    return text


def _constant(text: str, _match: re.Match[str]) -> str:
    return text


def rewrite_values(value: Any, mounts: tuple[tuple[str, str], ...]) -> Any:
    """``value`` (nested lists and dicts too) with strings under a container path moved to the host path."""
    if isinstance(value, str):
        for container, host in mounts:
            base = container.rstrip("/")
            if value == base or value.startswith(base + "/"):
                return host + value[len(base) :]
        return value
    if isinstance(value, list):
        return [rewrite_values(item, mounts) for item in value]
    if isinstance(value, dict):
        return {key: rewrite_values(item, mounts) for key, item in value.items()}
    return value


# --- python on PATH ------------------------------------------------------------------------

_shim_lock = threading.Lock()
_shim_dirs: dict[str | None, str] = {}


def python_shim_dir(zygote_socket: str | None) -> str:
    """A folder with ``python``/``python3`` that run this interpreter (through the zygote when given)."""
    with _shim_lock:
        if zygote_socket not in _shim_dirs:
            folder = tempfile.mkdtemp(prefix="mltk-python-")
            atexit.register(shutil.rmtree, folder, True)
            if zygote_socket:
                from mltoolkit.processes.zygote import write_python_shim

                write_python_shim(folder, zygote_socket)
            else:
                for name in ("python", "python3"):
                    shim = Path(folder) / name
                    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
                    shim.chmod(0o755)
            _shim_dirs[zygote_socket] = folder
        return _shim_dirs[zygote_socket]
