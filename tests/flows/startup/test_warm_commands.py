"""Warm commands: a flow command handed to the kept command process, and when it is not.

The end-to-end test runs the two-step spec as a subprocess in the default
configuration (no API URL: a kept API server), in its own ``PREFECT_HOME``,
``HOME`` and empty working folder, and stops everything it started.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from flows.startup import warm_commands
from flows.startup.server_state import STATE_FILE_NAME, read_record
from tests.constants import REPO_ROOT
from tests.flows.startup.conftest import default_configuration

SPEC = REPO_ROOT / "tests" / "specs" / "two_step"


def test_warm_commands_are_on_unless_turned_off_or_nothing_is_kept(monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_API_IDLE_TIMEOUT", "60")
    monkeypatch.delenv(warm_commands.ENABLE_VARIABLE, raising=False)
    assert warm_commands.warm_commands_enabled()
    monkeypatch.setenv(warm_commands.ENABLE_VARIABLE, "0")
    assert not warm_commands.warm_commands_enabled()
    monkeypatch.setenv(warm_commands.ENABLE_VARIABLE, "1")
    monkeypatch.setenv("MLTOOLKIT_API_IDLE_TIMEOUT", "0")
    assert not warm_commands.warm_commands_enabled()


def test_the_kept_process_is_per_environment_but_not_per_shell_bookkeeping(monkeypatch):
    base = warm_commands.kept_process_paths()
    monkeypatch.setenv("PWD", "/somewhere/else")
    assert warm_commands.kept_process_paths() == base
    monkeypatch.setenv("PREFECT_HOME", "/another/home")
    other = warm_commands.kept_process_paths()
    assert other != base and other.socket.parent == base.socket.parent
    assert base.socket.parent.stat().st_mode & 0o777 == 0o700


def test_a_folder_of_kept_processes_others_can_use_turns_warm_commands_off(tmp_path, monkeypatch):
    monkeypatch.setattr(warm_commands.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setenv("MLTOOLKIT_API_IDLE_TIMEOUT", "60")
    folder = tmp_path / f"mltk-commands-{os.getuid()}"
    assert warm_commands.kept_process_paths().socket.parent == folder  # created private
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)  # as another user could have left it
    with pytest.raises(PermissionError, match="not a private folder"):
        warm_commands.kept_process_paths()
    started = []
    monkeypatch.setattr(warm_commands, "_start_kept_process", started.append)
    assert warm_commands.run_in_kept_process("flows.cli:main", [["run"]], {"warm": True}) is None
    assert started == [] and warm_commands.stop_kept_processes() == 0
    assert list(folder.iterdir()) == []


def _environment(folder: Path) -> dict[str, str]:
    return {**default_configuration(folder, idle_timeout=120), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class Commands:
    """Commands run from an empty working folder with one environment."""

    def __init__(self, folder: Path) -> None:
        self.env = _environment(folder)
        self.work = folder / "work"
        self.work.mkdir()

    def run(self, *args: str) -> tuple[int, subprocess.CompletedProcess]:
        """``python ARGS``: (its pid, its outcome)."""
        process = subprocess.Popen(
            [sys.executable, *args], env=self.env, cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        stdout, stderr = process.communicate(timeout=300)
        return process.pid, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def spec(self, workdir: str, *extra: str) -> tuple[int, subprocess.CompletedProcess]:
        workflow = ["workflow.yml", str(SPEC / "inputs.yml"), "--toplevel", str(SPEC)]
        return self.run("-m", "flows.spec_workflow", str(self.work / workdir), *workflow, *extra)

    def kept_processes(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                if "mltoolkit.processes.kept_zygote" in (process.info["cmdline"] or []) and (
                    process.environ().get("PREFECT_HOME") == self.env["PREFECT_HOME"]
                ):
                    found.append(process)
            except psutil.Error:
                continue
        return found


@pytest.fixture
def commands(tmp_path: Path):
    commands = Commands(tmp_path)
    try:
        yield commands
    finally:
        commands.run("-m", "flows.cli", "server", "stop")
        for process in commands.kept_processes():
            process.kill()


def _flow_runs_on_kept_server(commands: Commands) -> int:
    """How many flow runs the kept API server of the commands' Prefect home has recorded."""
    record = read_record(Path(commands.env["PREFECT_HOME"]) / STATE_FILE_NAME)
    assert record is not None
    authorization = "Basic " + base64.b64encode(record.auth_string.encode()).decode()
    request = urllib.request.Request(
        f"{record.api_url}/flow_runs/count",
        data=b"{}",
        headers={"Content-Type": "application/json", "Authorization": authorization},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.loads(response.read()))


def _wait_for_kept_process(commands: Commands) -> Path:
    _, waited = commands.run("-m", "flows.startup.warm_commands", "wait")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    return Path(waited.stdout.strip().rsplit("log: ", 1)[1])


@pytest.mark.slow
def test_the_next_command_runs_warm_with_the_same_results_and_errors(commands: Commands):
    first_pid, first = commands.spec("first")
    assert first.returncode == 0, first.stderr[-3000:]
    log = _wait_for_kept_process(commands)
    assert f"serving process {first_pid}" not in log.read_text()  # the first one ran cold

    warm_pid, warm = commands.spec("second")
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert f"serving process {warm_pid}" in log.read_text()
    for workdir in ("first", "second"):
        assert (commands.work / workdir / "copy" / "copy.txt").read_text() == "hello world\n"
        assert (commands.work / workdir / "_mltoolkit" / "run.json").is_file()
    assert warm.stdout.replace("second", "first") == first.stdout
    # the warm command used the kept API server (Prefect, imported before it was chosen, read its settings again)
    assert _flow_runs_on_kept_server(commands) == 2

    # python script steps: served warm by the command's step zygote, itself forked from the warm command
    seed_pid, seed = commands.run(
        "-m", "flows.spec_workflow", str(commands.work / "seed"), "workflow.yml", "inputs.yml",
        "--toplevel", str(REPO_ROOT / "tests" / "specs" / "seed_parallel"),
    )  # fmt: skip
    assert seed.returncode == 0, seed.stderr[-3000:]
    assert f"serving process {seed_pid}" in log.read_text()
    steps = json.loads((commands.work / "seed" / "_mltoolkit" / "run.json").read_text())["steps"]
    assert [step["state"] for step in steps] == ["COMPLETED"] * 7

    bad_pid, bad = commands.spec("third", "--runner", "nonsense")
    assert f"serving process {bad_pid}" in log.read_text()
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_a_changed_settings_file_sends_the_command_cold_and_stop_ends_the_kept_processes(commands: Commands):
    assert commands.spec("first")[1].returncode == 0
    log = _wait_for_kept_process(commands)
    (commands.work / "prefect.toml").write_text("[logging]\nlevel = 'WARNING'\n")

    cold_pid, cold = commands.spec("second")
    assert cold.returncode == 0, cold.stderr[-3000:]
    text = log.read_text()
    assert f"serving process {cold_pid}" not in text
    assert f"retiring: {commands.work / 'prefect.toml'} changed" in text

    _wait_for_kept_process(commands)  # the successor, started by the cold command
    _, stop = commands.run("-m", "flows.cli", "server", "stop")
    assert stop.returncode == 0, stop.stderr
    assert re.search(r"^stopped \d+ kept command process(es)?$", stop.stdout, re.MULTILINE), stop.stdout
    assert not commands.kept_processes()
