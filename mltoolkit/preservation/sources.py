"""Open a run to reproduce or compare: a work directory, its RO-Crate folder, or an archive zip.

A source may come from anyone, so nothing in it is trusted: a zip is extracted
only when every member is a plain file with a relative name inside the target
folder (no absolute names, no ``..``, no links) and the whole stays under a size
bound; and every file whose sha256 the run recorded (the zip's
``_mltoolkit/archive.json``, the run record's step outputs, the submitted copies'
manifest, the crate's ``sha256`` properties) is hashed again. A mismatch is a
*tampered* finding that the report shows; nothing here ever unpickles a file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from mltoolkit.errors import RunSourceError, WorkdirError
from mltoolkit.workdir.artifacts import sha256_file
from mltoolkit.workdir.layout import CRATE_FILE, RUN_RECORD_FILE, WorkdirLayout
from mltoolkit.workdir.record import RunRecord, read_run_record

__all__ = [
    "DEFAULT_MAX_EXTRACTED_BYTES",
    "ArchivedRun",
    "Tampered",
    "extract_zip",
    "open_run",
    "recorded_outputs",
]

#: Largest total size a zip may extract to (``MLTOOLKIT_REPRODUCE_MAX_BYTES`` overrides it).
DEFAULT_MAX_EXTRACTED_BYTES = 4 * 1024**3
#: Most members a zip may have.
MAX_ZIP_MEMBERS = 200_000

_EXPECTED_ZIP = "expected an archive written by 'mltoolkit archive'"

SourceKind = Literal["workdir", "crate", "zip"]


@dataclass(frozen=True)
class Tampered:
    """A file whose content is not what the run recorded (``found`` is ``None`` when it is missing)."""

    path: str
    expected: str
    found: str | None
    recorded_in: str

    def describe(self) -> str:
        """One line: which file, what was recorded where, what was found."""
        found = "missing" if self.found is None else f"sha256 {self.found[:12]}"
        return f"{self.path}: {found}, but {self.recorded_in} records sha256 {self.expected[:12]}"


@dataclass
class ArchivedRun:
    """A run opened for reading: its folder, record, recorded file hashes and what failed verification.

    Use it as a context manager (or call :meth:`close`): an extracted zip lives in
    a temporary folder that is removed on close.
    """

    source: str
    kind: SourceKind
    root: Path
    record: RunRecord
    hashes: dict[str, str]
    tampered: list[Tampered]
    submitted: dict[str, Any] | None = None
    _temporary: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def layout(self) -> WorkdirLayout:
        """The layout of the run's (possibly extracted) work directory."""
        return WorkdirLayout(self.root)

    @property
    def outputs(self) -> dict[str, str]:
        """The files the run's steps wrote: path relative to the work directory -> recorded sha256."""
        return recorded_outputs(self.record)

    def is_tampered(self, path: str) -> bool:
        """Whether ``path`` (relative to the work directory) failed verification."""
        return any(finding.path == path for finding in self.tampered)

    def close(self) -> None:
        """Remove the extracted copy of a zip (nothing for a folder)."""
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> ArchivedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recorded_outputs(record: RunRecord) -> dict[str, str]:
    """Every step's output files of ``record``: relative path -> sha256 (later steps win)."""
    outputs: dict[str, str] = {}
    for step in record.steps:
        outputs.update(step.outputs)
    return outputs


def _max_bytes() -> int:
    text = os.environ.get("MLTOOLKIT_REPRODUCE_MAX_BYTES", "")
    return int(text) if text.isdigit() else DEFAULT_MAX_EXTRACTED_BYTES


def _safe_member_name(source: str, info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's name as a relative path, or a one-line error for an unsafe member."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    mode = info.external_attr >> 16
    if path.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise RunSourceError(f"{source}: zip member {info.filename!r} has an absolute name; refusing to extract it")
    if ".." in path.parts:
        raise RunSourceError(f"{source}: zip member {info.filename!r} climbs out with '..'; refusing to extract it")
    if stat.S_ISLNK(mode):
        raise RunSourceError(f"{source}: zip member {info.filename!r} is a symbolic link; refusing to extract it")
    return path


def extract_zip(source: str | os.PathLike[str], target: Path, max_bytes: int | None = None) -> None:
    """Extract the zip ``source`` into the folder ``target``, refusing anything unsafe.

    Raises:
        RunSourceError: not a zip or damaged, a member with an absolute name, ``..`` or a
            link, too many members, or more than ``max_bytes`` in all.
    """
    limit = _max_bytes() if max_bytes is None else max_bytes
    where = str(source)
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise RunSourceError(f"{where}: {len(members)} members, more than {MAX_ZIP_MEMBERS}; not extracted")
            names = [_safe_member_name(where, info) for info in members]
            declared = sum(info.file_size for info in members)
            if declared > limit:
                raise RunSourceError(
                    f"{where}: extracts to {declared:,} bytes, more than the limit of {limit:,}; "
                    "raise MLTOOLKIT_REPRODUCE_MAX_BYTES if you trust it"
                )
            for info, name in zip(members, names):
                _extract_member(archive, info, target / name, limit)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise RunSourceError(f"{where}: the zip is damaged ({error}); {_EXPECTED_ZIP}") from None


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, limit: int) -> None:
    """Write one member, counting the bytes actually read (a member may lie about its size)."""
    if info.is_dir():
        destination.mkdir(parents=True, exist_ok=True)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as reader, destination.open("wb") as writer:
        while chunk := reader.read(1 << 20):
            written += len(chunk)
            if written > max(info.file_size, 0) or written > limit:
                raise RunSourceError(f"zip member {info.filename!r} holds more bytes than it declares; refusing it")
            writer.write(chunk)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunSourceError(f"{path}: cannot read it as JSON ({error}); the run's records are damaged") from None


