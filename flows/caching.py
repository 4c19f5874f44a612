"""Per-step caching that lives in the work directory, on top of Prefect's task caching.

A step's cache key covers everything that can change its outputs: the toolkit
version, the step's definition (the code of a native step, the spec of a yadage
step), and its inputs -- files by the sha256 of their content (a folder or a
glob by the content of the files it holds or matches), other values as they
are. Paths inside the work directory enter the key relative to it, so a work
directory copied to another machine (or folder) keeps its cache.

Prefect stores a cached step's result in the work directory's cache folder
(``WorkdirLayout.cache``, Prefect's own result record per key). Next to it, the
step writes a *manifest* (``WorkdirLayout.manifest(key)``) listing the files it produced
with their sha256. Before a run, :func:`prune_stale_cache` drops every cached
result whose files are missing or changed, so the producing step runs again
instead of a later step trusting a modified file. Resuming after a failed or
killed run is the same mechanism: finished steps are cached, the rest run.
"""

from __future__ import annotations

import dataclasses
import glob as globbing
import hashlib
import inspect
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy

from mltoolkit import __version__ as TOOLKIT_VERSION
from mltoolkit.workdir.artifacts import atomic_output, sha256_file
from mltoolkit.workdir.layout import (
    BOOKKEEPING_DIRS,
    CACHE_DIR,
    MANIFEST_DIR,
    WorkdirLayout,
    cached_result_manifest,
    remove_tree,
)

__all__ = [
    "CACHE_DIR",
    "MANIFEST_DIR",
    "CacheSettings",
    "StepCachePolicy",
    "cache_options",
    "definition_of",
    "prune_stale_cache",
    "record_step_outputs",
    "seal_cached_result",
    "step_cache_key",
    "write_manifest",
]

#: Parameters that say where a step writes, not what it computes.
LOCATION_PARAMETERS = frozenset({"workdir"})


@dataclass(frozen=True)
class CacheSettings:
    """How a run uses the cache: ``enabled`` (default) and ``refresh`` (re-run everything, then store)."""

    enabled: bool = True
    refresh: bool = False


def definition_of(function: Callable[..., Any]) -> str:
    """A digest of a function's source code: the "definition" part of a native step's key."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        source = f"{function.__module__}.{function.__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()


class _FileDigests:
    """sha256 of files, remembered by (path, size, mtime) within one process."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def digest(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._known:
            self._known[key] = sha256_file(path)
        return self._known[key]


_DIGESTS = _FileDigests()


