"""A run as one self-contained zip: its RO-Crate, what was submitted, its outputs, their sha256.

:func:`write_archive` packs a run's work directory into ``OUT.zip``::

    ro-crate-metadata.json          the run's Workflow Run RO-Crate, at the zip's root
    _mltoolkit/run.json             the run record
    _mltoolkit/submitted/...        exact copies of the spec, inputs file, -p values and dataset
    _mltoolkit/archive.json         {"files": {relative path: sha256}} of every other file in the zip
    data_prep/..., classification_0/..., scores.json ...   the outputs (and step logs)

Bookkeeping stays out: the cache (``_mltoolkit/cache``, ``_mltoolkit/cache-keys``),
the UI's image previews (``_mltoolkit/previews``) and the lock. The zip is written
beside ``OUT.zip`` and renamed into place, under the work directory's lock (a
running run is never archived half-way). Symbolic links are stored as the file
they point to when that file lies inside the work directory, and left out
otherwise (the summary names them): an archive carries the run's files, never
some other file of the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mltoolkit.errors import ArchiveError, MLToolkitError
from mltoolkit.workdir.artifacts import atomic_output
from mltoolkit.workdir.layout import (
    ARCHIVE_MANIFEST_FILE,
    CACHE_DIR,
    CRATE_FILE,
    KEYS_DIR,
    LOCK_FILE,
    PREVIEWS_DIR,
    WorkdirLayout,
)
from mltoolkit.workdir.locking import workdir_lock
from mltoolkit.workdir.record import RunRecord, read_run_record

__all__ = ["EXCLUDED", "ArchiveSummary", "archive_members", "write_archive"]

#: Paths (relative to the work directory) an archive leaves out, with everything below them.
EXCLUDED = (CACHE_DIR, KEYS_DIR, PREVIEWS_DIR, LOCK_FILE, ARCHIVE_MANIFEST_FILE)
_CHUNK = 1 << 20


@dataclass
class ArchiveSummary:
    """What :func:`write_archive` wrote."""

    path: Path
    """The zip."""
    files: dict[str, str] = field(default_factory=dict)
    """Every file in the zip but ``archive.json``: relative path -> sha256."""
    bytes: int = 0
    """Their total size, uncompressed."""
    skipped_links: list[str] = field(default_factory=list)
    """Symbolic links left out because they lead outside the work directory (or to a folder)."""


def _excluded(relative: str) -> bool:
    return any(relative == path or relative.startswith(path + "/") for path in EXCLUDED)


def archive_members(workdir: str | os.PathLike[str], *, leave_out: Path | None = None) -> tuple[list[str], list[str]]:
    """The files an archive of ``workdir`` holds (relative POSIX paths, sorted) and the links it leaves out.

    ``leave_out`` is a file never to include (the zip being written, when it lies inside).
    """
    root = WorkdirLayout(workdir).root
    members: list[str] = []
    skipped: list[str] = []
    for folder, folders, files in os.walk(root):
        base = Path(folder)
        folders[:] = sorted(name for name in folders if not _excluded((base / name).relative_to(root).as_posix()))
        skipped += [(base / name).relative_to(root).as_posix() for name in folders if (base / name).is_symlink()]
        for name in files:
            path = base / name
            relative = path.relative_to(root).as_posix()
            if _excluded(relative) or (leave_out is not None and path.resolve() == leave_out):
                continue
            target = path.resolve()
            if path.is_symlink() and (not target.is_relative_to(root) or not target.is_file()):
                skipped.append(relative)
            elif target.is_file():
                members.append(relative)
    return sorted(members), sorted(skipped)


def _checked_run(workdir: str | os.PathLike[str]) -> tuple[WorkdirLayout, RunRecord]:
    """The work directory's layout and run record, after checking it is one.

    Raises:
        ArchiveError: ``workdir`` is missing or not a folder.
        WorkdirError: it has no readable run record.
    """
    layout = WorkdirLayout(workdir)
    if not layout.root.is_dir():
        found = "a file" if layout.root.exists() else "nothing"
        raise ArchiveError(
            f"work directory {os.fspath(workdir)!r}: found {found}, expected the folder of a run "
            "(the one holding _mltoolkit/run.json); check the path"
        )
    return layout, read_run_record(layout.root)


def _checked_output(out_zip: str | os.PathLike[str]) -> Path:
    """``out_zip`` made absolute, after checking a file can be written there."""
    out = Path(os.path.abspath(out_zip))
    if out.is_dir():
        raise ArchiveError(f"archive {os.fspath(out_zip)!r}: is a folder, expected a file name such as run.zip")
    for folder in out.parents:
        if folder.exists():
            if not folder.is_dir():
                raise ArchiveError(
                    f"archive {os.fspath(out_zip)!r}: {folder} is a file, not a folder; pick another path"
                )
            break
    return out


def _add_file(archive: zipfile.ZipFile, path: Path, name: str) -> tuple[str, int]:
    """Store ``path`` as ``name``, streaming; return its sha256 and size."""
    digest, size = hashlib.sha256(), 0
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(path, "rb") as source, archive.open(info, "w", force_zip64=True) as target:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _add_text(archive: zipfile.ZipFile, name: str, text: str) -> tuple[str, int]:
    data = text.encode("utf-8")
    archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return hashlib.sha256(data).hexdigest(), len(data)


def _crate_text(layout: WorkdirLayout, record: RunRecord) -> str:
    """A crate built from the record, for a work directory that lost its ``ro-crate-metadata.json``."""
    from mltoolkit.workdir.provenance import build_run_crate

    return json.dumps(build_run_crate(layout.root, record).metadata.generate(), indent=1) + "\n"


def write_archive(workdir: str | os.PathLike[str], out_zip: str | os.PathLike[str]) -> ArchiveSummary:
    """Pack the run in ``workdir`` into the zip ``out_zip`` (replaced when it exists); see the module's doc.

    Raises:
        ArchiveError: ``workdir`` is no folder, or ``out_zip`` cannot be a file (a folder, below a file).
        WorkdirError: ``workdir`` has no valid run record, or a run holds its lock.
    """
    layout, record = _checked_run(workdir)
    out = _checked_output(out_zip)
    summary = ArchiveSummary(out)
    with workdir_lock(layout.root, "archive"):
        members, summary.skipped_links = archive_members(layout.root, leave_out=out)
        try:
            with atomic_output(out) as temporary, zipfile.ZipFile(temporary, "w") as archive:
                if CRATE_FILE not in members:
                    summary.files[CRATE_FILE], size = _add_text(archive, CRATE_FILE, _crate_text(layout, record))
                    summary.bytes += size
                for relative in sorted(members, key=lambda name: (name != CRATE_FILE, name)):  # the crate first
                    summary.files[relative], size = _add_file(archive, layout.root / relative, relative)
                    summary.bytes += size
                manifest = {"files": dict(sorted(summary.files.items()))}
                _add_text(archive, ARCHIVE_MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
        except MLToolkitError:
            raise
        except OSError as error:
            reason = error.strerror or str(error)
            raise ArchiveError(
                f"archive {os.fspath(out_zip)!r}: cannot write ({reason}); pick a writable path"
            ) from None
    return summary
