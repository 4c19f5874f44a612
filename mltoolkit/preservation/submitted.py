"""Exact copies of what a run was given: ``WORKDIR/_mltoolkit/submitted/``.

A run's record says what ran; years later one also needs *what was submitted*,
byte for byte, since the files on disk may have changed or gone. Before any
step runs, a flow calls :func:`keep_native_submission` or
:func:`keep_spec_submission`, which copy into ``_mltoolkit/submitted/``:

* ``spec/...``: the workflow file and every file a ``$ref`` reached, keeping their
  paths relative to the folder that holds them all (and ``--toplevel``);
* ``inputs.yml`` (the inputs file under its own name), as submitted;
* ``data/<name>``: each dataset, unless larger than
  ``MLTOOLKIT_ARCHIVE_MAX_DATASET_BYTES`` (default 100 MB): then only its
  original path or URL and its sha256 are kept;

and write ``submitted.json`` (:func:`read_submission` reads it back)::

    {"kind": "native" | "spec", "flow": "ml-workflow" | "spec-workflow",
     "workflow": "spec/workflow.yml" | null, "toplevel": "spec" | null,
     "inputs_file": "inputs.yml" | null, "parameters": {"classifiers": "[...]"},
     "inputs": {...}, "files": {"spec/workflow.yml": "<sha256>", ...},
     "datasets": [{"name", "original", "path", "url", "sha256", "bytes"}],
     "remote_documents": ["https://..."]}

``parameters`` are the ``-p`` values as typed; ``inputs`` the resolved flow
parameters (native) or init values (spec). The folder is built beside its final
place and renamed into it, so it is either the previous run's or complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mltoolkit.analysis.data import resolve_dataset
from mltoolkit.errors import MLToolkitError, WorkdirError
from mltoolkit.workdir.artifacts import atomic_write_json, sha256_file
from mltoolkit.workdir.layout import WorkdirLayout, remove_tree
from mltoolkit.yadage.load import LoadedSpec
from mltoolkit.yadage.load.documents import is_url

__all__ = [
    "DEFAULT_MAX_DATASET_BYTES",
    "MAX_DATASET_BYTES_ENV",
    "Submission",
    "keep_native_submission",
    "keep_spec_submission",
    "max_dataset_bytes",
    "read_submission",
]

#: Environment variable: datasets larger than this many bytes are referenced, not copied.
MAX_DATASET_BYTES_ENV = "MLTOOLKIT_ARCHIVE_MAX_DATASET_BYTES"
#: The default limit (100 MB).
DEFAULT_MAX_DATASET_BYTES = 100_000_000
_SPEC_DIR = "spec"
_DATA_DIR = "data"


class Submission(BaseModel):
    """What a command line was given beyond the flow's parameters (absent when a deployment runs the flow)."""

    inputs_file: str | None = None
    """The inputs file (``--inputs`` / INPUTS) as given on the command line."""
    parameters: dict[str, str] = Field(default_factory=dict)
    """The ``-p key=value`` overrides, values as typed."""

    @classmethod
    def from_command_line(cls, inputs_file: str | os.PathLike[str] | None, assignments: list[str]) -> Submission:
        """What a command line was given: its inputs file (made absolute) and its ``-p key=value`` items."""
        parameters = {}
        for item in assignments:
            key, _, value = item.partition("=")
            parameters[key.strip()] = value
        return cls(inputs_file=os.path.abspath(inputs_file) if inputs_file else None, parameters=parameters)


def max_dataset_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The dataset copy limit from :data:`MAX_DATASET_BYTES_ENV` (a whole number of bytes).

    Raises:
        WorkdirError: the variable is set to something that is not a whole number.
    """
    value = (os.environ if environ is None else environ).get(MAX_DATASET_BYTES_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_DATASET_BYTES
    if not value.isdigit():
        raise WorkdirError(
            f"environment variable {MAX_DATASET_BYTES_ENV}={value!r}: expected a whole number of bytes, "
            f"e.g. {DEFAULT_MAX_DATASET_BYTES}; fix or unset it"
        )
    return int(value)


class _Folder:
    """A submitted/ folder being built: copies files in and notes their sha256."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, str] = {}

    def copy(self, source: str | os.PathLike[str], relative: str) -> str:
        """Copy ``source`` byte for byte to ``relative``; return its sha256."""
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        digest = sha256_file(target)
        self.files[relative] = digest
        return digest

    def unique(self, relative: str) -> str:
        """``relative``, or ``<stem>-<n><suffix>`` when another copy already has that name."""
        candidate, counter = relative, 1
        while candidate in self.files:
            stem, suffix = os.path.splitext(relative)
            candidate, counter = f"{stem}-{counter}{suffix}", counter + 1
        return candidate


def _keep(workdir: str | os.PathLike[str], fill: Any) -> Path:
    """Build submitted/ next to its place with ``fill(folder) -> manifest``; rename it into place."""
    layout = WorkdirLayout(workdir)
    layout.records.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=layout.records, prefix=".submitted-"))
    try:
        folder = _Folder(building)
        manifest = fill(folder)
        manifest["files"] = dict(sorted(folder.files.items()))
        atomic_write_json(building / layout.submitted_manifest.name, manifest)
        remove_tree(layout.root, layout.submitted, what="previous submitted copies")
        os.replace(building, layout.submitted)
    finally:
        if building.exists():
            remove_tree(layout.root, building, what="unfinished submitted copies")
    return layout.submitted_manifest