def _fingerprint(value: Any, workdir: Path, own_dir: Path | None = None) -> Any:
    """A JSON-ready value that changes exactly when ``value``'s meaning for a step changes.

    Files count by content, except those under ``own_dir`` (the step's own
    folder): those are the step's outputs, named but not yet written when the key
    is first computed.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "sha256") and hasattr(value, "path"):  # a FileRef: its content is what counts
            return {"file_sha256": value.sha256}
        return {
            "type": type(value).__qualname__,
            **{f.name: _fingerprint(getattr(value, f.name), workdir, own_dir) for f in dataclasses.fields(value)},
        }
    if hasattr(value, "model_dump"):
        return _fingerprint(value.model_dump(), workdir, own_dir)
    if isinstance(value, Mapping):
        return {
            str(key): _fingerprint(item, workdir, own_dir)
            for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_fingerprint(item, workdir, own_dir) for item in items]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return _fingerprint_text(value, workdir, own_dir)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return repr(value)


def _fingerprint_text(text: str, workdir: Path, own_dir: Path | None) -> Any:
    if "://" in text or len(text) > 4096 or "\n" in text:
        return text
    path = Path(text)
    if not path.is_absolute():
        return text
    if own_dir is not None and path.is_relative_to(own_dir):
        return {"workdir_path": path.relative_to(workdir).as_posix()}
    try:
        is_file = path.is_file()
        is_dir = not is_file and path.is_dir()
    except OSError:
        is_file = is_dir = False
    if is_file:
        return {"file_sha256": _DIGESTS.digest(path)}
    # Inputs can also be a glob (the seed's merge step gets '<step dir>/*.pkl' and
    # lets the shell expand it) or a folder: what the step reads is the matched
    # files' content, so that is what enters the key.
    if is_dir:
        return {"folder": _place(path, workdir), "files": _tree_digests(path, workdir, own_dir)}
    if _GLOB_CHARACTERS.search(text):
        matches = sorted(Path(match) for match in globbing.glob(text))
        return {
            "glob": _place(path, workdir),
            "files": {_place(match, workdir): _DIGESTS.digest(match) for match in matches if match.is_file()},
        }
    if path.is_relative_to(workdir):
        return {"workdir_path": path.relative_to(workdir).as_posix()}
    return text


_GLOB_CHARACTERS = re.compile(r"[*?\[]")


def _place(path: Path, workdir: Path) -> str:
    """``path`` relative to the work directory when inside it (relocatable), else as is."""
    return path.relative_to(workdir).as_posix() if path.is_relative_to(workdir) else str(path)


def _tree_digests(folder: Path, workdir: Path, own_dir: Path | None) -> dict[str, str]:
    """``{path: sha256}`` of the files under ``folder``, without bookkeeping, temporary files or ``own_dir``.

    Bookkeeping folders are no input: the toolkit's records, caches and step logs,
    and Python's bytecode caches (written on import, e.g. under the toolkit's step
    scripts, which image-mapped steps name as a folder).
    """
    digests: dict[str, str] = {}
    for current, folders, files in os.walk(folder):
        here = Path(current)
        folders[:] = sorted(
            name
            for name in folders
            if name not in BOOKKEEPING_DIRS and not name.startswith(".") and (own_dir is None or here / name != own_dir)
        )
        for name in sorted(files):
            if not name.startswith("."):
                digests[_place(here / name, workdir)] = _DIGESTS.digest(here / name)
    return digests


def step_cache_key(
    name: str,
    definition: str,
    inputs: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    own_dir: str | os.PathLike[str] | None = None,
) -> str:
    """The cache key of a step: toolkit version, step name and definition, inputs' fingerprints.

    ``own_dir`` is the step's own output folder, if its parameters name files there.
    """
    root = Path(workdir).resolve()
    own = Path(own_dir).resolve() if own_dir is not None else None
    payload = {
        "toolkit": TOOLKIT_VERSION,
        "step": name,
        "definition": definition,
        "inputs": {
            key: _fingerprint(value, root, own)
            for key, value in sorted(inputs.items())
            if key not in LOCATION_PARAMETERS
        },
    }
    encoded = json.dumps(payload, sort_keys=True, default=repr).encode()
    return f"{name.replace('/', '_')}-{hashlib.sha256(encoded).hexdigest()[:40]}"


@dataclass
class StepCachePolicy(CachePolicy):
    """Prefect cache policy computing :func:`step_cache_key` for a step of a run in ``workdir``."""

    workdir: str = ""
    definition: str = ""
    name: str | None = None

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        name = self.name or task_ctx.task.name
        return step_cache_key(name, self.definition, inputs, self.workdir)


def write_manifest(workdir: str | os.PathLike[str], key: str, files: Mapping[str, str]) -> None:
    """Record the files (workdir-relative path -> sha256) the step with ``key`` produced.

    Written atomically (temporary file + rename) but not fsynced: one fsync per
    step was the largest single cost of a 10,000-step scatter, and a manifest
    lost or emptied by a power cut only makes :func:`prune_stale_cache` drop the
    step's cached result, so the step runs again -- nothing unverified is reused.

    Inside a task run that stores nothing (``--no-cache``: Prefect's transaction
    has no key) no manifest is written: it would vouch for the files of this
    uncached run under the key of an older cached result, which would then be
    reused although its recorded hashes no longer match the files.
    """
    from prefect.transactions import get_transaction

    transaction = get_transaction()
    if transaction is not None and not transaction.key:
        return
    target = WorkdirLayout(workdir).manifest(key)
    with atomic_output(target) as temporary:
        temporary.write_text(json.dumps({"files": dict(files)}, indent=2) + "\n", encoding="utf-8")


def record_step_outputs(workdir: str | os.PathLike[str], files: Mapping[str, str]) -> None:
    """Write the running step's manifest under the cache key Prefect computed for it.

    Called from a task body; without a key (caching off, or outside Prefect)
    nothing is stored, so there is nothing to vouch for.
    """
    from prefect.transactions import get_transaction

    transaction = get_transaction()
    if transaction is not None and transaction.key:
        write_manifest(workdir, transaction.key, files)


def seal_cached_result(task: Any, task_run: Any, state: Any) -> None:
    """Prefect ``on_completion`` hook: add the sha256 of the step's stored result to its manifest.

    Prefect unpickles a stored result on a cache hit; :func:`prune_stale_cache`
    only lets it do so when the file still has the hash sealed here, right after
    Prefect wrote it. A run killed between the two leaves an unsealed result,
    which is forgotten: that one step runs again.
    """
    metadata = getattr(getattr(state, "data", None), "metadata", None)
    storage_key = getattr(metadata, "storage_key", None)
    if not storage_key:
        return
    record = Path(storage_key)
    manifest = cached_result_manifest(record)
    try:
        content = json.loads(manifest.read_text())
        content["record_sha256"] = sha256_file(record)
    except (OSError, ValueError, TypeError):
        return  # no manifest (nothing stored for this run) or no record: nothing to vouch for
    with atomic_output(manifest) as temporary:
        temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def _manifest_is_valid(workdir: Path, manifest: Path, record: Path) -> bool:
    try:
        content = json.loads(manifest.read_text())
        files = content["files"]
        sealed = content.get("record_sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    try:
        if sealed is None or sha256_file(record) != sealed:
            return False
    except OSError:
        return False
    for relative, expected in files.items():
        path = Path(relative) if Path(relative).is_absolute() else workdir / relative
        try:
            if _DIGESTS.digest(path) != expected:
                return False
        except OSError:
            return False
    return True


def prune_stale_cache(workdir: str | os.PathLike[str]) -> list[str]:
    """Forget cached steps whose output files are missing or changed; return their keys.

    A cached result without a manifest, or whose own sha256 differs from the one
    sealed when it was stored (:func:`seal_cached_result`), is forgotten too:
    nothing unverified is unpickled or reused.
    """
    layout = WorkdirLayout(workdir)
    if not layout.cache.is_dir():
        return []
    removed: list[str] = []
    for record in layout.cache.iterdir():
        if record.name.startswith("."):
            continue
        manifest = layout.manifest(record.name)
        if manifest.is_file() and _manifest_is_valid(layout.root, manifest, record):
            continue
        removed.append(record.name)
        remove_tree(layout.root, record, what="stale cached result")
        remove_tree(layout.root, manifest, what="stale cache manifest")
    return removed


def cache_options(
    workdir: str | os.PathLike[str],
    definition: str,
    settings: CacheSettings,
    name: str | None = None,
    policy: CachePolicy | None = None,
) -> dict[str, Any]:
    """``Task.with_options`` keyword arguments for a step under ``settings``.

    ``policy`` replaces the default :class:`StepCachePolicy` (built from
    ``definition`` and ``name``) for steps whose key is computed differently.
    """
    from prefect.cache_policies import NO_CACHE

    if not settings.enabled:
        return {"cache_policy": NO_CACHE, "persist_result": False}
    root = Path(workdir).resolve()
    policy = policy or StepCachePolicy(workdir=str(root), definition=definition, name=name)
    return {
        "cache_policy": policy,
        "persist_result": True,
        "result_storage": WorkdirLayout(root).cache,
        "refresh_cache": settings.refresh,
        "on_completion": [seal_cached_result],
    }
