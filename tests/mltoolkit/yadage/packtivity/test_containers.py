"""A step in a container: image ids and pulls, the run line, the record of where it ran, known datasets, kills.

A fake ``docker`` (``fake_docker``) stands in for the engine; ``tests/docker/`` runs
steps in real containers.
"""

from __future__ import annotations

import csv
import threading
import time

import pytest

from mltoolkit.analysis.data import bundled_dataset_path
from mltoolkit.errors import EnvironmentUnavailableError, StepCancelledError, StepFailedError
from mltoolkit.yadage.packtivity import CONTAINER_LABEL, StepOptions, environment_identity, parse_image_map, run_step
from mltoolkit.yadage.packtivity.containers import DATASETS_MOUNT, with_bundled_datasets
from mltoolkit.yadage.packtivity.execute import cancel_running_steps, reset_cancellation
from tests.constants import SEED_URL

IMAGE_ID = "sha256:" + "ab" * 32
CONTAINER_ID = "c0ffee" * 8


def test_known_dataset_urls_become_the_bundled_file_in_the_container():
    mounts: dict[str, str] = {}
    values = {"dataset": SEED_URL, "more": [SEED_URL, "https://example.org/x.txt"], "n": 3}
    swapped = with_bundled_datasets(values, mounts)
    inside = f"{DATASETS_MOUNT}/moon.txt"
    assert swapped == {"dataset": inside, "more": [inside, "https://example.org/x.txt"], "n": 3}
    assert mounts == {str(bundled_dataset_path("moon.txt")): inside}
    assert values["dataset"] == SEED_URL  # the caller's values are left alone


def test_a_step_in_docker_runs_the_image_by_id_as_the_user_and_says_where(docker_step, fake_docker, tmp_path):
    fake_docker.answer(image_id=IMAGE_ID)
    step = docker_step("prep --dataset {dataset} --out {workdir}/o", image="team/tools", imagetag="2")
    workdir = tmp_path / "run dir" / "prep"
    lines: list[str] = []
    result = run_step(
        step,
        {"dataset": SEED_URL},
        workdir,
        name="prep",
        stage="prep",
        on_output=lines.append,
        options=StepOptions(use_docker=True, shared_dirs=(str(tmp_path / "run dir"),), docker_network="none"),
    )
    [run] = fake_docker.calls("run")
    name = run[run.index("--name") + 1]
    assert result.environment == "docker"
    assert result.where == {
        "kind": "docker",
        "image": "team/tools:2",
        "image_id": IMAGE_ID,
        "container": name,
        "container_id": CONTAINER_ID,
    }
    assert run[run.index("--network") + 1] == "none"
    assert run[run.index("--label") + 1] == f"{CONTAINER_LABEL}=stage 'prep' step prep"
    [moon] = [value for index, value in enumerate(run) if index and run[index - 1] == "--mount" and "moon" in value]
    [fields] = csv.reader([moon])
    assert "readonly" in fields and f"target={DATASETS_MOUNT}/moon.txt" in fields
    assert run[-4:] == [IMAGE_ID, "sh", "-c", f"prep --dataset {DATASETS_MOUNT}/moon.txt --out '{workdir}'/o"]
    header = f"[mltoolkit] running in Docker: image team/tools:2 ({IMAGE_ID}), container {name}"
    assert lines[0].startswith(header) and lines[0].endswith("network none") and lines[1] == "ran in the fake engine"
    assert result.log_path is not None and result.log_path.read_text().startswith(header)
    assert fake_docker.calls("pull") == []  # the engine had the image


def test_a_missing_image_is_pulled_and_one_that_cannot_be_is_one_line(docker_step, fake_docker, tmp_path):
    fake_docker.answer(pull_error="pull access denied for nosuch/image, repository does not exist")
    with pytest.raises(EnvironmentUnavailableError) as caught:
        run_step(docker_step("true", image="nosuch/image"), {}, tmp_path / "s", name="s", stage="st",
                 options=StepOptions(use_docker=True))  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("stage 'st' step s: Docker image 'nosuch/image:latest' is not on the engine at unix://")
    assert "cannot be pulled (pull access denied for nosuch/image, repository does not exist)" in message
    assert "build or pull it" in message and "--image-map nosuch/image=local" in message
    assert fake_docker.calls("pull") == [["pull", "--quiet", "nosuch/image:latest"]]
    assert fake_docker.calls("run") == []


def test_a_timeout_removes_the_container(docker_step, fake_docker, tmp_path):
    fake_docker.answer(image_id=IMAGE_ID, run_seconds="60")
    with pytest.raises(StepFailedError, match="timed out after 1 s"):
        run_step(docker_step("sleep 60"), {}, tmp_path / "t", name="t",
                 options=StepOptions(use_docker=True, timeout=1))  # fmt: skip
    [run] = fake_docker.calls("run")
    name = run[run.index("--name") + 1]
    assert ["rm", "--force", name] in fake_docker.calls("rm")


def test_cancelling_the_run_removes_the_container(docker_step, fake_docker, tmp_path):
    fake_docker.answer(image_id=IMAGE_ID, run_seconds="600")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_step(docker_step("sleep 600"), {}, tmp_path / "c", name="c", options=StepOptions(use_docker=True))
        except BaseException as error:
            errors.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not fake_docker.calls("run"):
            assert runner.is_alive() and time.monotonic() < deadline, errors
            time.sleep(0.05)
        cancel_running_steps()
        runner.join(60)
        assert not runner.is_alive()
    finally:
        reset_cancellation()
        runner.join(60)
    assert len(errors) == 1 and isinstance(errors[0], StepCancelledError), errors
    [call] = fake_docker.calls("run")
    assert ["rm", "--force", call[call.index("--name") + 1]] in fake_docker.calls("rm")


def test_an_explicit_entry_runs_locally_even_when_an_engine_answers(docker_step, fake_docker, tmp_path):
    fake_docker.answer(image_id=IMAGE_ID)
    lines: list[str] = []
    result = run_step(
        docker_step("echo here", image="busybox"),
        {},
        tmp_path / "l",
        on_output=lines.append,
        options=StepOptions(image_map=parse_image_map(["busybox=local"])),
    )
    assert lines == ["here"]
    assert result.where == {"kind": "local", "image": "busybox:latest", "mapped_to": "local (--image-map)"}
    assert fake_docker.calls("run") == [] and fake_docker.calls("pull") == []


def test_environment_identity_names_the_image_id_once_per_run(docker_step, fake_docker, make_step):
    fake_docker.answer(image_id=IMAGE_ID)
    options = StepOptions(use_docker=True)
    step = docker_step("true", image="team/tools")
    expected = {"kind": "docker", "image": "team/tools:latest", "image_id": IMAGE_ID}
    assert environment_identity(step, options) == expected
    assert environment_identity(step, options) == expected
    assert len(fake_docker.calls("image")) == 1
    assert environment_identity(step, StepOptions(use_docker=False)) == {
        "kind": "unavailable",
        "image": "team/tools:latest",
    }
    assert environment_identity(make_step("true"), options) == {"kind": "local", "image": None}
