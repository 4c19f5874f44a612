"""What running a step needs (:class:`StepOptions`) and what it produced (:class:`StepResult`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.yadage.packtivity.environments import DEFAULT_IMAGE_MAP, ImageMapping

if TYPE_CHECKING:
    from mltoolkit.yadage.packtivity.stub import StubPlan

__all__ = ["DOCKER_NETWORK_VARIABLE", "StepOptions", "StepResult"]

#: Environment variable naming the ``--network`` of step containers (e.g. ``none``); unset: the engine's default.
DOCKER_NETWORK_VARIABLE = "MLTOOLKIT_DOCKER_NETWORK"


def _network_from_environment() -> str | None:
    return os.environ.get(DOCKER_NETWORK_VARIABLE) or None


@dataclass
class StepOptions:
    """How to run steps.

    Attributes:
        quote: shell-quote interpolated values (``False``: yadage's raw pasting).
        image_map: image (``name`` for any tag, or ``name:tag``) -> local environment.
        zygote_socket: warm Python server for the ``toolkit`` environment's ``python``.
        timeout: seconds before the step's process group (and container) is killed (``None``: no limit).
        extra_env: variables added to every step's environment.
        use_docker: for images without an explicit image-map entry (those always run as
            mapped): ``True`` Docker, ``False`` never Docker, ``None`` Docker when an engine answers.
        shared_dirs: folders mounted into Docker containers (e.g. the run's WORKDIR, so
            steps see upstream files); the step's own folder is always mounted.
        docker_network: ``--network`` of step containers (default: ``$MLTOOLKIT_DOCKER_NETWORK``,
            else the engine's default).
        image_ids: image -> id, remembered for this run's cache keys (:func:`environment_identity`).
        provided: resources this machine provides (``--provide NAME=VALUE``): name -> value.
        memory_limit: bytes a step's processes may use (``None``: no limit); set per step
            from its environment's resources (``kubernetes_memory_limit``), for a container
            as ``docker run --memory``.
        stub: run every step as a stub (:mod:`~mltoolkit.yadage.packtivity.stub`) instead.
    """

    quote: bool = True
    image_map: dict[str, ImageMapping] = field(default_factory=lambda: dict(DEFAULT_IMAGE_MAP))
    zygote_socket: str | None = None
    timeout: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    use_docker: bool | None = None
    shared_dirs: tuple[str, ...] = ()
    docker_network: str | None = field(default_factory=_network_from_environment)
    image_ids: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    provided: dict[str, str] = field(default_factory=dict)
    memory_limit: int | None = None
    stub: StubPlan | None = None


@dataclass
class StepResult:
    """What running a step produced.

    ``where`` says where it ran, in the run record's ``environment`` format: ``kind``
    (``local``, ``noop``, ``docker``, or the image-map entry's kind), and ``image``,
    ``image_id``, ``container``, ``container_id`` (Docker) or ``mapped_to`` (an image map).
    ``resources``: its resources record, ``None`` when it asked for none.
    """

    published: Any
    exit_code: int | None
    log_path: Path | None
    command: str
    environment: str
    duration: float = 0.0
    where: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] | None = None
