"""Phase 5: running one step -- interpolation and quoting, environments, publishers."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from mltoolkit.errors import CommandLineError, SpecError, StepFailedError
from mltoolkit.yadage import load_step_ref, validate_step
from mltoolkit.yadage.packtivity import (
    DEFAULT_IMAGE_MAP,
    TOOLKIT_SCRIPTS_DIR,
    EnvironmentUnavailableError,
    ImageMapping,
    StepOptions,
    docker_available,
    docker_command,
    interpolate,
    lookup_image,
    parse_image_map,
    quote_keep_globs,
    run_step,
)


def make_step(
    cmd: str | None = None,
    *,
    script: str | None = None,
    interpreter: str | None = None,
    environment: dict | None = None,
    publisher: dict | None = None,
):
    if script is not None:
        process = {"process_type": "interpolated-script-cmd", "script": script}
        if interpreter:
            process["interpreter"] = interpreter
    else:
        process = {"process_type": "string-interpolated-cmd", "cmd": cmd}
    return validate_step(
        {
            "process": process,
            "environment": environment or {"environment_type": "localproc-env"},
            "publisher": publisher or {"publisher_type": "constant-pub", "publish": {}},
        }
    )


# --- quoting ---------------------------------------------------------------------------------

PAYLOADS = [
    "x; touch {canary}",
    "x && touch {canary}",
    "x | touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "x\ntouch {canary}",
    "x > {canary}",
    "it's \"double\" and 'single'",
    "two  spaces\tand a tab",
    "-n",
    "--output={canary}",
    "$HOME ${{PATH}}",
    "x' ; touch {canary} ; echo '",
    'x" ; touch {canary} ; echo "',
    "back\\slash\\",
    "",
]

CONTEXTS = {
    "bare": "printf '%s\\0' {payload} > {workdir}/args.bin",
    "double quotes": "printf '%s\\0' \"{payload}\" > {workdir}/args.bin",
    "single quotes": "printf '%s\\0' '{payload}' > {workdir}/args.bin",
    "command substitution": "printf '%s\\0' \"$(printf '%s' {payload})\" > {workdir}/args.bin",
    "here-document": "cat > {workdir}/args.bin <<EOF\n{payload}\nEOF\n",
}


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"p{i}" for i in range(len(PAYLOADS))])
def test_payload_reaches_the_command_as_one_literal_argument(tmp_path, context, payload):
    canary = tmp_path / "PWNED"
    value = payload.format(canary=canary)
    step = make_step(script=CONTEXTS[context])
    workdir = tmp_path / "step"
    run_step(step, {"payload": value}, workdir, name="quoting")
    data = (workdir / "args.bin").read_bytes().decode()
    if context == "here-document":
        assert data == value + "\n"
    else:
        assert data.split("\0")[:-1] == [value]
    assert not canary.exists()


def test_list_elements_stay_separate_words_so_for_loops_iterate(tmp_path):
    canary = tmp_path / "PWNED"
    words = ["a b", f"c; touch {canary}", "$(x)", "*"]
    step = make_step(script="for word in {words}; do printf '%s\\0' \"$word\"; done > {workdir}/args.bin")
    run_step(step, {"words": words}, tmp_path / "step")
    got = (tmp_path / "step" / "args.bin").read_bytes().decode().split("\0")[:-1]
    assert got[:3] == ["a b", f"c; touch {canary}", "$(x)"]
    assert not canary.exists()


def test_glob_wildcards_in_values_still_expand(tmp_path):
    outdir = tmp_path / "my dir"
    outdir.mkdir()
    for name in ("a.pkl", "b.pkl", "c.txt"):
        (outdir / name).write_text("x")
    step = make_step("printf '%s\\0' {ml_inputs} > {workdir}/args.bin")
    run_step(step, {"ml_inputs": [f"{outdir}/*.pkl", f"{outdir}/c.tx?"]}, tmp_path / "step")
    got = (tmp_path / "step" / "args.bin").read_bytes().decode().split("\0")[:-1]
    assert got == [f"{outdir}/a.pkl", f"{outdir}/b.pkl", f"{outdir}/c.txt"]


def test_quote_false_pastes_values_raw_like_yadage(tmp_path):
    canary = tmp_path / "PWNED"
    step = make_step("echo {payload}")
    run_step(step, {"payload": f"x; touch {canary}"}, tmp_path / "step", options=StepOptions(quote=False))
    assert canary.exists()


def test_quote_keep_globs_and_interpolate_details():
    assert quote_keep_globs("/a b/*.pkl") == "'/a b/'*.pkl"
    assert quote_keep_globs("f[0-9].txt") == "f[0-9].txt"
    assert quote_keep_globs("[1, 2]") == "'[1, 2]'"
    assert quote_keep_globs("") == "''"
    assert (
        interpolate("{n:03d} {xs[1]} {{literal}} {workdir}", {"n": 7, "xs": ["a", "b c"]}, workdir="/w")
        == "007 'b c' {literal} /w"
    )
    assert interpolate("echo {xs}", {"xs": [1, "a b"]}, quote=False) == "echo 1 a b"
    assert interpolate("print('{v}')", {"v": "it's"}, shell=False) == "print('it's')"
    assert interpolate("# it's a comment\necho {v}", {"v": "a;b"}) == "# it's a comment\necho 'a;b'"
    with pytest.raises(
        SpecError, match=r"uses \{missing\} but the step has no such parameter \(parameters: a, workdir\)"
    ):
        interpolate("echo {missing}", {"a": 1}, workdir="/w")
    with pytest.raises(SpecError, match=r"malformed braces .*write literal braces as \{\{ and \}\}"):
        interpolate("awk 'END {{ print }' }", {})


def test_a_value_cannot_end_a_here_document_early(tmp_path):
    step = make_step(script="cat <<EOF\n{payload}\nEOF\n")
    with pytest.raises(SpecError, match=r"contains the line 'EOF', which would end the here-document"):
        run_step(step, {"payload": "a\nEOF\ntouch x"}, tmp_path / "step", name="heredoc")


# --- processes -------------------------------------------------------------------------------


def test_string_command_log_output_callback_and_publish(tmp_path):
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


def test_script_runs_with_sh_by_default_in_the_step_folder(tmp_path):
    step = make_step(script="set -e\npwd > where.txt\nfor i in {items}; do echo $i; done\n")
    result = run_step(step, {"items": [1, 2]}, tmp_path / "s", name="s")
    assert (tmp_path / "s" / "where.txt").read_text().strip() == str((tmp_path / "s").resolve())
    assert result.log_path.read_text() == "1\n2\n"
    assert (tmp_path / "s" / "_packtivity" / "s.script").exists()


def test_script_with_python_interpreter(tmp_path):
    step = make_step(
        script='import json, sys\nprint(json.dumps({{"value": "{value}", "major": sys.version_info[0]}}))\n',
        interpreter="python",
    )
    lines: list[str] = []
    run_step(step, {"value": "it's raw"}, tmp_path / "py", name="py", on_output=lines.append)
    assert json.loads(lines[0]) == {"value": "it's raw", "major": 3}
    assert (tmp_path / "py" / "_packtivity" / "py.py").exists()


def test_non_zero_exit_names_step_code_log_and_last_lines(tmp_path):
    step = make_step("echo first; echo second >&2; exit 3")
    with pytest.raises(StepFailedError) as caught:
        run_step(step, {}, tmp_path / "bad", name="bad_0", stage="bad")
    message = str(caught.value)
    log = tmp_path / "bad" / "_packtivity" / "bad_0.run.log"
    assert message == f"stage 'bad' step bad_0: command exited with code 3 (log: {log}); last output: first | second"
    assert log.read_text() == "first\nsecond\n"


def test_missing_interpreter_is_reported(tmp_path):
    step = make_step(script="x", interpreter="no-such-interpreter-xyz")
    with pytest.raises(StepFailedError, match=r"cannot start 'no-such-interpreter-xyz'"):
        run_step(step, {}, tmp_path / "s", name="s")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_timeout_kills_the_whole_process_group(tmp_path):
    step = make_step("sleep 30 & echo $! > {workdir}/child.pid; echo started; wait")
    started = time.monotonic()
    with pytest.raises(
        StepFailedError, match=r"step slow: timed out after 0.5 s and was killed .*last output: started"
    ):
        run_step(step, {}, tmp_path / "slow", name="slow", options=StepOptions(timeout=0.5))
    assert time.monotonic() - started < 10
    child = int((tmp_path / "slow" / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_noop_env_runs_nothing_and_publishes(tmp_path):
    step = make_step(
        "exit 1",
        environment={"environment_type": "noop-env"},
        publisher={"publisher_type": "frompar-pub", "outputmap": {"out": "x"}},
    )
    result = run_step(step, {"x": 5}, tmp_path / "noop")
    assert result.published == {"out": 5} and result.exit_code is None and result.log_path is None
    assert result.command == "exit 1" and not (tmp_path / "noop" / "_packtivity").exists()


# --- environments ------------------------------------------------------------------------------


def docker_step(cmd: str, image: str = "some/image", **extra):
    return make_step(cmd, environment={"environment_type": "docker-encapsulated", "image": image, **extra})


def test_image_without_docker_or_map_entry_names_both_fixes(tmp_path):
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


def test_local_image_mapping_with_mounts_rewrites_paths(tmp_path):
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


def test_toolkit_mapping_uses_this_python_and_the_toolkit_scripts(tmp_path):
    step = docker_step(
        "python -c 'import sys; print(sys.executable)'; echo /fun_with_ml/data_prep.py",
        image="danikam/sklearn",
    )
    lines: list[str] = []
    result = run_step(step, {}, tmp_path / "t", options=StepOptions(use_docker=False), on_output=lines.append)
    assert result.environment == "toolkit"
    assert lines[0] in (sys.executable, os.path.realpath(sys.executable))
    assert lines[1] == str(TOOLKIT_SCRIPTS_DIR / "data_prep.py")


def test_toolkit_mapping_with_a_zygote_socket_installs_the_zygote_shim(tmp_path):
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


def test_par_mounts_env_and_envscript_with_a_local_mapping(tmp_path):
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


def test_docker_run_when_an_engine_answers(tmp_path, monkeypatch):
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


# --- publishers -------------------------------------------------------------------------------


def _publisher_step(specs: Path, name: str):
    return validate_step(load_step_ref(f"steps.yml#/{name}", toplevel=specs / "publishers"))


def test_every_publisher(specs, tmp_path):
    def run(step_name: str, **parameters):
        workdir = tmp_path / step_name
        step = _publisher_step(specs, step_name)
        return run_step(step, parameters, workdir, name=step_name).published, workdir.resolve()

    published, w = run("interpolated_plain", name="a")
    assert published == {"pattern": f"{w}/*.txt", "named": "a.txt"}
    published, w = run("interpolated_glob", name="a")
    assert published == {"files": [f"{w}/a.txt", f"{w}/b.txt"], "one": [f"{w}/a.txt"], "none": "nothing-*.dat"}
    published, w = run("interpolated_relative", name="a")
    assert published == {"file": f"{w}/a.txt", "absolute": "/elsewhere/a.txt"}
    published, _ = run("frompar", name="n")
    assert published == {"out": "n", "nested": {"inner": "n"}}
    published, w = run("fromglob")
    assert published == {"texts": [f"{w}/a.txt", f"{w}/b.txt"]}
    published, _ = run("fromyaml", name="y")
    assert published == {"name": "y", "numbers": [1, 2]}
    published, _ = run("constant")
    assert published == {"answer": 42, "list": ["x", "y"]}
    published, w = run("fromparjq", name="a")
    assert published == {"exact": f"{w}/a.txt", "globbed": [f"{w}/a.txt", f"{w}/b.txt"], "kept": "a"}


def test_publisher_errors_name_the_step(specs, tmp_path):
    with pytest.raises(SpecError, match=r"step frompar: frompar-pub outputmap names parameter 'name'"):
        run_step(_publisher_step(specs, "frompar"), {}, tmp_path / "frompar", name="frompar")
    step = make_step("true", publisher={"publisher_type": "fromyaml-pub", "yamlfile": "missing.yml"})
    with pytest.raises(SpecError, match=r"step y: fromyaml-pub file .*missing\.yml: file does not exist"):
        run_step(step, {}, tmp_path / "y", name="y")
    step = make_step("true", publisher={"publisher_type": "interpolated-pub", "publish": {"a": "{nope}"}})
    with pytest.raises(SpecError, match=r"interpolated-pub value '\{nope\}' uses \{nope\}, which is not a parameter"):
        run_step(step, {}, tmp_path / "i", name="i")
