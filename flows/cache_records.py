"""The cached results in a work directory: JSON records only, checked before Prefect reads them.

Steps return file references and numbers (:class:`~mltoolkit.analysis.pipeline.FileRef`,
:class:`~flows.spec_tasks.StepOutcome`, ...), so Prefect stores each cached result
as JSON with :class:`StepResultSerializer`: the cache holds no pickles.

That alone is not enough, because a Prefect result record names its own
serializer, and Prefect deserializes with the one the record names (a record
saying ``pickle`` is unpickled; one saying ``json`` may name any importable
function as its decoder). So before a run, :func:`prune_stale_cache` reads
every record itself and drops each one that is not exactly ours, holds a value
of a type outside a fixed list, or names an output file that is missing or
changed since the step wrote it (then that step runs again, instead of a later
step trusting a modified file). Prefect only ever reads records that passed.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from prefect.serializers import Serializer
from pydantic import Field, TypeAdapter

from mltoolkit.workdir.artifacts import FileHasher, atomic_write_json
from mltoolkit.workdir.layout import WorkdirLayout, remove_tree

__all__ = [
    "RESULT_SERIALIZER",
    "StepResultSerializer",
    "decode_result",
    "encode_result",
    "prepare_result_types",
    "prune_stale_cache",
    "read_pruned",
    "result_files",
]

#: The serializer name our records carry (Prefect finds the class by it).
RESULT_SERIALIZER = "mltoolkit-json"
#: The only types a stored result may hold, by name -> ``module:Class``; nothing else is ever built.
RESULT_TYPES = {
    "FileRef": "mltoolkit.analysis.pipeline:FileRef",
    "ClassificationOutput": "mltoolkit.analysis.pipeline:ClassificationOutput",
    "MergeOutput": "mltoolkit.analysis.pipeline:MergeOutput",
    "StepOutcome": "flows.spec_tasks:StepOutcome",
}
#: A record larger than this is no record of ours (ours are a few kB, a 10,000-file gather a few MB).
MAX_RECORD_BYTES = 256 << 20


@cache
def _adapter(name: str) -> tuple[type, TypeAdapter[Any]]:
    module, _, attribute = RESULT_TYPES[name].partition(":")
    kind = getattr(importlib.import_module(module), attribute)
    return kind, TypeAdapter(kind)


def prepare_result_types() -> None:
    """Build the validators of every result type now (a kept process does, so that its forks need not)."""
    for name in RESULT_TYPES:
        _adapter(name)


def encode_result(value: Any) -> bytes:
    """``value`` (one of :data:`RESULT_TYPES`) as JSON bytes.

    Raises:
        TypeError: ``value`` is of another type (a step must return file references and numbers).
    """
    name = type(value).__name__
    if name not in RESULT_TYPES or _adapter(name)[0] is not type(value):
        raise TypeError(
            f"a cached step result must be one of {', '.join(RESULT_TYPES)}, not {type(value).__qualname__}"
        )
    return json.dumps({"type": name, "value": _adapter(name)[1].dump_python(value, mode="json")}).encode()


def decode_result(blob: bytes) -> Any:
    """The value :func:`encode_result` wrote; only :data:`RESULT_TYPES` are built, from plain JSON.

    Raises:
        ValueError: not such a value.
    """
    try:
        data = json.loads(blob)
        name = data["type"]
        if name not in RESULT_TYPES:
            raise ValueError(f"unexpected type {name!r}")
        return _adapter(name)[1].validate_python(data["value"])
    except (KeyError, TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"not a stored step result: {error}") from None


class StepResultSerializer(Serializer):  # type: ignore[type-arg]  # Serializer[Any] registers a nameless subclass
    """Prefect serializer for step results: JSON of :data:`RESULT_TYPES` only, nothing to configure."""

    type: str = Field(default=RESULT_SERIALIZER, frozen=True)

    def dumps(self, obj: Any) -> bytes:
        """JSON bytes of a step result."""
        return encode_result(obj)

    def loads(self, blob: bytes) -> Any:
        """The step result in ``blob``."""
        return decode_result(blob)


def result_files(value: Any) -> dict[str, str]:
    """The files a step result vouches for: ``{workdir-relative path: sha256}``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "sha256") and hasattr(value, "path"):
            return {str(value.path): str(value.sha256)}
        found: dict[str, str] = {}
        for item in dataclasses.fields(value):
            content = getattr(value, item.name)
            if item.name == "files" and isinstance(content, dict):
                found.update({str(path): str(digest) for path, digest in content.items()})
            else:
                found.update(result_files(content))
        return found
    if isinstance(value, (list, tuple)):
        return {path: digest for item in value for path, digest in result_files(item).items()}
    return {}


def _output_problem(root: Path, hasher: FileHasher, place: str, expected: str) -> str | None:
    real = Path(os.path.realpath(root / place))
    if os.path.isabs(place) or not real.is_relative_to(root):
        return f"stored result names a file outside the work directory: {place}"
    actual = hasher.digest(real)
    if actual is None:
        return f"output missing: {place}"
    return None if actual == expected else f"output changed: {place}"


def _record_problem(root: Path, record: Path, hasher: FileHasher) -> str | None:
    """Why the stored result ``record`` must not be used, or ``None`` when it may."""
    try:
        if record.is_symlink() or not record.is_file() or record.stat().st_size > MAX_RECORD_BYTES:
            return "stored result is not a file of ours"
        content = json.loads(record.read_bytes())
        serializer = content["metadata"]["serializer"]
        stored = content["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return "stored result is unreadable"
    if serializer != {"type": RESULT_SERIALIZER} or not isinstance(stored, str):
        return "stored result is not a mltoolkit JSON record"
    try:
        value = decode_result(stored.encode())
    except ValueError:
        return "stored result holds an unexpected value"
    for place, expected in sorted(result_files(value).items()):
        problem = _output_problem(root, hasher, place, expected)
        if problem is not None:
            return problem
    return None


def prune_stale_cache(workdir: str | os.PathLike[str]) -> dict[str, str]:
    """Forget every cached result that may not be reused; return ``{key: why}``.

    The reasons are also written to ``WorkdirLayout.pruned_results``, where the
    cache policies find why a step whose key is unchanged runs again.
    """
    layout = WorkdirLayout(workdir)
    removed: dict[str, str] = {}
    if layout.cache.is_dir():
        hasher = FileHasher()
        for record in sorted(layout.cache.iterdir()):
            if record.name.startswith("."):
                continue
            problem = _record_problem(layout.root, record, hasher)
            if problem is not None:
                removed[record.name] = problem
                remove_tree(layout.root, record, what="stale cached result")
    if removed or layout.pruned_results.exists():
        atomic_write_json(layout.pruned_results, removed)
    return removed


_pruned_memo: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def read_pruned(workdir: str | os.PathLike[str]) -> dict[str, str]:
    """The ``{key: why}`` the last :func:`prune_stale_cache` of ``workdir`` wrote (read once per change)."""
    path = WorkdirLayout(workdir).pruned_results
    try:
        info = path.stat()
    except OSError:
        return {}
    stamp = (info.st_mtime_ns, info.st_size)
    known = _pruned_memo.get(str(path))
    if known is None or known[0] != stamp:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            content = {}
        known = (stamp, {str(key): str(value) for key, value in content.items()} if isinstance(content, dict) else {})
        _pruned_memo[str(path)] = known
    return known[1]
