"""Which files a spec run published that the Prefect UI can show, and in what form.

Any spec, not only the seed's: every image (PNG, SVG) a step publishes is shown as
a picture, every small JSON or YAML file of numbers as a table. Sizes stay bounded
so that a run publishing thousands of files, or a huge one, cannot flood the UI:
at most :data:`MAX_RESULTS` files per run, big PNGs downscaled, oversized files
skipped. No Prefect here; :mod:`flows.ui_artifacts` publishes what this finds.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from mltoolkit.workdir.artifacts import atomic_output, sha256_file

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_RESULTS",
    "TABLE_SUFFIXES",
    "artifact_key",
    "image_data_uri",
    "published_result_files",
    "table_rows",
]

IMAGE_SUFFIXES = frozenset({".png", ".svg"})
TABLE_SUFFIXES = frozenset({".json", ".yaml", ".yml"})
_RESULT_SUFFIXES = IMAGE_SUFFIXES | TABLE_SUFFIXES
#: At most this many result files of one run become artifacts (the first ones, in step order).
MAX_RESULTS = 20
#: Bigger PNGs are not decoded for a preview (the file stays in the work directory).
MAX_PNG_BYTES = 50 * 2**20
#: SVGs are embedded as they are, so they must be small.
MAX_SVG_BYTES = 512 * 2**10
#: JSON/YAML files larger than this are data, not a summary: not shown as a table.
MAX_TABLE_BYTES = 64 * 2**10
MAX_TABLE_ROWS = 200
MAX_TABLE_COLUMNS = 20
#: A published glob may match many files; only this many are looked at per value.
MAX_GLOB_MATCHES = 100
#: Width of the embedded preview of a PNG, in pixels.
PREVIEW_WIDTH = 900

_WILDCARDS = re.compile(r"[*?\[]")


def _leaf_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _leaf_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaf_strings(item)


def _candidates(text: str) -> list[Path]:
    """The result files a published string may name: itself, or what it matches when it is a glob."""
    if len(text) > 4096 or not os.path.isabs(text):
        return []
    suffix = Path(text).suffix.lower()
    if not _WILDCARDS.search(text):
        return [Path(text)] if suffix in _RESULT_SUFFIXES else []
    if suffix and not _WILDCARDS.search(suffix) and suffix not in _RESULT_SUFFIXES:
        return []  # e.g. '{outdir}/*.pkl': nothing to show, so no need to list the folder
    return [Path(match) for match in sorted(glob.iglob(text))[:MAX_GLOB_MATCHES]]


def published_result_files(published_values: Iterable[Any], limit: int = MAX_RESULTS) -> list[Path]:
    """Images and JSON/YAML files among the published values (paths and globs), in order, at most ``limit``."""
    found: dict[Path, None] = {}
    for published in published_values:
        for text in _leaf_strings(published):
            for path in _candidates(text):
                suffix = path.suffix.lower()
                if suffix in _RESULT_SUFFIXES and path.is_file():
                    found[path] = None
                    if len(found) >= limit:
                        return list(found)
    return list(found)


def artifact_key(prefix: str, relative: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for a file: ``prefix-<path>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", relative.lower()).strip("-")[:60].strip("-")
    return f"{prefix}-{slug}" if slug else prefix


def _kept_preview(path: Path, kept: Path | None) -> str:
    """The base64 preview of a PNG: read from ``kept`` when it was made of the same file, else made (and kept).

    Downscaling takes a worker process and matplotlib (~50 ms); a cached re-run
    publishes the same figure again. The preview is only shown in the UI: the
    artifact also names the figure's own sha256.
    """
    from flows.startup.compute_pool import run_in_pool
    from mltoolkit.analysis.plotting import preview_png_base64

    if kept is None:
        return run_in_pool(preview_png_base64, str(path), PREVIEW_WIDTH)
    facts = {"sha256": sha256_file(path), "width": PREVIEW_WIDTH}
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(kept.read_text(encoding="utf-8"))
        if isinstance(record, dict) and {key: record.get(key) for key in facts} == facts:
            kept_preview = record.get("png_base64")
            if isinstance(kept_preview, str) and kept_preview:
                return kept_preview
    preview = run_in_pool(preview_png_base64, str(path), PREVIEW_WIDTH)
    # a read-only work directory: shown, not kept
    with contextlib.suppress(OSError), atomic_output(kept) as temporary:
        temporary.write_text(json.dumps({**facts, "png_base64": preview}), encoding="utf-8")
    return preview


def image_data_uri(path: Path, kept: Path | None = None) -> str | None:
    """A ``data:`` URI of the image (PNGs downscaled to :data:`PREVIEW_WIDTH`), ``None`` when too big.

    ``kept``: where the PNG's preview is kept for the next run
    (:meth:`~mltoolkit.workdir.layout.WorkdirLayout.preview`).
    """
    size = path.stat().st_size
    if path.suffix.lower() == ".svg":
        if size > MAX_SVG_BYTES:
            return None
        return "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    if size > MAX_PNG_BYTES:
        return None
    return "data:image/png;base64," + _kept_preview(path, kept)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rows(data: Any) -> list[dict[str, Any]] | None:
    """Table rows for the shapes a summary file usually has, ``None`` for anything else."""
    if isinstance(data, Mapping) and data:
        values = list(data.values())
        if all(_is_scalar(value) for value in values):
            return [{"name": str(key), "value": value} for key, value in data.items()]
        if all(isinstance(value, Mapping) and all(map(_is_scalar, value.values())) for value in values):
            return [{"name": str(key), **{str(k): v for k, v in value.items()}} for key, value in data.items()]
        lengths = {len(value) for value in values if isinstance(value, list)}
        if len(lengths) == 1 and all(isinstance(value, list) and all(map(_is_scalar, value)) for value in values):
            return [{str(key): data[key][index] for key in data} for index in range(lengths.pop())]
        return None
    if isinstance(data, list) and data:
        if all(_is_scalar(value) for value in data):
            return [{"index": index, "value": value} for index, value in enumerate(data)]
        if all(isinstance(value, Mapping) and all(map(_is_scalar, value.values())) for value in data):
            return [{str(key): item for key, item in value.items()} for value in data]
    return None


def table_rows(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a small JSON/YAML file of numbers; ``None`` when it is large, unreadable or not numbers."""
    if path.stat().st_size > MAX_TABLE_BYTES:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    rows = _rows(data)
    if not rows or len(rows) > MAX_TABLE_ROWS or any(len(row) > MAX_TABLE_COLUMNS for row in rows):
        return None
    if not any(_is_number(value) for row in rows for value in row.values()):
        return None
    return rows