def _crate_hashes(root: Path) -> dict[str, str]:
    """The ``sha256`` the RO-Crate records for each file inside the crate (relative ids only)."""
    crate = root / CRATE_FILE
    if not crate.is_file():
        return {}
    graph = _load_json(crate).get("@graph", [])
    hashes: dict[str, str] = {}
    for entity in graph if isinstance(graph, list) else []:
        identifier, digest = entity.get("@id", ""), entity.get("sha256")
        if isinstance(digest, str) and isinstance(identifier, str) and "://" not in identifier:
            hashes[identifier.removeprefix("./")] = digest
    return hashes


def _expected_hashes(run: ArchivedRun) -> list[tuple[str, str, str]]:
    """``(path, sha256, where it is recorded)`` for every file some record of the run names."""
    expected = [(path, digest, RUN_RECORD_FILE) for path, digest in run.outputs.items()]
    layout = run.layout
    if run.submitted is not None:
        base = run.layout.relative(layout.submitted)
        manifest = run.layout.relative(layout.submitted_manifest)
        files = run.submitted.get("files") or {}
        expected += [(f"{base}/{path}", digest, manifest) for path, digest in files.items()]
    if layout.archive_manifest.is_file():
        files = _load_json(layout.archive_manifest).get("files") or {}
        manifest = layout.relative(layout.archive_manifest)
        expected += [(path, digest, manifest) for path, digest in files.items()]
    expected += [(path, digest, CRATE_FILE) for path, digest in _crate_hashes(run.root).items()]
    return expected


def _verify(run: ArchivedRun) -> None:
    """Hash every recorded file once; fill ``run.hashes`` and ``run.tampered``."""
    actual: dict[str, str | None] = {}
    for path, digest, where in _expected_hashes(run):
        if path not in actual:
            candidate = run.root / path
            inside = candidate.resolve().is_relative_to(run.root)
            regular = inside and candidate.is_file() and not candidate.is_symlink()
            actual[path] = sha256_file(candidate) if regular else None
        run.hashes.setdefault(path, digest)
        if actual[path] != digest:
            run.tampered.append(Tampered(path, digest, actual[path], where))


def _classify(source: Path) -> SourceKind:
    """Which kind of source ``source`` is, or a one-line error saying what it is instead."""
    if source.is_file():
        if zipfile.is_zipfile(source):
            return "zip"
        raise RunSourceError(
            f"{source}: not a zip, a work directory or a crate folder; expected a run's work directory "
            "(with _mltoolkit/run.json) or an archive written by 'mltoolkit archive'"
        )
    if not source.is_dir():
        raise RunSourceError(f"{source}: no such file or folder; expected a run's work directory or archive zip")
    if (source / RUN_RECORD_FILE).is_file():
        return "crate" if (source / CRATE_FILE).is_file() else "workdir"
    if (source / CRATE_FILE).is_file():
        raise RunSourceError(
            f"{source}: an RO-Crate without mltoolkit's records (no {RUN_RECORD_FILE}); "
            "expected the crate of an mltoolkit run or its archive zip"
        )
    raise RunSourceError(
        f"{source}: not a run directory (no {RUN_RECORD_FILE}); expected the work directory of an mltoolkit run, "
        "its crate folder or its archive zip"
    )


def _zip_root(folder: Path, source: Path) -> Path:
    """The folder of the extracted zip that holds the run (the zip's root, or its single top folder)."""
    if (folder / RUN_RECORD_FILE).is_file():
        return folder
    entries = [entry for entry in folder.iterdir()]
    if len(entries) == 1 and (entries[0] / RUN_RECORD_FILE).is_file():
        return entries[0]
    raise RunSourceError(
        f"{source}: the zip holds no {RUN_RECORD_FILE}; expected an archive of an mltoolkit run "
        "(written by 'mltoolkit archive')"
    )


def open_run(source: str | os.PathLike[str], max_bytes: int | None = None) -> ArchivedRun:
    """Open ``source`` (work directory, crate folder or zip) and verify every recorded file.

    Raises:
        RunSourceError: not a run, a crate without our records, a damaged or unsafe zip,
            a damaged run record.
    """
    path = Path(source).expanduser()
    kind = _classify(path)
    temporary = None
    root = path.resolve()
    if kind == "zip":
        temporary = tempfile.TemporaryDirectory(prefix="mltoolkit-archive-")
        try:
            extract_zip(path, Path(temporary.name), max_bytes)
            root = _zip_root(Path(temporary.name).resolve(), path)
        except BaseException:
            temporary.cleanup()
            raise
    try:
        record = read_run_record(root)
    except WorkdirError as error:
        if temporary is not None:
            temporary.cleanup()
        raise RunSourceError(str(error)) from None
    manifest = WorkdirLayout(root).submitted_manifest
    submitted = _load_json(manifest) if manifest.is_file() else None
    run = ArchivedRun(str(source), kind, root, record, {}, [], submitted, temporary)
    _verify(run)
    return run
