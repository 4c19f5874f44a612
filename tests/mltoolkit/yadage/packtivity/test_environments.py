"""Environments: where a step runs (the image map's rule), the toolkit's python, mounts, par_mounts, envscripts."""

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
    lookup_image,
    parse_image_map,
    place_step,
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
    assert "\n" not in message
    assert message.startswith(
        "stage 'st' step d: image 'some/image:2.1' has no image-map entry and no Docker engine answers "
        "(Docker is turned off for this run); "
    )
    assert "start Docker" in message and "--image-map some/image=local" in message


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


# --- an explicit choice wins: where a docker-encapsulated step runs ---------------------------


@pytest.mark.parametrize(
    ("entries", "map_file", "engine", "expected"),
    [
        ([], None, True, ("docker", None)),  # the built-in entry gives way to an engine
        ([], None, False, ("toolkit", "built-in entry")),
        (["danikam/sklearn=local"], None, True, ("local", "--image-map")),  # an explicit entry wins
        (["danikam/sklearn=local"], None, False, ("local", "--image-map")),
        ([], "danikam/sklearn: local\n", True, ("local", "image map file")),
        (["danikam/sklearn=toolkit"], "danikam/sklearn: local\n", True, ("toolkit", "--image-map")),
    ],
    ids=["builtin-engine", "builtin-no-engine", "cli-engine", "cli-no-engine", "file-engine", "cli-over-file"],
)
def test_explicit_entries_apply_with_or_without_an_engine(docker_step, tmp_path, entries, map_file, engine, expected):
    file = None
    if map_file is not None:
        file = tmp_path / "map.yml"
        file.write_text(map_file)
    placement = place_step(docker_step("true", image="danikam/sklearn"), parse_image_map(entries, file), engine)
    kind, source = expected
    assert placement.kind == kind and placement.image == "danikam/sklearn:latest"
    if source is None:
        assert placement.mapping is None
    else:
        assert placement.mapping is not None and placement.mapping.source.startswith(source)
        assert placement.mapping.built_in is (source == "built-in entry")


def test_placement_of_local_and_noop_steps_needs_no_engine(make_step):
    assert place_step(make_step("true"), {}, None).kind == "local"
    noop = make_step("true", environment={"environment_type": "noop-env"})
    assert place_step(noop, {}, None).kind == "noop"


def test_no_engine_answering_is_one_line_naming_both_fixes(docker_step, fake_docker):
    fake_docker.answer(info_exit="1")
    placement = place_step(docker_step("true", image="team/tools", imagetag="3"), {}, None)
    assert placement.kind == "unavailable" and placement.problem is not None
    assert "\n" not in placement.problem
    assert "no Docker engine answers (unix://" in placement.problem
    assert "start Docker (or point DOCKER_HOST at a running engine)" in placement.problem
    assert "--image-map team/tools=local" in placement.problem


def test_mapping_description_says_kind_source_and_mounts():
    mapping = DEFAULT_IMAGE_MAP["danikam/sklearn"]
    assert mapping.describe() == f"toolkit (built-in entry; /fun_with_ml={TOOLKIT_SCRIPTS_DIR})"
    assert parse_image_map(["x=local"], defaults=False)["x"].describe() == "local (--image-map)"
