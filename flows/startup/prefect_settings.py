"""The few Prefect settings our start-up needs, resolved without importing Prefect.

``import prefect.settings`` imports all of Prefect (~1 s), and the whole point
of :mod:`flows.startup` is to start the API server *before* that import, so it
boots while Prefect is imported. This module therefore reads the settings the
way Prefect 3 does (``prefect/settings/base.py``, ``sources.py``), for three
settings only:

=============================  =====================================================
``api.url``                    ``PREFECT_API_URL``
``server.ephemeral.enabled``   ``PREFECT_SERVER_EPHEMERAL_ENABLED`` (or its alias
                               ``PREFECT_SERVER_ALLOW_EPHEMERAL_MODE``)
``home``                       ``PREFECT_HOME``
=============================  =====================================================

Each comes from the first of these sources that defines it (Prefect's order):

1. the environment variable;
2. ``.env`` in the current folder (parsed with python-dotenv, as Prefect does);
3. ``prefect.toml`` in the current folder: the setting's table path, e.g.
   ``[api] url = ...``, ``[server.ephemeral] enabled = ...``, top-level ``home``;
4. ``pyproject.toml`` in the current folder, the same under ``[tool.prefect]``;
5. the active profile: ``PREFECT_PROFILE``, else ``active`` of the profiles file;
   a missing file or an unknown profile means Prefect's packaged default profile
   (``ephemeral``: ``PREFECT_SERVER_EPHEMERAL_ENABLED = "true"``). The profiles
   file is ``PREFECT_PROFILES_PATH`` (environment, ``.env``, ``profiles_path`` in
   ``prefect.toml`` or ``[tool.prefect]``), else ``$PREFECT_HOME/profiles.toml``
   (environment only), else ``~/.prefect/profiles.toml``. Profiles are ignored
   in Prefect's test mode (``PREFECT_TEST_MODE`` and its variants);
6. the default (no URL, ephemeral disabled, ``~/.prefect``).

A value set but empty counts as set, as in Prefect. ``tests/flows/startup/
test_prefect_settings.py`` checks every source against Prefect's own answer.

This module must not import Prefect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CONSOLE_LEVEL_VARIABLE",
    "configured_api_url",
    "ephemeral_server_allowed",
    "prefect_home",
    "quiet_console_logging",
    "settings_files",
]

#: Prefect's logging setting of its console handler's level (``handlers.console.level`` of its logging.yml).
CONSOLE_LEVEL_VARIABLE = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_TEST_MODE_VARIABLES = (
    "PREFECT_TEST_MODE",
    "PREFECT_UNIT_TEST_MODE",
    "PREFECT_TESTING_UNIT_TEST_MODE",
    "PREFECT_TESTING_TEST_MODE",
)
# What Prefect's packaged profiles.toml activates when no profile applies.
_DEFAULT_PROFILE = {"PREFECT_SERVER_EPHEMERAL_ENABLED": "true"}


@dataclass(frozen=True)
class _Setting:
    names: tuple[str, ...]  # environment, .env and profile keys, highest priority first
    table_path: tuple[str, ...]  # keys inside prefect.toml and pyproject's [tool.prefect]


API_URL = _Setting(("PREFECT_API_URL",), ("api", "url"))
EPHEMERAL_ENABLED = _Setting(
    ("PREFECT_SERVER_EPHEMERAL_ENABLED", "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"), ("server", "ephemeral", "enabled")
)
HOME = _Setting(("PREFECT_HOME",), ("home",))
_PROFILES_PATH = _Setting(("PREFECT_PROFILES_PATH",), ("profiles_path",))


def _toml(path: Path) -> dict[str, Any] | None:
    """The TOML file at ``path``: {} if it cannot be read, None if it is not valid TOML."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError:
        return {}
    except ValueError:
        return None


def _dotenv(path: Path) -> dict[str, str | None]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def _lookup(table: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = table
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if isinstance(value, dict) else value


def _first_of(mapping: dict[str, Any], names: tuple[str, ...]) -> Any:
    upper = {key.upper(): value for key, value in mapping.items()}
    for name in names:
        if upper.get(name) is not None:
            return upper[name]
    return None


def _from_files(setting: _Setting, folder: Path) -> Any:
    """The setting from ``.env``, ``prefect.toml`` or ``pyproject.toml`` in ``folder``."""
    for value in (
        _first_of(_dotenv(folder / ".env"), setting.names),
        _lookup(_toml(folder / "prefect.toml") or {}, setting.table_path),
        _lookup(_toml(folder / "pyproject.toml") or {}, ("tool", "prefect", *setting.table_path)),
    ):
        if value is not None:
            return value
    return None


def _profiles_path(folder: Path) -> Path:
    configured = _first_of(dict(os.environ), _PROFILES_PATH.names)
    if configured is None:
        configured = _from_files(_PROFILES_PATH, folder)
    if configured is not None:
        return Path(str(configured)).expanduser()
    if os.environ.get("PREFECT_HOME"):
        return Path(os.environ["PREFECT_HOME"]).expanduser() / "profiles.toml"
    return Path("~/.prefect/profiles.toml").expanduser()


def _active_profile(folder: Path) -> dict[str, Any]:
    if any(os.environ.get(name) for name in _TEST_MODE_VARIABLES):
        return {}
    path = _profiles_path(folder)
    if not path.exists():
        return _DEFAULT_PROFILE
    profiles = _toml(path)
    if profiles is None:
        return {}  # Prefect warns and uses no profile at all
    name = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    table = profiles.get("profiles", {})
    if not name or name not in table or not isinstance(table[name], dict):
        return _DEFAULT_PROFILE
    return table[name]


def _resolve(setting: _Setting, folder: Path | None = None) -> Any:
    """The value Prefect would use for ``setting`` in ``folder`` (default: the current one), or None."""
    folder = folder or Path.cwd()
    value = _first_of(dict(os.environ), setting.names)
    if value is None:
        value = _from_files(setting, folder)
    if value is None:
        value = _first_of(_active_profile(folder), setting.names)
    return value


def configured_api_url() -> str | None:
    """The configured ``PREFECT_API_URL``, from whichever source sets it; None when unset or empty."""
    value = _resolve(API_URL)
    return str(value) if value else None


def ephemeral_server_allowed() -> bool:
    """Whether Prefect would start a temporary server when no API URL is configured."""
    value = _resolve(EPHEMERAL_ENABLED)
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in _TRUE


def prefect_home() -> Path:
    """``PREFECT_HOME`` as Prefect resolves it (default ``~/.prefect``)."""
    value = _resolve(HOME)
    return Path(str(value) if value else "~/.prefect").expanduser()


def quiet_console_logging() -> None:
    """Let Prefect's console handler show only warnings and errors, unless the user set its level.

    Our command lines show progress instead of Prefect's per-task log lines (the
    full log stays in the UI and the work directory's log file). Must run before
    Prefect is imported: Prefect reads its logging settings then.
    """
    os.environ.setdefault(CONSOLE_LEVEL_VARIABLE, "WARNING")


def settings_files() -> list[Path]:
    """The files Prefect reads its settings from, for this process's folder and environment."""
    folder = Path.cwd()
    logging_file = os.environ.get("PREFECT_LOGGING_SETTINGS_PATH") or str(prefect_home() / "logging.yml")
    candidates = [folder / ".env", folder / "prefect.toml", folder / "pyproject.toml", _profiles_path(folder)]
    return [*candidates, Path(logging_file).expanduser()]
