"""Prefect's settings for a warm command, built ahead by the kept command process.

A warm command (:mod:`flows.startup.warm_commands`) is a fork of a process that
imported Prefect; once its start-up has chosen the API server, it makes Prefect read
its settings again (~45 ms: profiles, settings files, environment, pydantic-settings).
The kept process builds them beforehand (:func:`prebuild_root_settings`) and a fork
takes them (:func:`refresh_imported_prefect`) only when nothing they came from differs:

* the fork's Prefect variables (``PREFECT_*`` in any case, as Prefect reads them, and
  ``HOME`` for ``~``) are those they were built from;
* each settings file (:func:`~flows.startup.prefect_settings.settings_files` and the
  profiles files Prefect read) has the inode, size, modification and change times it
  had before it was read, and none had changed in the two seconds before (a change in
  the same clock tick would not show in those times);
* building them printed and warned nothing (a fork must show that itself), and
  Prefect's home folder exists (building them creates it when missing).

Otherwise the fork reads them itself, as before.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.startup.prefect_settings import prefect_home, settings_files
from mltoolkit.processes.kept_zygote import FileStamps

__all__ = ["prebuild_root_settings", "refresh_imported_prefect"]

#: Seconds: a settings file changed this recently before it was read is not trusted to its times.
SETTLED_SECONDS = 2.0


@dataclass(frozen=True)
class _Prebuilt:
    environment: dict[str, str]
    stamps: FileStamps
    context: Any  # prefect.context.SettingsContext


_prebuilt: _Prebuilt | None = None


def _settings_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` Prefect's settings come from: ``PREFECT_*`` (any case) and ``HOME`` (``~``)."""
    return {name: value for name, value in environ.items() if name.upper().startswith("PREFECT_") or name == "HOME"}


def _build(extra: Mapping[str, str]) -> tuple[Any, dict[str, str], bool]:
    """Prefect's root settings context with ``extra`` in the environment; the environment; whether it said anything."""
    import prefect.context

    previous = {name: os.environ.get(name) for name in extra}
    try:
        os.environ.update(extra)
        with contextlib.redirect_stderr(io.StringIO()) as said, warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            context = prefect.context.root_settings_context()
        return context, _settings_environment(os.environ), bool(said.getvalue() or warned)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def prebuild_root_settings(extra: Mapping[str, str]) -> None:
    """Build now the settings an imported Prefect would read with ``extra`` added to the environment.

    For the kept command process, before it forks commands; kept only when a fork
    could take them (see the module's docstring).
    """
    from prefect.settings import get_current_settings

    global _prebuilt
    _prebuilt = None
    # load_profiles() reads the profiles file named by the settings Prefect has now, not by those being built
    files = [*settings_files(), get_current_settings().profiles_path]
    before = FileStamps(files)
    home_existed = prefect_home().exists()
    context, environment, said = _build(extra)
    unchanged = before.first_changed() is None
    stamps = FileStamps([*files, context.settings.profiles_path])
    if not said and home_existed and unchanged and not stamps.changed_within(SETTLED_SECONDS):
        _prebuilt = _Prebuilt(environment, stamps, context)


def refresh_imported_prefect() -> None:
    """Make an imported Prefect read its settings again (a warm command changed ``PREFECT_API_URL``).

    Takes the settings the kept process built ahead when nothing they came from differs.
    """
    import prefect.context

    prebuilt = _prebuilt
    if (
        prebuilt is not None
        and prebuilt.environment == _settings_environment(os.environ)
        and prebuilt.stamps.first_changed() is None
        and Path(prebuilt.context.settings.home).exists()
    ):
        # what refresh_global_settings_context() would build: same environment, same files
        prefect.context.GLOBAL_SETTINGS_CONTEXT = prebuilt.context
    else:
        prefect.context.refresh_global_settings_context()
