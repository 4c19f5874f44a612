"""Fixtures of the docker tests: the engine (or a visible skip) and the image, built once.

See ``tests/docker/engine.py`` for which engine, base image and CA certificates
are used. The build time and image size are printed at the end of the run.
"""

from __future__ import annotations

import pytest

from tests.docker.engine import BuiltImage, build_image, engine_problem

#: The tag the session builds the repository's Dockerfile under.
IMAGE_TAG = "mltoolkit-test:pytest"

_built: list[BuiltImage] = []


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (saying why, in one line) when no Docker engine answers."""
    problem = engine_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def mltoolkit_image(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """The repository's image, built once per session (the layer cache makes rebuilds quick)."""
    image = build_image(IMAGE_TAG, tmp_path_factory.mktemp("docker-build"))
    _built.append(image)
    return image


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the docker tests built: base, build time, size."""
    for image in _built:
        terminalreporter.write_line(
            f"docker image {image.tag}: base {image.base}, built in {image.build_seconds:.0f} s, "
            f"{image.size_bytes / 1e6:.0f} MB"
        )
