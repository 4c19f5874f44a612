"""Environments: the image map, Docker, the toolkit's python, mounts, par_mounts and envscripts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mltoolkit.errors import CommandLineError
from mltoolkit.yadage.packtivity import (
    DEFAULT_IMAGE_MAP,
    TOOLKIT_SCRIPTS_DIR,
    EnvironmentUnavailableError,
    ImageMapping,
    StepOptions,
    docker_available,
    docker_command,
    lookup_image,
    parse_image_map,
    run_step,
)


def test_image_without_docker_or_map_entry_names_both_fixes(docker_step, tmp_path):
    with pytest.raises(EnvironmentUnavailableError) as caught:
        run_step(
            docker_step("true", imagetag="2.1"),
            {},
            tmp_path / "d",
            name="d",
            stage="st",
            options=StepOptions(use_docker=False),
        )
    message = str(caught.value)
    assert "stage 'st' step d: image 'some/image:2.1' has no image-map entry and no Docker engine answers" in message
    assert "--image-map some/image=local" in message and "install and start Docker" in message


def test_local_image_mapping_with_mounts_rewrites_paths(docker_step, tmp_path):
    tools = tmp_path / "host tools"
    tools.mkdir()
    (tools / "tool.sh").write_text('echo "tool got $1"\n')
    image_map = parse_image_map([f"my/image=local:/opt/tools={tools}"], defaults=False)
    step = docker_step("sh /opt/tools/tool.sh {arg}; echo {path}", image="my/image", imagetag="1.0")
    lines: list[str] = []
    result = run_step(
        step,
        {"arg": "a b", "path": "/opt/tools/data.txt"},
        tmp_path / "s",
        options=StepOptions(use_docker=False, image_map=image_map),
        on_output=lines.append,
    )
    assert result.environment == "local"
    assert lines == ["tool got a b", f"{tools}/data.txt"]


def test_toolkit_mapping_uses_this_python_and_the_toolkit_scripts(docker_step, tmp_path):
    step = docker_step(
        "python -c 'import sys; print(sys.executable)'; echo /fun_with_ml/data_prep.py",
        image="danikam/sklearn",
    )
    lines: list[str] = []
    result = run_step(step, {}, tmp_path / "t", options=StepOptions(use_docker=False), on_output=lines.append)
    assert result.environment == "toolkit"
    assert lines[0] in (sys.executable, os.path.realpath(sys.executable))
    assert lines[1] == str(TOOLKIT_SCRIPTS_DIR / "data_prep.py")


def test_toolkit_mapping_with_a_zygote_socket_installs_the_zygote_shim(docker_step, tmp_path):
    step = docker_step("python -c 'print(40 + 2)'; command -v python", image="danikam/sklearn:1.2")
    lines: list[str] = []
    run_step(
        step,
        {},
        tmp_path / "z",
        on_output=lines.append,
        options=StepOptions(use_docker=False, zygote_socket=str(tmp_path / "no.sock")),
    )
    assert lines[0] == "42"  # `python -c` is not a script: the shim runs the real interpreter
    assert str(tmp_path / "no.sock") in Path(lines[1]).read_text()


def test_par_mounts_env_and_envscript_with_a_local_mapping(docker_step, tmp_path):
    (tmp_path / "env.sh").write_text("export FROM_ENVSCRIPT=sourced\n")
    image_map = parse_image_map([f"img=local:/setup={tmp_path}"], defaults=False)
    step = docker_step(
        "cat /params.json; echo; echo $GREETING $FROM_ENVSCRIPT",
        image="img",
        env={"GREETING": "hi"},
        envscript="/setup/env.sh",
        par_mounts=[{"jqscript": "{n: .n}", "mountpath": "/params.json"}],
    )
    lines: list[str] = []
    run_step(
        step,
        {"n": 3, "other": 1},
        tmp_path / "p",
        options=StepOptions(use_docker=False, image_map=image_map),
        on_output=lines.append,
    )
    assert json.loads(lines[0]) == {"n": 3}
    assert lines[1] == "hi sourced"


def test_docker_run_when_an_engine_answers(docker_step, tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > {tmp_path}/docker-args.bin\n")
    (fake / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    workdir = tmp_path / "step"
    run_step(
        docker_step("echo {x}", image="some/image"),
        {"x": "a b"},
        workdir,
        name="d",
        options=StepOptions(use_docker=True, shared_dirs=(str(tmp_path),), extra_env={"K": "v"}),
    )
    args = (tmp_path / "docker-args.bin").read_bytes().decode().split("\0")[:-1]
    assert args[:2] == ["run", "--rm"]
    assert ["-v", f"{workdir.resolve()}:{workdir.resolve()}"] == args[args.index("-v") : args.index("-v") + 2]
    assert f"{tmp_path}:{tmp_path}" in args and args[args.index("-e") : args.index("-e") + 2] == ["-e", "K=v"]
    assert args[-4:] == ["some/image:latest", "sh", "-c", "echo 'a b'"]


def test_docker_probe_is_cached_and_needs_a_working_engine(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\nexit 0\n")
    (fake / "docker").chmod(0o755)
    try:
        monkeypatch.setenv("PATH", str(fake))
        assert docker_available(refresh=True) is True
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        assert docker_available() is True  # cached
        assert docker_available(refresh=True) is False
    finally:
        monkeypatch.undo()
        docker_available(refresh=True)


def test_docker_command_shape(tmp_path):
    command = docker_command(
        "img:1",
        ["sh", "-c", "ls"],
        workdir=tmp_path,
        container_workdir="/work",
        shared_dirs=[str(tmp_path)],
        env={"A": "1"},
        extra_mounts=[("/h/p.json", "/p.json")],
    )
    assert command[:4] == ["docker", "run", "--rm", "-i"]
    assert command.count("-v") == 2 and "/h/p.json:/p.json:ro" in command
    assert command[command.index("-w") + 1] == "/work" and command[-4:] == ["img:1", "sh", "-c", "ls"]


def test_parse_image_map_entries_file_and_lookup(tmp_path):
    (tmp_path / "map.yml").write_text(
        "team/analysis: local\nteam/tools:2.0: {kind: local, mounts: {/opt/x: sub}}\ndanikam/sklearn: local\n"
    )
    image_map = parse_image_map(["team/analysis=toolkit"], tmp_path / "map.yml")
    assert image_map["team/analysis"].kind == "toolkit"  # entries override the file
    assert image_map["team/tools:2.0"] == ImageMapping("local", (("/opt/x", str(tmp_path / "sub")),))
    assert image_map["danikam/sklearn"] == ImageMapping("local")  # the file overrides the default
    assert lookup_image("team/tools:2.0", image_map).kind == "local"
    assert lookup_image("team/tools:3.0", image_map) is None  # an exact-tag entry matches only that tag
    assert lookup_image("danikam/sklearn:any", DEFAULT_IMAGE_MAP).kind == "toolkit"
    assert lookup_image("docker.io/danikam/sklearn:latest", DEFAULT_IMAGE_MAP).python_shim
    assert lookup_image("registry:5000/x/y", {"registry:5000/x/y": ImageMapping()}) is not None
    with pytest.raises(CommandLineError, match=r"--image-map 'nothing': expected IMAGE=local"):
        parse_image_map(["nothing"])
    with pytest.raises(CommandLineError, match=r"unknown environment 'podman'"):
        parse_image_map(["a=podman"])
    with pytest.raises(CommandLineError, match=r"mount 'relative=/x' must be /container/path=/host/path"):
        parse_image_map(["a=local:relative=/x"])
    (tmp_path / "bad.yml").write_text("- a\n")
    with pytest.raises(CommandLineError, match=r"expected a mapping IMAGE: local\|toolkit"):
        parse_image_map([], tmp_path / "bad.yml")