def _keep_inputs_file(folder: _Folder, path: str | None) -> str | None:
    """Copy the inputs file under its own name; return that name (``None`` without one)."""
    if not path:
        return None
    relative = folder.unique(Path(path).name)
    folder.copy(path, relative)
    return relative


def _dataset(folder: _Folder, original: str, limit: int) -> dict[str, Any]:
    """One dataset's entry: copied under data/ when at most ``limit`` bytes, else referenced."""
    url = original if is_url(original) else None
    entry: dict[str, Any] = {"name": Path(original.split("?")[0]).name or "dataset", "original": original}
    try:
        local = resolve_dataset(original)
    except MLToolkitError:
        # the data_prep step reports the problem; a run is never stopped here for it
        return {**entry, "path": None, "url": url, "sha256": None, "bytes": None}
    if url is None:  # a relative path meant the run's current folder: keep where it really was
        entry["original"] = str(local.resolve())
    size = local.stat().st_size
    if size > limit:
        return {**entry, "path": None, "url": url or local.as_uri(), "sha256": sha256_file(local), "bytes": size}
    relative = folder.unique(f"{_DATA_DIR}/{entry['name']}")
    return {**entry, "path": relative, "url": url, "sha256": folder.copy(local, relative), "bytes": size}


def _datasets(folder: _Folder, originals: list[str]) -> list[dict[str, Any]]:
    limit = max_dataset_bytes()
    return [_dataset(folder, original, limit) for original in originals]


def keep_native_submission(
    workdir: str | os.PathLike[str],
    *,
    inputs: dict[str, Any],
    submission: Submission | None = None,
) -> Path:
    """Keep what the native flow was given; return the manifest's path.

    ``inputs`` are the flow's resolved parameters (``dataset``, ``classifiers``...),
    as the run record keeps them.
    """

    def fill(folder: _Folder) -> dict[str, Any]:
        return {
            "kind": "native",
            "flow": "ml-workflow",
            "workflow": None,
            "toplevel": None,
            "inputs_file": _keep_inputs_file(folder, submission.inputs_file if submission else None),
            "parameters": dict(submission.parameters) if submission else {},
            "inputs": inputs,
            "datasets": _datasets(folder, [str(inputs["dataset"])] if inputs.get("dataset") else []),
        }

    return _keep(workdir, fill)


def _spec_base(loaded: LoadedSpec, local: list[str]) -> str:
    """The folder holding the toplevel and every local spec document (their relative refs stay valid)."""
    places = [os.path.dirname(document) for document in local]
    if not is_url(loaded.toplevel):
        places.append(loaded.toplevel)
    return os.path.commonpath(places)


def _keep_spec_files(folder: _Folder, loaded: LoadedSpec) -> tuple[str | None, str | None, list[str]]:
    """Copy the spec's local documents under spec/; return the workflow's and toplevel's copies and the URLs."""
    local = [document for document in loaded.documents if not is_url(document)]
    remote = [document for document in loaded.documents if is_url(document)]
    if not local:
        return None, None, remote
    base = _spec_base(loaded, local)
    for document in local:
        folder.copy(document, f"{_SPEC_DIR}/{Path(os.path.relpath(document, base)).as_posix()}")
    workflow = None
    if not is_url(loaded.source):
        workflow = f"{_SPEC_DIR}/{Path(os.path.relpath(loaded.source, base)).as_posix()}"
        if loaded.pointer:
            workflow += "#/" + "/".join(str(part) for part in loaded.pointer)
    toplevel = None if is_url(loaded.toplevel) else Path(_SPEC_DIR, os.path.relpath(loaded.toplevel, base)).as_posix()
    return workflow, toplevel, remote


def _spec_datasets(init: Mapping[str, Any]) -> list[str]:
    """The init values the toolkit knows as datasets: ``dataset`` (a path or URL, or a list of them)."""
    value = init.get("dataset")
    values = value if isinstance(value, list) else [value]
    return [item for item in values if isinstance(item, str) and item]


def keep_spec_submission(
    workdir: str | os.PathLike[str],
    *,
    loaded: LoadedSpec,
    init: dict[str, Any],
    inputs_file: str | None = None,
    submission: Submission | None = None,
) -> Path:
    """Keep what a spec run was given (the loaded spec's files, inputs, dataset); return the manifest's path.

    ``inputs_file`` is the flow's own parameter; a command line's ``submission``
    names the file it read instead.
    """

    def fill(folder: _Folder) -> dict[str, Any]:
        workflow, toplevel, remote = _keep_spec_files(folder, loaded)
        kept_inputs = (submission.inputs_file if submission else None) or inputs_file
        return {
            "kind": "spec",
            "flow": "spec-workflow",
            "workflow": workflow,
            "toplevel": toplevel,
            "inputs_file": _keep_inputs_file(folder, kept_inputs),
            "parameters": dict(submission.parameters) if submission else {},
            "inputs": init,
            "datasets": _datasets(folder, _spec_datasets(init)),
            "remote_documents": remote,
        }

    return _keep(workdir, fill)


def read_submission(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    """``submitted.json`` of a work directory.

    Raises:
        WorkdirError: there is none, or it is not a JSON object.
    """
    path = WorkdirLayout(workdir).submitted_manifest
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkdirError(
            f"{path}: no record of what the run was given; runs before this toolkit version have none"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WorkdirError(f"{path}: unreadable ({error}); expected the JSON the run wrote") from None
    if not isinstance(value, dict):
        raise WorkdirError(f"{path}: found {type(value).__name__}, expected a JSON object")
    return value
