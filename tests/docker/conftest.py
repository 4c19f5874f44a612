"""Fixtures of the docker tests: the engine (or a visible skip) and the image, built once.

See ``tests/docker/engine.py`` for which engine, base image and CA certificates
are used. The build time and image size are printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker.engine import BuiltImage, build_image, docker, engine_problem

#: The tag the session builds the repository's Dockerfile under.
IMAGE_TAG = "mltoolkit-test:pytest"
#: The seed's image name: here our image, tagged so (danikam/sklearn cannot be pulled here).
SEED_IMAGE = "danikam/sklearn:latest"
#: The image the docker_paths spec fixture names (tests/specs/docker_paths/steps.yml).
STEP_TOOLS_IMAGE = "mltoolkit-test/step-tools:pytest"

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


def _image_id(reference: str) -> str | None:
    inspected = docker("image", "inspect", "--format", "{{.Id}}", reference, timeout=60, check=False)
    return inspected.stdout.strip() if inspected.returncode == 0 else None


@pytest.fixture(scope="session")
def spec_images(mltoolkit_image: BuiltImage) -> Iterator[str]:
    """The session's image also tagged as the seed's image and the docker_paths fixture's; returns its id.

    ``docker tag`` of the image just built: the same layers, no second build. At the end
    each tag points where it pointed before (or is removed), so an engine that had the
    real ``danikam/sklearn`` gets it back.
    """
    built = _image_id(mltoolkit_image.tag)
    assert built is not None, f"the session's image {mltoolkit_image.tag} is gone"
    before = {tag: _image_id(tag) for tag in (SEED_IMAGE, STEP_TOOLS_IMAGE)}
    for tag in before:
        docker("tag", mltoolkit_image.tag, tag, timeout=60)
    try:
        yield built
    finally:
        for tag, previous in before.items():
            if previous is None:
                docker("rmi", tag, timeout=60, check=False)  # the tag only: the image keeps its own
            else:
                docker("tag", previous, tag, timeout=60, check=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the docker tests built: base, build time, size."""
    for image in _built:
        terminalreporter.write_line(
            f"docker image {image.tag}: base {image.base}, built in {image.build_seconds:.0f} s, "
            f"{image.size_bytes / 1e6:.0f} MB"
        )
