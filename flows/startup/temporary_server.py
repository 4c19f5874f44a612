"""The Prefect API our command lines talk to when none is configured.

Without ``PREFECT_API_URL`` Prefect starts a temporary server the first time a
flow talks to the API: after ``import prefect``, scikit-learn and matplotlib
have been imported, and it stops it when the process ends, so every run waits
~3.5 s for a new server to boot. Our command lines instead, as their very first
action (before importing Prefect):

1. leave everything to Prefect when an API URL is configured, or when Prefect
   would not start a temporary server either (ephemeral mode disabled): see
   :mod:`flows.startup.prefect_settings` for exactly which sources are read;
2. else reuse the server an earlier command left running for this
   ``PREFECT_HOME`` (recorded in ``PREFECT_HOME/mltoolkit-api-server.json``,
   :mod:`flows.startup.server_state`) if its process is alive;
3. else start one (:mod:`flows.startup.api_server`: Prefect's own server app, on
   127.0.0.1, same database) in the background, so its boot overlaps our own
   imports. It stays up until idle for ``MLTOOLKIT_API_IDLE_TIMEOUT`` seconds
   (default 600) for the next command to reuse, and the command says so once
   on stderr; ``0`` ties it to the command (it dies with it, even on SIGKILL),
   like Prefect's own temporary server.

Every server we start requires Prefect's API auth (a random
``PREFECT_SERVER_API_AUTH_STRING``, kept in the 0600 state file); this process
gets ``PREFECT_API_URL`` and ``PREFECT_API_AUTH_STRING``, so Prefect uses the
server like any configured one. This module must not import Prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from flows.startup import prefect_settings
from flows.startup.server_state import (
    STATE_FILE_NAME,
    ServerRecord,
    make_private_folder,
    new_auth_string,
    open_private_log,
    read_record,
    remove_record,
    write_record,
)
from mltoolkit.errors import ApiServerError
from mltoolkit.processes.lifeline import PARENT_PID_VARIABLE, spawned_from_main_thread, stop_child

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "PLAIN_HTTP_CA_BUNDLE",
    "SERVER_MODULE",
    "TemporaryServer",
    "api_url_configured",
    "current",
    "idle_timeout",
    "plain_http_client_settings",
    "recorded_server",
    "start_early",
    "state_file",
    "stop_recorded_server",
    "wait_until_ready",
]

#: Seconds a temporary server waits for the next command before exiting.
DEFAULT_IDLE_TIMEOUT = 600.0
#: The module our servers run (``python -m``); also how we recognise one of ours by its command line.
SERVER_MODULE = "flows.startup.api_server"
_BOOT_GRACE = 90.0  # a recorded server this young may still be booting: wait for it

#: A one-certificate bundle for plain-HTTP APIs. Prefect's client builds a TLS
#: context from ``PREFECT_API_SSL_CERT_FILE`` (default: certifi's ~150
#: certificates) each time it creates a client -- 19 times in a run of the seed
#: analysis -- even for ``http://`` URLs, where it is never used. Measured by
#: ``bench/overhead.py`` (row b-certifi).
PLAIN_HTTP_CA_BUNDLE = Path(__file__).with_name("local_api_ca.pem")


def api_url_configured() -> bool:
    """Whether Prefect would not start a temporary server: an API URL is configured, or ephemeral mode is off."""
    return prefect_settings.configured_api_url() is not None or not prefect_settings.ephemeral_server_allowed()


def idle_timeout() -> float:
    """``MLTOOLKIT_API_IDLE_TIMEOUT`` in seconds (default 600; 0 = stop with the command)."""
    raw = os.environ.get("MLTOOLKIT_API_IDLE_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_IDLE_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        return DEFAULT_IDLE_TIMEOUT


def state_file() -> Path:
    """Where the kept server of this ``PREFECT_HOME`` is recorded."""
    return prefect_settings.prefect_home() / STATE_FILE_NAME


def plain_http_client_settings(api_url: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings our commands give Prefect's client for ``api_url`` on top of ``environ``.

    A plain-HTTP API gets :data:`PLAIN_HTTP_CA_BUNDLE` unless ``environ`` names a bundle
    already; anything else gets nothing.
    """
    if api_url and api_url.startswith("http://") and not environ.get("PREFECT_API_SSL_CERT_FILE"):
        return {"PREFECT_API_SSL_CERT_FILE": str(PLAIN_HTTP_CA_BUNDLE)}
    return {}


