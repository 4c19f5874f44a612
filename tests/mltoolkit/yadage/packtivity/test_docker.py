"""The Docker engine side: the probe, image ids and pulls, the ``docker run`` line, container names.

A fake ``docker`` (``fake_docker``) stands in for the engine; ``tests/docker/`` runs
the same code against a real one.
"""

from __future__ import annotations

import csv
import os
import re

import pytest

from mltoolkit.yadage.packtivity.docker import (
    DockerRun,
    container_name,
    docker_available,
    docker_command,
    docker_problem,
    image_id,
    pull_image,
    remove_container,
)


def _mounts(command: list[str]) -> list[dict[str, str]]:
    """The ``--mount`` values of a command line, parsed as docker does (CSV, then key=value)."""
    found = []
    for index, word in enumerate(command):
        if word == "--mount":
            [fields] = csv.reader([command[index + 1]])
            found.append(dict(field.partition("=")[::2] for field in fields))
    return found


def test_probe_answers_once_per_engine_address(fake_docker, monkeypatch):
    assert docker_problem(refresh=True) is None and docker_available()
    fake_docker.answer(info_exit="1")
    assert docker_available() is True  # remembered for this address
    assert docker_problem(refresh=True) == f"{os.environ['DOCKER_HOST']}: no output"
    monkeypatch.setenv("DOCKER_HOST", "unix:///another/engine.sock")
    assert docker_problem() == "unix:///another/engine.sock: no output"  # another address: asked again
    assert len(fake_docker.calls("info")) == 3


def test_probe_without_a_docker_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    assert docker_problem() == "no docker command on PATH"


def test_image_id_pull_and_remove(fake_docker):
    assert image_id("team/tools:1") is None
    assert pull_image("team/tools:1") == "pull access denied"  # docker's last line, whitespace collapsed
    fake_docker.answer(image_id="sha256:" + "ab" * 32)
    assert image_id("team/tools:1") == "sha256:" + "ab" * 32
    remove_container("mltk-x-12345678")
    assert fake_docker.calls("rm") == [["rm", "--force", "mltk-x-12345678"]]


def test_container_names_are_unique_and_valid():
    names = {container_name("classification_0") for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"mltk-classification_0-[0-9a-f]{8}", name) for name in names)
    assert re.fullmatch(r"mltk-a-b-c-[0-9a-f]{8}", container_name("a b/c"))
    assert re.fullmatch(r"mltk-step-[0-9a-f]{8}", container_name("  "))


def test_docker_run_line_mounts_user_name_labels_network(tmp_path):
    root = tmp_path / 'run, with "quotes" and spaces'
    step = root / "stage_0"
    command = docker_command(
        DockerRun(
            image="sha256:1234",
            name="mltk-stage_0-00000000",
            workdir=str(step),
            container_workdir="/opt/work",
            shared_dirs=(str(root),),
            read_only=(("/host/p.json", "/p.json"),),
            env={"A": "1 2"},
            labels={"org.mltoolkit.step": "stage 's' step s"},
            network="none",
            memory="512m",
            cidfile=str(step / "s.cid"),
        ),
        ["sh", "-c", "ls"],
    )
    assert command[:6] == ["docker", "run", "--rm", "--init", "--name", "mltk-stage_0-00000000"]
    assert command[command.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
    # the step's folder is inside the run's folder: one mount covers both, at its own path
    assert _mounts(command) == [
        {"type": "bind", "source": str(root), "target": str(root)},
        {"type": "bind", "source": "/host/p.json", "target": "/p.json", "readonly": ""},
    ]
    pairs = dict(zip(command[6:-4:2], command[7:-3:2]))
    assert pairs["--workdir"] == "/opt/work" and pairs["--env"] == "A=1 2" and pairs["--network"] == "none"
    assert pairs["--label"] == "org.mltoolkit.step=stage 's' step s" and pairs["--memory"] == "512m"
    assert pairs["--cidfile"] == str(step / "s.cid")
    assert command[-4:] == ["sha256:1234", "sh", "-c", "ls"]


def test_docker_run_line_defaults(tmp_path):
    command = docker_command(DockerRun(image="img:1", name="n", workdir=str(tmp_path)), ["true"])
    assert _mounts(command) == [{"type": "bind", "source": str(tmp_path), "target": str(tmp_path)}]
    assert command[command.index("--workdir") + 1] == str(tmp_path)
    for option in ("--network", "--memory", "--cidfile", "--env", "--label"):
        assert option not in command


@pytest.mark.parametrize("folder", ["/a/b", "/a/b/"])
def test_a_shared_folder_outside_the_step_folder_is_mounted_too(folder):
    command = docker_command(DockerRun(image="i", name="n", workdir="/a/bc", shared_dirs=(folder,)), ["true"])
    assert [mount["source"] for mount in _mounts(command)] == [folder, "/a/bc"]
