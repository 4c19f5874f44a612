"""Values as steps see them: ``{workdir}`` filled in, relative init values made into init-file paths."""

from __future__ import annotations

import copy
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


def _init_file(value: str, base: Path) -> str:
    """``base / value`` when ``value`` is a relative path naming an existing file there, else ``value``."""
    if not value or "://" in value or os.path.isabs(value) or "\0" in value:
        return value
    candidate = base / value
    try:
        return str(candidate) if candidate.exists() else value
    except OSError:
        return value


def _with_init_files(value: Any, base: Path) -> Any:
    if isinstance(value, str):
        return _init_file(value, base)
    if isinstance(value, list):
        return [_with_init_files(item, base) for item in value]
    if isinstance(value, dict):
        return {key: _with_init_files(item, base) for key, item in value.items()}
    return value


def resolve_init_files(values: Any, init_dir: Path | None) -> Any:
    """A copy of ``values`` where relative strings naming files in ``init_dir`` become absolute paths.

    URLs and absolute paths are kept; nothing changes when ``init_dir`` does not exist.
    """
    if init_dir is None or not init_dir.is_dir():
        return copy.deepcopy(values)
    return _with_init_files(values, init_dir.resolve())
