"""Running a step: commands and scripts, logs and output, noop steps."""

from __future__ import annotations

import json

from mltoolkit.yadage.packtivity import run_step


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
