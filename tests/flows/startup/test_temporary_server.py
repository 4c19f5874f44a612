"""The default path of our command lines: no PREFECT_API_URL, a server started, kept and reused.

The rest of the suite forces a fixed API URL; here every command runs as a
subprocess in its own ``PREFECT_HOME`` with no Prefect configuration at all
(``HOME`` and the working folder are empty temporary folders). The database is
migrated once per module (the first command on a new home) and copied for each
test. Every server a test starts is stopped when it ends.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from flows.startup.server_state import STATE_FILE_NAME, ServerRecord, read_record, write_record
from tests.flows.startup.conftest import default_configuration

pytestmark = pytest.mark.slow

# A cheap command: our start-up, then one authenticated request through Prefect's client.
COMMAND = """
import json, os, sys
from flows.startup import prepare_cli_process, set_exit_code
prepare_cli_process(compute_pool=False)
from flows.startup import temporary_server
server = temporary_server.current()
print(json.dumps({"pid": server.record.pid, "url": server.api_url}) if server else "{}", flush=True)
if "--sleep-before-prefect" in sys.argv:
    import time; time.sleep(60)
temporary_server.wait_until_ready()
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    client.read_flow_runs(limit=1)
print(json.dumps({"reused": server.reused if server else None}), flush=True)
if "--sleep" in sys.argv:
    import time; time.sleep(60)