def _use_small_ca_bundle_for_plain_http(api_url: str | None) -> None:
    os.environ.update(plain_http_client_settings(api_url, os.environ))


def _prefect_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prefect")
    except PackageNotFoundError:
        return "unknown"


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    # /health answers without the auth secret (Prefect exempts it), so a health
    # check never sends the secret to whatever listens on the port
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _is_our_server(pid: int, port: int) -> bool:
    """Whether ``pid`` is alive (not a zombie) and runs our server on ``port`` (without /proc: alive)."""
    if not Path("/proc/self").exists():
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return False
    return SERVER_MODULE.encode() in arguments and f"--port={port}".encode() in arguments


@dataclass
class TemporaryServer:
    """A Prefect API server on 127.0.0.1 that this process started or reuses."""

    record: ServerRecord
    process: subprocess.Popen | None
    log_path: Path
    reused: bool = False
    ready: bool = False

    @property
    def api_url(self) -> str:
        """The ``PREFECT_API_URL`` of this server."""
        return self.record.api_url

    def healthy(self) -> bool:
        """Whether the server answers its health check."""
        return _healthy(self.api_url)

    def exited(self) -> bool:
        """Whether the server process is gone."""
        if self.process is not None:
            return self.process.poll() is not None
        return not _is_our_server(self.record.pid, self.record.port)

    def stop(self) -> None:
        """Stop the server if this process started it (terminate, then kill)."""
        if self.process is not None:
            stop_child(self.process, grace=10.0)

    def failure_detail(self) -> str:
        """The last line the server wrote, for error messages."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


_current: TemporaryServer | None = None


def current() -> TemporaryServer | None:
    """The server :func:`start_early` chose in this process, if any."""
    return _current


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """Serialise choosing and recording a kept server among the commands of one ``PREFECT_HOME``."""
    fd = os.open(home / "mltoolkit-api-server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _reuse_recorded_server() -> TemporaryServer | None:
    record = read_record(state_file())
    if record is None or record.prefect_version != _prefect_version():
        return None
    if not _is_our_server(record.pid, record.port):
        return None
    log_path = state_file().with_suffix(".log")
    if _healthy(record.api_url, timeout=1.0):
        return TemporaryServer(record, None, log_path, reused=True, ready=True)
    if time.time() - record.started < _BOOT_GRACE:
        return TemporaryServer(record, None, log_path, reused=True)  # another command's, still booting
    return None


def _launch(keep_alive_seconds: float) -> TemporaryServer:
    home = prefect_settings.prefect_home()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Bound here and handed over: no window in which another program takes the port.
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    auth_string = new_auth_string()
    command = [sys.executable, "-m", SERVER_MODULE, f"--port={port}", f"--fd={listener.fileno()}"]
    command.append(f"--idle-timeout={keep_alive_seconds}")
    environment = {**os.environ, "PREFECT_SERVER_API_AUTH_STRING": auth_string}
    if keep_alive_seconds > 0:
        command.append(f"--state-file={state_file()}")
    elif spawned_from_main_thread():
        environment[PARENT_PID_VARIABLE] = str(os.getpid())  # dies with this process, even on SIGKILL
    log_path = home / "mltoolkit-api-server.log"
    log_fd = open_private_log(log_path)
    try:
        process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            pass_fds=(listener.fileno(),),
            # its own session: a Ctrl-C in the terminal stops the command, not the
            # server that later commands will reuse
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
        listener.close()
    record = ServerRecord(port, process.pid, _prefect_version(), time.time(), keep_alive_seconds, auth_string)
    server = TemporaryServer(record, process, log_path)
    if keep_alive_seconds > 0:
        write_record(state_file(), record)
        atexit.register(_say_server_left_running, server)
    else:
        atexit.register(server.stop)
    return server


def _say_server_left_running(server: TemporaryServer) -> None:
    if server.exited():
        return
    print(
        f"mltoolkit: left the Prefect API server {server.api_url} (pid {server.record.pid}) running for "
        f"later commands; it exits after {server.record.idle_timeout:g} s idle. "
        "Stop it now with: mltoolkit server stop",
        file=sys.stderr,
    )


def _choose_server() -> TemporaryServer:
    keep_alive = idle_timeout()
    if keep_alive <= 0:
        make_private_folder(prefect_settings.prefect_home())
        return _launch(0.0)
    home = prefect_settings.prefect_home()
    make_private_folder(home)
    with _home_lock(home):
        return _reuse_recorded_server() or _launch(keep_alive)


def start_early(*, prefect_imported: bool = False) -> TemporaryServer | None:
    """Pick or start the API server for this process; set ``PREFECT_API_URL`` and ``PREFECT_API_AUTH_STRING``.

    Must run before ``prefect`` is imported (unless the caller makes Prefect read
    its settings again afterwards: ``prefect_imported``). Returns ``None`` when
    Prefect's own settings decide (an API is configured, or ephemeral mode is off).
    """
    global _current
    if _current is not None:
        return _current
    if "prefect" in sys.modules and not prefect_imported:
        return None
    if api_url_configured():
        _use_small_ca_bundle_for_plain_http(prefect_settings.configured_api_url())
        return None
    server = _choose_server()
    _current = server
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_API_AUTH_STRING"] = server.record.auth_string
    _use_small_ca_bundle_for_plain_http(server.api_url)
    return server


def _startup_timeout() -> float:
    configured = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "")
    try:
        return max(float(configured) if configured.strip() else 0.0, 90.0)
    except ValueError:
        return 90.0


def wait_until_ready(timeout: float | None = None) -> None:
    """Block until the server chosen by :func:`start_early` answers (no-op if none).

    Raises:
        ApiServerError: the server exited or did not answer within ``timeout``
            seconds (default: ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``,
            at least 90 s, since a first start migrates a new database).
    """
    server = _current
    if server is None or server.ready:
        return
    timeout = _startup_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exited():
            code = server.process.returncode if server.process is not None else "?"
            raise ApiServerError(
                f"the temporary Prefect server exited with code {code} "
                f"(log: {server.log_path}: {server.failure_detail()}); start one with "
                "'prefect server start' and set PREFECT_API_URL"
            )
        if server.healthy():
            server.ready = True
            return
        time.sleep(0.05)
    raise ApiServerError(
        f"the temporary Prefect server did not answer within {timeout:.0f} s; raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or start one with "
        "'prefect server start' and set PREFECT_API_URL"
    )


def recorded_server() -> ServerRecord | None:
    """The kept server recorded for this ``PREFECT_HOME``, if its process is alive."""
    record = read_record(state_file())
    if record is None or not _is_our_server(record.pid, record.port):
        return None
    return record


def stop_recorded_server(timeout: float = 10.0) -> ServerRecord | None:
    """Stop the kept server of this ``PREFECT_HOME`` and remove its state file.

    Returns the stopped server's record, or None if none was running (a stale
    state file is removed all the same).

    Raises:
        ApiServerError: the server is still running after ``timeout`` seconds and a SIGKILL.
    """
    record = recorded_server()
    if record is None:
        remove_record(state_file())
        return None
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _is_our_server(record.pid, record.port):
            time.sleep(0.05)
        if not _is_our_server(record.pid, record.port):
            remove_record(state_file(), record.pid)
            return record
    raise ApiServerError(f"the Prefect API server (pid {record.pid}) did not stop; kill it with: kill -9 {record.pid}")
