"""Where a step runs without Docker: the image map, mounts as path rewrites, the ``python`` on PATH.

A ``docker-encapsulated`` step runs in Docker (:mod:`.docker`) unless the *image map*
says otherwise. The rule: an entry the user gave (``--image-map`` or a map file)
always applies, engine or not -- an explicit choice wins; the built-in entry for the
seed's ``danikam/sklearn`` applies only when no engine answers. ``local`` runs the
command here as is, optionally with ``/container/path=/host/path`` mounts applied as
path rewrites; ``toolkit`` maps ``/fun_with_ml`` onto this toolkit's step scripts and
puts a ``python`` on ``PATH`` that is this interpreter (or the warm zygote).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import re
import shlex
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.errors import CommandLineError
from mltoolkit.yadage.model import DockerEncapsulatedEnv, NoopEnv, StepSpec
from mltoolkit.yadage.packtivity.docker import docker_problem

__all__ = [
    "BUILT_IN",
    "DEFAULT_IMAGE_MAP",
    "TOOLKIT_MAPPING",
    "TOOLKIT_MOUNT",
    "TOOLKIT_SCRIPTS_DIR",
    "ImageMapping",
    "Placement",
    "image_name",
    "lookup_image",
    "parse_image_map",
    "place_step",
    "python_shim_dir",
    "rewrite_text",
    "rewrite_values",
]

#: Folder of this toolkit's step scripts (what ``/fun_with_ml`` maps to).
TOOLKIT_SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "analysis" / "fun_with_ml"
#: The container path the seed's image keeps its scripts in.
TOOLKIT_MOUNT = "/fun_with_ml"
#: The ``source`` of the toolkit's own image-map entries.
BUILT_IN = "built-in entry"


@dataclass(frozen=True)
class ImageMapping:
    """How to run a Docker image's steps without Docker.

    Attributes:
        kind: ``"local"`` (run as is) or ``"toolkit"`` (this toolkit's scripts and Python).
        mounts: ``(container_path, host_path)`` pairs applied as path rewrites, the
            way a bind mount would make them visible.
        provides: ``(resource, value)`` pairs: the resources (``CVMFS``, ``GRIDProxy``...)
            this image's environment provides to steps that need them.
        source: where the entry comes from (``--image-map``, an image map file, or
            the built-in entry); only a built-in entry gives way to a Docker engine.
    """

    kind: str = "local"
    mounts: tuple[tuple[str, str], ...] = ()
    provides: tuple[tuple[str, str], ...] = ()
    source: str = field(default="--image-map", compare=False)

    @property
    def python_shim(self) -> bool:
        """True when ``python`` on the step's PATH must be this toolkit's interpreter."""
        return self.kind == "toolkit"

    @property
    def built_in(self) -> bool:
        """True for the toolkit's own entries, which apply only when no Docker engine answers."""
        return self.source == BUILT_IN

    def describe(self) -> str:
        """``toolkit (built-in entry; /fun_with_ml=/host/path)``: the kind, where it comes from, the mounts."""
        mounts = ", ".join(f"{container}={host}" for container, host in self.mounts)
        return f"{self.kind} ({self.source}{'; ' + mounts if mounts else ''})"


TOOLKIT_MAPPING = ImageMapping("toolkit", ((TOOLKIT_MOUNT, str(TOOLKIT_SCRIPTS_DIR)),), source=BUILT_IN)
#: Built-in entries: the seed's image runs with this toolkit's scripts (when no engine answers).
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


def _mapping_from_text(text: str, *, base: Path, where: str, source: str) -> ImageMapping:
    kind, _, mounts = text.strip().partition(":")
    if kind == "toolkit":
        extra = _parse_mounts(mounts, base=base, where=where) if mounts else ()
        overridden = {container for container, _host in extra}
        kept = tuple(mount for mount in TOOLKIT_MAPPING.mounts if mount[0] not in overridden)
        return ImageMapping("toolkit", kept + extra, source=source)
    if kind == "local":
        return ImageMapping("local", _parse_mounts(mounts, base=base, where=where) if mounts else (), source=source)
    raise CommandLineError(
        f"{where}: unknown environment {kind!r}; expected 'local', 'local:/container=/host,...' or 'toolkit'"
    )


def _parse_provides(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """An entry's ``provides``: a list of resource names, or a mapping of names to values."""
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value):
        return tuple((item.strip(), "") for item in value)
    if isinstance(value, dict) and all(isinstance(key, str) and key.strip() for key in value):
        return tuple((key.strip(), "" if item is None else str(item)) for key, item in value.items())
    raise CommandLineError(
        f"{where}: provides must list resource names ([CVMFS, GRIDProxy]) or map them to values "
        f"({{CVMFS: /cvmfs}}), found {value!r}"
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
    {/container: /host}, provides: [CVMFS]}`` (``provides``: the resources the
    image's environment provides, a list or a mapping of names to values, e.g.
    ``{CVMFS: /cvmfs}``); relative host paths resolve against the file's folder
    (the current directory for entries). Entries override the file, which overrides
    the built-in entries (``defaults``). Entries and file entries apply whether or not
    a Docker engine answers; built-in entries only when none does.

    Raises:
        CommandLineError: a malformed entry or file.
    """
    mapping: dict[str, ImageMapping] = dict(DEFAULT_IMAGE_MAP) if defaults else {}
    if file is not None:
        mapping.update(_image_map_file(Path(file)))
    for entry in entries:
        image, separator, value = entry.partition("=")
        if not separator or not image.strip() or not value.strip():
            raise CommandLineError(
                f"--image-map {entry!r}: expected IMAGE=local (or IMAGE=local:/container=/host, IMAGE=toolkit)"
            )
        mapping[image.strip()] = _mapping_from_text(
            value, base=Path.cwd(), where=f"--image-map {entry!r}", source="--image-map"
        )
    return mapping


def _image_map_file(path: Path) -> dict[str, ImageMapping]:
    """The entries of an image map file (see :func:`parse_image_map`)."""
    from mltoolkit.yamlfiles import read_yaml

    mapping: dict[str, ImageMapping] = {}
    source = f"image map file {path}"
    data = read_yaml(path, what="image map file", error=CommandLineError)
    if not isinstance(data, dict):
        raise CommandLineError(
            f"image map file {path}: found {type(data).__name__}, expected a mapping IMAGE: local|toolkit"
        )
    for image, value in data.items():
        where = f"image map file {path}, image {image!r}"
        if isinstance(value, str):
            mapping[str(image)] = _mapping_from_text(value, base=path.parent.resolve(), where=where, source=source)
        elif isinstance(value, dict) and set(value) <= {"kind", "mounts", "provides"}:
            mounts = value.get("mounts") or {}
            if not isinstance(mounts, dict):
                raise CommandLineError(f"{where}: mounts must map /container/path to /host/path")
            text = ",".join(f"{container}={host}" for container, host in mounts.items())
            parsed = _mapping_from_text(
                f"{value.get('kind', 'local')}:{text}" if text else str(value.get("kind", "local")),
                base=path.parent.resolve(),
                where=where,
                source=source,
            )
            provides = _parse_provides(value.get("provides"), where)
            mapping[str(image)] = dataclasses.replace(parsed, provides=provides)
        else:
            raise CommandLineError(
                f"{where}: found {value!r}, expected 'local', 'toolkit' or "
                "{kind: local, mounts: {...}, provides: [CVMFS]}"
            )
    return mapping


def image_name(image: str) -> str:
    """``image`` without its tag (``registry:5000/team/tools:2`` -> ``registry:5000/team/tools``)."""
    last = image.rsplit("/", 1)[-1]
    return image[: len(image) - len(last)] + last.split(":", 1)[0] if ":" in last else image


def lookup_image(image: str, image_map: Mapping[str, ImageMapping]) -> ImageMapping | None:
    """The entry for ``image`` (``name:tag``): an exact ``name:tag`` entry, else one for ``name``."""
    if image in image_map:
        return image_map[image]
    name = image_name(image)
    if name in image_map:
        return image_map[name]
    for prefix in ("docker.io/", "docker.io/library/"):
        if name.startswith(prefix) and name[len(prefix) :] in image_map:
            return image_map[name[len(prefix) :]]
    return None


# --- where a step runs --------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a step runs.

    Attributes:
        kind: ``noop``, ``local`` (``localproc-env``), ``docker``, the kind of the
            image-map entry it runs with (``local``, ``toolkit``), or ``unavailable``.
        image: the image a ``docker-encapsulated`` step names (``name:tag``).
        mapping: the image-map entry it runs with, instead of Docker.
        problem: why it can run nowhere (``kind == "unavailable"``): what was found
            and both fixes, for the step's one-line error.
    """

    kind: str
    image: str | None = None
    mapping: ImageMapping | None = None
    problem: str | None = None


def place_step(step: StepSpec, image_map: Mapping[str, ImageMapping], use_docker: bool | None) -> Placement:
    """Where ``step`` runs: the image map's explicit entries win, then Docker, then the built-in entries.

    ``use_docker``: ``None`` asks whether an engine answers (:func:`.docker.docker_problem`);
    ``True``/``False`` decide without asking.
    """
    if isinstance(step.environment, NoopEnv):
        return Placement("noop")
    environment = step.environment
    if not isinstance(environment, DockerEncapsulatedEnv):
        return Placement("local")
    image = environment.full_image
    mapping = lookup_image(image, image_map)
    if mapping is not None and not mapping.built_in:
        return Placement(mapping.kind, image, mapping)
    reason = docker_problem() if use_docker is None else (None if use_docker else "Docker is turned off for this run")
    if reason is None:
        return Placement("docker", image)
    if mapping is not None:
        return Placement(mapping.kind, image, mapping)
    return Placement(
        "unavailable",
        image,
        problem=(
            f"image {image!r} has no image-map entry and no Docker engine answers ({reason}); "
            f"start Docker (or point DOCKER_HOST at a running engine), or run the image's steps on this "
            f"machine with --image-map {environment.image}=local (or local:/container/path=/host/path)"
        ),
    )


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