set_exit_code(0)
"""

# Our start-up only (no Prefect import): which server, if any, would a command use?
CHOICE = """
from flows.startup import prepare_cli_process, set_exit_code
prepare_cli_process(compute_pool=False)
from flows.startup import prefect_settings, temporary_server
print(temporary_server.current() is None, prefect_settings.configured_api_url())
set_exit_code(0)
"""


# Our start-up and a wait for the server, no Prefect: a command shorter than any idle timeout.
READY = """
from flows.startup import prepare_cli_process, set_exit_code
prepare_cli_process(compute_pool=False)
from flows.startup import temporary_server
temporary_server.wait_until_ready()
print(temporary_server.current().record.pid)
set_exit_code(0)
"""

SERVER_CLI = "from flows.cli.server import app; app()"


def _environment(folder: Path, idle_timeout: float) -> dict[str, str]:
    return default_configuration(folder, idle_timeout)


def _run(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    work = Path(env["HOME"]).parent / "work"  # no .env, prefect.toml or pyproject.toml here
    work.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=work, capture_output=True, text=True, timeout=300
    )


def _answers(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    answers: dict = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            answers.update(json.loads(line))
    return answers


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _servers_of(home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "flows.startup.api_server" in (process.info["cmdline"] or []) and (
                process.environ().get("PREFECT_HOME") == str(home)
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _authorization(record: ServerRecord) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(record.auth_string.encode()).decode()}


def _post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory) -> Path:
    """A Prefect home whose database the first command ever on it created (and migrated)."""
    folder = tmp_path_factory.mktemp("template")
    env = _environment(folder, idle_timeout=0)
    _answers(_run(COMMAND, env))
    return Path(env["PREFECT_HOME"])


@pytest.fixture
def env(tmp_path: Path, migrated_home: Path):
    """An environment with a kept-server timeout of 60 s and a migrated home; stops its servers at the end."""
    environment = _environment(tmp_path, idle_timeout=60)
    home = Path(environment["PREFECT_HOME"])
    shutil.copytree(migrated_home, home, ignore=shutil.ignore_patterns("mltoolkit-api-server*"))
    yield environment
    for process in _servers_of(home):
        process.kill()


def test_the_first_command_on_a_home_creates_private_files(migrated_home: Path):
    assert migrated_home.stat().st_mode & 0o777 == 0o700
    for name in ("prefect.db", "mltoolkit-api-server.log"):
        assert (migrated_home / name).stat().st_mode & 0o777 == 0o600, name


def test_the_first_command_starts_a_kept_server_the_next_reuses_it_and_stop_ends_it(env):
    first = _run(COMMAND, env)
    started = _answers(first)
    assert started["reused"] is False
    assert first.stderr.count("mltoolkit server stop") == 1  # said once, by the command that started it
    state = Path(env["PREFECT_HOME"]) / STATE_FILE_NAME
    assert state.stat().st_mode & 0o777 == 0o600
    assert read_record(state).pid == started["pid"]

    second = _run(COMMAND, env)
    assert _answers(second) == {**started, "reused": True}
    assert "mltoolkit server stop" not in second.stderr

    status = _run(SERVER_CLI, env, "status")
    assert status.returncode == 0
    assert started["url"] in status.stdout and str(started["pid"]) in status.stdout
    assert "idle timeout: 60 s" in status.stdout and "uptime:" in status.stdout

    stop = _run(SERVER_CLI, env, "stop")
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.count("\n") == 1
    assert _gone(started["pid"])
    assert not state.exists()

    again = _run(SERVER_CLI, env, "stop")
    assert (again.returncode, again.stderr.strip()) == (
        1,
        "error: no server to stop (nothing is recorded for this PREFECT_HOME)",
    )
    assert _run(SERVER_CLI, env, "status").stdout.startswith("no server")


@pytest.mark.parametrize("timeout", [2, 8], ids=["exits awake", "exits while resting"])
def test_an_idle_server_exits_and_removes_its_record(env, timeout):
    env["MLTOOLKIT_API_IDLE_TIMEOUT"] = str(timeout)  # REST_AFTER is 5 s
    result = _run(READY, env)
    assert result.returncode == 0, result.stderr
    assert _gone(int(result.stdout), timeout=60)
    assert not (Path(env["PREFECT_HOME"]) / STATE_FILE_NAME).exists()


def test_an_idle_kept_server_rests_and_the_next_request_wakes_it(env):
    started = _answers(_run(COMMAND, env))
    (app,) = psutil.Process(started["pid"]).children()
    deadline = time.monotonic() + 60
    while app.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
        time.sleep(0.2)
    assert app.status() == psutil.STATUS_STOPPED  # suspended: no CPU at all while idle
    record = read_record(Path(env["PREFECT_HOME"]) / STATE_FILE_NAME)
    assert _post(f"{record.api_url}/flow_runs/filter", _authorization(record)) == 200
    assert _answers(_run(COMMAND, env))["reused"] is True


def _stale_record(kind: str, home: Path, stranger: int) -> None:
    path = home / STATE_FILE_NAME
    if kind == "garbage":
        path.write_text("{not json")
        return
    version = "0.0.0" if kind == "another Prefect version" else _prefect_version()
    pid = stranger if kind == "a live process that is not our server" else _dead_pid()
    write_record(path, ServerRecord(_free_port(), pid, version, time.time() - 1000, 60.0, "x:y"))


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "kind", ["garbage", "a dead pid", "another Prefect version", "a live process that is not our server"]
)
def test_a_stale_state_file_is_ignored_and_replaced(env, kind):
    home = Path(env["PREFECT_HOME"])
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        _stale_record(kind, home, stranger.pid)
        started = _answers(_run(COMMAND, env))
    finally:
        stranger.kill()
        stranger.wait()
    assert started["pid"] != stranger.pid
    assert read_record(home / STATE_FILE_NAME).pid == started["pid"]


def test_a_recorded_port_taken_by_another_program(env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        record = ServerRecord(port, _dead_pid(), _prefect_version(), time.time(), 60.0, "x:y")
        write_record(Path(env["PREFECT_HOME"]) / STATE_FILE_NAME, record)
        started = _answers(_run(COMMAND, env))
    assert f":{port}/" not in started["url"]


def test_two_commands_at_once_each_get_a_working_server(env):
    work = Path(env["HOME"]).parent / "work"
    work.mkdir(exist_ok=True)
    commands = [
        subprocess.Popen(
            [sys.executable, "-c", COMMAND],
            env=env,
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for command in commands:
        stdout, stderr = command.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr))
    first, second = (_answers(result) for result in results)  # both succeeded through their server
    assert (first["pid"] == second["pid"]) == (first["url"] == second["url"])


CONFIGURED = {
    "environment": ({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, {}),
    ".env": ({}, {".env": "PREFECT_API_URL=http://127.0.0.1:9/api\n"}),
    "prefect.toml": ({}, {"prefect.toml": '[api]\nurl = "http://127.0.0.1:9/api"\n'}),
    "pyproject.toml": ({}, {"pyproject.toml": '[tool.prefect.api]\nurl = "http://127.0.0.1:9/api"\n'}),
    "profile": ({}, {"PROFILE": 'active = "p"\n[profiles.p]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n'}),
    "ephemeral mode off": ({"PREFECT_SERVER_EPHEMERAL_ENABLED": "false"}, {}),
}


@pytest.mark.parametrize(("extra", "files"), CONFIGURED.values(), ids=CONFIGURED.keys())
def test_a_configured_api_wins_and_no_server_starts(tmp_path, extra, files):
    env = {**_environment(tmp_path, idle_timeout=60), **extra}
    home = Path(env["PREFECT_HOME"])
    work = tmp_path / "work"
    for name, text in files.items():
        path = home / "profiles.toml" if name == "PROFILE" else work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    result = _run(CHOICE, env)
    assert result.returncode == 0, result.stderr
    expected_url = "None" if "PREFECT_SERVER_EPHEMERAL_ENABLED" in extra else "http://127.0.0.1:9/api"
    assert result.stdout.split() == ["True", expected_url]
    assert not (home / STATE_FILE_NAME).exists()
    assert _servers_of(home) == []


def test_the_kept_server_refuses_requests_without_its_secret_and_hides_it_from_other_users(env):
    started = _answers(_run(COMMAND, env))
    state = Path(env["PREFECT_HOME"]) / STATE_FILE_NAME
    record = read_record(state)
    assert record.pid == started["pid"]
    assert _post(f"{record.api_url}/flow_runs/filter", {}) == 401
    assert _post(f"{record.api_url}/flow_runs/filter", {"Authorization": "Basic " + "eDp5"}) == 401
    assert _post(f"{record.api_url}/flow_runs/filter", _authorization(record)) == 200

    assert state.stat().st_mode & 0o777 == 0o600
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("reading as another user needs root and setpriv; the file mode was checked")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    result = subprocess.run([*as_nobody, "cat", str(state)], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout) != (0, "")
    assert "Permission denied" in result.stderr


@pytest.mark.parametrize("moment", ["SIGKILL once running", "SIGTERM while loading Prefect"])
def test_a_server_tied_to_its_command_dies_with_it(env, moment):
    env["MLTOOLKIT_API_IDLE_TIMEOUT"] = "0"
    work = Path(env["HOME"]).parent / "work"
    work.mkdir(exist_ok=True)
    wait_flag = "--sleep" if moment.startswith("SIGKILL") else "--sleep-before-prefect"
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND, wait_flag], env=env, cwd=work, stdout=subprocess.PIPE, text=True
    )
    try:
        server_pid = json.loads(command.stdout.readline())["pid"]
        if moment.startswith("SIGKILL"):
            assert json.loads(command.stdout.readline())["reused"] is False  # the server answered
            command.send_signal(signal.SIGKILL)
        else:
            command.send_signal(signal.SIGTERM)
        command.wait(timeout=30)
        assert _gone(server_pid, timeout=15)
    finally:
        command.kill()
        command.wait()


def test_a_kept_server_survives_its_command_being_killed(env):
    work = Path(env["HOME"]).parent / "work"
    work.mkdir(exist_ok=True)
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND, "--sleep"], env=env, cwd=work, stdout=subprocess.PIPE, text=True
    )
    try:
        server_pid = json.loads(command.stdout.readline())["pid"]
        json.loads(command.stdout.readline())
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)
    finally:
        command.kill()
        command.wait()
    assert not _gone(server_pid, timeout=2)
    record = read_record(Path(env["PREFECT_HOME"]) / STATE_FILE_NAME)
    assert _post(f"{record.api_url}/flow_runs/filter", _authorization(record)) == 200


@pytest.mark.parametrize(
    ("api_url", "environ", "expected"),
    [
        ("http://127.0.0.1:4200/api", {}, "the small bundle"),
        ("http://127.0.0.1:4200/api", {"PREFECT_API_SSL_CERT_FILE": "/etc/mine.pem"}, None),
        ("https://prefect.example.org/api", {}, None),
        (None, {}, None),
    ],
    ids=["plain-http", "bundle-named-already", "https", "no-url"],
)
def test_plain_http_clients_get_the_small_ca_bundle_and_nothing_else_is_touched(api_url, environ, expected):
    import ssl

    from flows.startup.temporary_server import PLAIN_HTTP_CA_BUNDLE, plain_http_client_settings

    settings = plain_http_client_settings(api_url, environ)
    if expected is None:
        assert settings == {}
    else:
        assert settings == {"PREFECT_API_SSL_CERT_FILE": str(PLAIN_HTTP_CA_BUNDLE)}
        ssl.create_default_context(cafile=settings["PREFECT_API_SSL_CERT_FILE"])  # a bundle TLS can load
