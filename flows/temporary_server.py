"""The Prefect API our command lines talk to when none is configured.

Without ``PREFECT_API_URL`` Prefect starts a temporary server the first time a
flow talks to the API: after ``import prefect``, scikit-learn and matplotlib
have been imported, and it stops it when the process ends, so every run waits
~3.5 s for a new server to boot. Our command lines instead, as their very first
action (before importing Prefect):

1. use the configured API if there is one (environment, profile, ``prefect.toml``);
2. else reuse the temporary server an earlier command left running for this
   ``PREFECT_HOME`` (recorded in ``PREFECT_HOME/mltoolkit-api-server.json``) if it
   answers its health check;
3. else start one (:mod:`flows.api_server`: Prefect's own server app, on
   127.0.0.1, same database) in the background, so its boot overlaps our own
   imports. It stays up until idle for ``MLTOOLKIT_API_IDLE_TIMEOUT`` seconds
   (default 600) for the next command to reuse; ``0`` stops it with the command,
   like Prefect's own temporary server.

``PREFECT_API_URL`` is then set for this process, so Prefect uses that server
like any configured one. This module must not import Prefect.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "PLAIN_HTTP_CA_BUNDLE",
    "TemporaryServer",
    "api_url_configured",
    "configured_api_url",
    "current",
    "idle_timeout",
    "start_early",
    "state_file",
    "wait_until_ready",
]

_FALSE_VALUES = {"0", "false", "no", "off"}

#: Seconds a temporary server waits for the next command before exiting.
DEFAULT_IDLE_TIMEOUT = 600.0

#: A one-certificate bundle for plain-HTTP APIs. Prefect's client builds a TLS
#: context from ``PREFECT_API_SSL_CERT_FILE`` (default: certifi's ~150
#: certificates, ~18 ms to parse) every time it creates a client, dozens of times
#: per run, even for ``http://`` URLs where it is never used.
PLAIN_HTTP_CA_BUNDLE = Path(__file__).with_name("local_api_ca.pem")


def _read_toml(path: Path) -> dict:
    import tomllib

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, ValueError):
        return {}


def _prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()


def configured_api_url() -> str | None:
    """The Prefect API URL set in the environment, the active profile or ``prefect.toml``."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    profiles_path = Path(os.environ.get("PREFECT_PROFILES_PATH", _prefect_home() / "profiles.toml")).expanduser()
    profiles = _read_toml(profiles_path)
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    profile = profiles.get("profiles", {}).get(active or "ephemeral", {})
    if profile.get("PREFECT_API_URL"):
        return str(profile["PREFECT_API_URL"])
    local = _read_toml(Path("prefect.toml"))
    url = local.get("api", {}).get("url")
    return str(url) if url else None


def api_url_configured() -> bool:
    """Whether a Prefect API URL is configured, or the user opted out of temporary servers."""
    if os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "").lower() in _FALSE_VALUES:
        return True  # leave everything to Prefect
    return configured_api_url() is not None


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
    """Where the kept-alive server of this ``PREFECT_HOME`` is recorded."""
    return _prefect_home() / "mltoolkit-api-server.json"


def _use_small_ca_bundle_for_plain_http(api_url: str | None) -> None:
    if api_url and api_url.startswith("http://") and not os.environ.get("PREFECT_API_SSL_CERT_FILE"):
        os.environ["PREFECT_API_SSL_CERT_FILE"] = str(PLAIN_HTTP_CA_BUNDLE)


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _prefect_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prefect")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class TemporaryServer:
    """A Prefect API server on 127.0.0.1 that this process started or reuses."""

    port: int
    process: subprocess.Popen | None
    log_path: Path
    started_at: float
    reused: bool = False

    @property
    def api_url(self) -> str:
        """The ``PREFECT_API_URL`` of this server."""
        return f"http://127.0.0.1:{self.port}/api"

    def healthy(self) -> bool:
        """Whether the server answers its health check."""
        return _healthy(self.api_url)

    def stop(self) -> None:
        """Stop the server if this process started it (terminate, then kill)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

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


def _reuse_recorded_server() -> TemporaryServer | None:
    try:
        record = json.loads(state_file().read_text())
        port, pid = int(record["port"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("prefect_version") != _prefect_version():
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    server = TemporaryServer(port, None, state_file().with_suffix(".log"), time.monotonic(), reused=True)
    return server if _healthy(server.api_url, timeout=1.0) else None


def _launch(keep_alive_seconds: float) -> TemporaryServer:
    home = _prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = home / "mltoolkit-api-server.log"
    command = [
        sys.executable,
        "-m",
        "flows.api_server",
        "--port",
        str(port),
        "--idle-timeout",
        str(keep_alive_seconds),
    ]
    if keep_alive_seconds > 0:
        command += ["--state-file", str(state_file())]
    environment = {**os.environ, "PREFECT_UI_ENABLED": "0"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # its own session: a Ctrl-C in the terminal stops the command, not the
            # server that later commands will reuse
            start_new_session=True,
        )
    server = TemporaryServer(port, process, log_path, time.monotonic())
    if keep_alive_seconds > 0:
        record = {
            "port": port,
            "pid": process.pid,
            "prefect_version": _prefect_version(),
            "started": time.time(),
            "idle_timeout": keep_alive_seconds,
        }
        temporary = state_file().with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record))
        os.replace(temporary, state_file())
    else:
        atexit.register(server.stop)
    return server


def start_early() -> TemporaryServer | None:
    """Pick or start the API server for this process and set ``PREFECT_API_URL``.

    Must run before ``prefect`` is imported. Returns ``None`` when an API is
    configured (nothing to do).
    """
    global _current
    if _current is not None:
        return _current
    if "prefect" in sys.modules:
        return None
    if api_url_configured():
        _use_small_ca_bundle_for_plain_http(configured_api_url())
        return None
    keep_alive = idle_timeout()
    server = _reuse_recorded_server() if keep_alive > 0 else None
    if server is None:
        server = _launch(keep_alive)
    _current = server
    os.environ["PREFECT_API_URL"] = server.api_url
    _use_small_ca_bundle_for_plain_http(server.api_url)
    return server


def wait_until_ready(timeout: float | None = None) -> None:
    """Block until the server chosen by :func:`start_early` answers (no-op if none).

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout``
            seconds (default: ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``,
            at least 90 s, since a first start migrates a new database).
    """
    server = _current
    if server is None or server.reused:
        return
    if timeout is None:
        configured = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "")
        try:
            timeout = max(float(configured) if configured.strip() else 0.0, 90.0)
        except ValueError:
            timeout = 90.0
    deadline = server.started_at + timeout
    while time.monotonic() < deadline:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(
                f"the temporary Prefect server exited with code {server.process.returncode} "
                f"(log: {server.log_path}: {server.failure_detail()}); start one with "
                "'prefect server start' and set PREFECT_API_URL"
            )
        if server.healthy():
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"the temporary Prefect server did not answer within {timeout:.0f} s; raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or start one with "
        "'prefect server start' and set PREFECT_API_URL"
    )
