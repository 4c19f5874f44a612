"""A step's container: the image it runs (pulled when missing), its name, the line it logs, its datasets.

Known dataset URLs among a Docker step's values (the seed's Dropbox URL) become the
bundled copy of the file, mounted read-only at ``/mltoolkit/datasets/<file>``: the
known-URL registry holds inside containers too, so such a step needs no network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.analysis.data import known_dataset_file
from mltoolkit.errors import EnvironmentUnavailableError
from mltoolkit.yadage.packtivity.docker import (
    CONTAINER_LABEL,
    container_name,
    engine_address,
    image_id,
    pull_image,
)
from mltoolkit.yadage.packtivity.environments import Placement, image_name

__all__ = ["DATASETS_MOUNT", "Container", "prepare_container", "with_bundled_datasets"]

#: Where bundled datasets are mounted in a step's container.
DATASETS_MOUNT = "/mltoolkit/datasets"


@dataclass
class Container:
    """The container a step runs in.

    Attributes:
        image: the image as the spec names it (``name:tag``).
        image_id: the id it runs by (``sha256:...``).
        name: the container's unique name.
        cidfile: where docker writes the container's id (in the step's private folder).
        labels: the container's labels.
    """

    image: str
    image_id: str
    name: str
    cidfile: Path
    labels: dict[str, str] = field(default_factory=dict)

    def announce(self, log_path: Path, on_output: Callable[[str], None] | None, *, network: str | None) -> None:
        """Say in the step's log (and output) which image and container it runs in."""
        user = f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else "default"
        line = (
            f"[mltoolkit] running in Docker: image {self.image} ({self.image_id}), container {self.name}, "
            f"user {user}, network {network or 'default'}"
        )
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        if on_output is not None:
            on_output(line)

    def started_id(self) -> str | None:
        """The container's id once docker has created it (``None`` before, or if it never was)."""
        try:
            return self.cidfile.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


def prepare_container(
    placement: Placement, label: str, step_name: str, private_file: Callable[[str], Path]
) -> Container:
    """The container for a step placed in Docker: its image's id (pulled when missing), name and cidfile.

    Raises:
        EnvironmentUnavailableError: the engine has no such image and cannot pull it; one
            line naming the image, docker's reason and both fixes.
    """
    image = placement.image or ""
    found = image_id(image)
    if found is None:
        reason = pull_image(image)
        found = image_id(image) if reason is None else None
        if found is None:
            raise EnvironmentUnavailableError(
                f"{label}: Docker image {image!r} is not on the engine at {engine_address()} and cannot be pulled "
                f"({reason or 'pulled, yet not found'}); build or pull it (docker build -t {image} ...), or run "
                f"the image's steps on this machine with --image-map {image_name(image)}=local"
            )
    cidfile = private_file(".cid")
    cidfile.unlink(missing_ok=True)  # docker refuses to overwrite one (a retry in the same folder)
    return Container(image, found, container_name(step_name), cidfile, {CONTAINER_LABEL: label})


def with_bundled_datasets(value: Any, mounts: dict[str, str]) -> Any:
    """``value`` with each known dataset URL replaced by its bundled file's path in the container.

    Each file used is added to ``mounts`` (host path -> container path), to be mounted read-only.
    """
    if isinstance(value, str):
        path = known_dataset_file(value)
        if path is None:
            return value
        mounts[str(path)] = f"{DATASETS_MOUNT}/{path.name}"
        return mounts[str(path)]
    if isinstance(value, list):
        return [with_bundled_datasets(item, mounts) for item in value]
    if isinstance(value, dict):
        return {key: with_bundled_datasets(item, mounts) for key, item in value.items()}
    return value
