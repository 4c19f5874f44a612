"""Running a step: commands and scripts, logs and output, noop steps."""

from __future__ import annotations

import json

import pytest

from mltoolkit.errors import WorkdirError
from mltoolkit.yadage.packtivity import StepOptions, parse_image_map, run_step


def test_string_command_log_output_callback_and_publish(make_step, tmp_path):
    lines: list[str] = []
    step = make_step(
        "echo hello {who}; echo to-stderr >&2; echo {who} > {outfile}",
        publisher={"publisher_type": "interpolated-pub", "publish": {"file": "{outfile}", "who": "{who}"}},
    )
    workdir = tmp_path / "hello"
    result = run_step(
        step,
        {"who": "world", "outfile": str(workdir / "out.txt")},
        workdir,
        name="hello",
        stage="greet",
        on_output=lines.append,
    )
    assert result.exit_code == 0 and result.environment == "local"
    assert result.published == {"file": str(workdir / "out.txt"), "who": "world"}
    assert lines == ["hello world", "to-stderr"]
    assert result.log_path == workdir / "_packtivity" / "hello.run.log"
    assert result.log_path.read_text() == "hello world\nto-stderr\n"
    assert (workdir / "_packtivity" / "hello.command").read_text().startswith("echo hello world;")
    assert (workdir / "out.txt").read_text() == "world\n"


def test_script_runs_with_sh_by_default_in_the_step_folder(make_step, tmp_path):
    step = make_step(script="set -e\npwd > where.txt\nfor i in {items}; do echo $i; done\n")
    result = run_step(step, {"items": [1, 2]}, tmp_path / "s", name="s")
    assert (tmp_path / "s" / "where.txt").read_text().strip() == str((tmp_path / "s").resolve())
    assert result.log_path.read_text() == "1\n2\n"
    assert (tmp_path / "s" / "_packtivity" / "s.script").exists()


def test_script_with_python_interpreter(make_step, tmp_path):
    step = make_step(
        script='import json, sys\nprint(json.dumps({{"value": "{value}", "major": sys.version_info[0]}}))\n',
        interpreter="python",
    )
    lines: list[str] = []
    run_step(step, {"value": "it's raw"}, tmp_path / "py", name="py", on_output=lines.append)
    assert json.loads(lines[0]) == {"value": "it's raw", "major": 3}
    assert (tmp_path / "py" / "_packtivity" / "py.py").exists()


def test_noop_env_runs_nothing_and_publishes(make_step, tmp_path):
    step = make_step(
        "exit 1",
        environment={"environment_type": "noop-env"},
        publisher={"publisher_type": "frompar-pub", "outputmap": {"out": "x"}},
    )
    result = run_step(step, {"x": 5}, tmp_path / "noop")
    assert result.published == {"out": 5} and result.exit_code is None and result.log_path is None
    assert result.command == "exit 1" and not (tmp_path / "noop" / "_packtivity").exists()


@pytest.mark.parametrize("planted", ["folder", "log"])
def test_the_private_folder_never_leads_outside_the_step_folder(make_step, tmp_path, planted):
    outside = tmp_path / "outside"
    outside.mkdir()
    workdir = tmp_path / "step"
    (workdir / "_packtivity").mkdir(parents=True)
    if planted == "folder":
        (workdir / "_packtivity").rmdir()
        (workdir / "_packtivity").symlink_to(outside)
    else:
        (workdir / "_packtivity" / "s.run.log").symlink_to(outside / "log")
    with pytest.raises(WorkdirError, match=r"step s: private (folder|file) .* not strictly inside"):
        run_step(make_step("echo hi"), {}, workdir, name="s")
    assert list(outside.iterdir()) == []


def test_par_mount_files_stay_in_the_private_folder(docker_step, tmp_path):
    image_map = parse_image_map(["img=local"], defaults=False)
    step = docker_step("cat /p.json", image="img", par_mounts=[{"jqscript": ".", "mountpath": "/p.json"}])
    run_step(step, {"n": 1}, tmp_path / "s", name="s", options=StepOptions(use_docker=False, image_map=image_map))
    assert (tmp_path / "s" / "_packtivity" / "s.parmount0").read_text() == '{"n": 1}'
