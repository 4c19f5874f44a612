"""Values as steps see them: ``{workdir}`` filled in, relative init values made into init-file paths.

Init values are matched against the files in ``WORKDIR/init/`` as yadage's init
step does (``fromparjq-pub`` with ``tryExact``, ``glob`` and ``relative_paths``):
a relative value naming a file there becomes its absolute path; one that is a
glob pattern (``-p inputfiles="*.txt"``) becomes the list of matching files --
sorted here, in directory order in yadage -- and stays as written when nothing
matches.
"""

from __future__ import annotations

import copy
import glob
import os
from pathlib import Path
from typing import Any

__all__ = ["fill_workdir", "resolve_init_files"]


def fill_workdir(value: Any, workdir: str) -> Any:
    """A deep copy of ``value`` with ``{workdir}`` replaced in every string."""
    if isinstance(value, str):
        return value.replace("{workdir}", workdir) if "{workdir}" in value else value
    if isinstance(value, list):
        return [fill_workdir(item, workdir) for item in value]
    if isinstance(value, dict):
        return {key: fill_workdir(item, workdir) for key, item in value.items()}
    return value


def _init_file(value: str, base: Path) -> str | list[str]:
    """``base / value`` when ``value`` is a relative path naming an existing file there; the sorted
    files a relative glob pattern matches there (``**`` crosses folders); else ``value``."""
    if not value or "://" in value or os.path.isabs(value) or "\0" in value:
        return value
    candidate = base / value
    try:
        if candidate.exists():
            return str(candidate)
    except OSError:
        return value
    if not glob.has_magic(value):
        return value
    # escaped: a bracket or star in the init folder's own path is not part of the pattern
    matches = sorted(glob.glob(os.path.join(glob.escape(str(base)), value), recursive=True))
    return matches or value


def _with_init_files(value: Any, base: Path) -> Any:
    if isinstance(value, str):
        return _init_file(value, base)
    if isinstance(value, list):
        return [_with_init_files(item, base) for item in value]
    if isinstance(value, dict):
        return {key: _with_init_files(item, base) for key, item in value.items()}
    return value


def resolve_init_files(values: Any, init_dir: Path | None) -> Any:
    """A copy of ``values`` where relative strings naming files in ``init_dir`` become absolute paths
    and relative glob patterns the sorted list of files they match there.

    URLs and absolute paths are kept; nothing changes when ``init_dir`` does not exist.
    """
    if init_dir is None or not init_dir.is_dir():
        return copy.deepcopy(values)
    return _with_init_files(values, init_dir.resolve())
