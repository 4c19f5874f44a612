"""A run's work directory as one zip (``write_archive``), without Prefect."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from mltoolkit.errors import ArchiveError, WorkdirError
from mltoolkit.preservation.archive import archive_members, write_archive
from mltoolkit.workdir.layout import ARCHIVE_MANIFEST_FILE, CRATE_FILE, WorkdirLayout
from mltoolkit.workdir.record import RunRecord, write_run_record

#: The files of a small finished run, and bookkeeping an archive leaves out.
RUN_FILES = {
    "scores.json": b'{"a": 0.9}\n',
    "classification_0/a.pkl": b"\x80\x04pickled",
    "classification_0/a.pkl.summary.json": b'{"score": 0.9}\n',
    "classification_0/_packtivity/classification_0.run.log": b"log\n",
    "_mltoolkit/submitted/submitted.json": b'{"kind": "native"}\n',
    "_mltoolkit/submitted/data/moon.txt": b"x y label\n",
    CRATE_FILE: b'{"@graph": []}\n',
}
BOOKKEEPING = {
    "_mltoolkit/cache/abc": b"{}",
    "_mltoolkit/cache-keys/steps/x.json": b"{}",
    "_mltoolkit/previews/0123abcd.json": b"{}",
    "_mltoolkit/lock": b"",
    ARCHIVE_MANIFEST_FILE: b'{"files": {}}',
}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    workdir = tmp_path / "run ü"
    for relative, data in {**RUN_FILES, **BOOKKEEPING}.items():
        (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
        (workdir / relative).write_bytes(data)
    write_run_record(workdir, RunRecord(status="completed", flow="ml-workflow"))
    return workdir


def _contents(out: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(out) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_zip_holds_the_run_without_bookkeeping_and_the_sha256_of_each_file(run_dir, tmp_path):
    summary = write_archive(run_dir, tmp_path / "out.zip")
    contents = _contents(tmp_path / "out.zip")
    run_json = WorkdirLayout(run_dir).run_record.read_bytes()
    assert set(contents) == {*RUN_FILES, "_mltoolkit/run.json", ARCHIVE_MANIFEST_FILE}
    for relative, data in RUN_FILES.items():
        assert contents[relative] == data
    assert contents["_mltoolkit/run.json"] == run_json
    manifest = json.loads(contents[ARCHIVE_MANIFEST_FILE])
    assert manifest == {
        "files": {
            name: hashlib.sha256(data).hexdigest()
            for name, data in sorted(contents.items())
            if name != ARCHIVE_MANIFEST_FILE
        }
    }
    assert summary.files == manifest["files"] and summary.path == tmp_path / "out.zip"
    assert summary.bytes == sum(len(data) for name, data in contents.items() if name != ARCHIVE_MANIFEST_FILE)


def test_a_run_without_its_crate_gets_one_built_from_its_record(run_dir, tmp_path):
    (run_dir / CRATE_FILE).unlink()
    write_archive(run_dir, tmp_path / "out.zip")
    crate = json.loads(_contents(tmp_path / "out.zip")[CRATE_FILE])
    assert any(entity.get("@id") == "_mltoolkit/run.json" for entity in crate["@graph"])


def test_a_zip_written_inside_the_run_does_not_contain_itself(run_dir):
    write_archive(run_dir, run_dir / "run.zip")
    write_archive(run_dir, run_dir / "run.zip")  # again, over the first one
    names = set(_contents(run_dir / "run.zip"))
    assert "run.zip" not in names and not any(name.endswith(".tmp") for name in names)


def test_links_inside_the_run_are_stored_as_files_and_links_outside_left_out(run_dir, tmp_path):
    (tmp_path / "secret.txt").write_text("not the run's\n")
    os.symlink(run_dir / "scores.json", run_dir / "scores-link.json")
    os.symlink(tmp_path / "secret.txt", run_dir / "outside.txt")
    os.symlink(tmp_path, run_dir / "folder-link")
    summary = write_archive(run_dir, tmp_path / "out.zip")
    contents = _contents(tmp_path / "out.zip")
    assert contents["scores-link.json"] == RUN_FILES["scores.json"]
    assert "outside.txt" not in contents and not any(name.startswith("folder-link") for name in contents)
    assert summary.skipped_links == ["folder-link", "outside.txt"]


def test_members_are_sorted_relative_posix_paths(run_dir):
    members, skipped = archive_members(run_dir)
    assert members == sorted(members) and skipped == []
    assert "classification_0/a.pkl" in members and "_mltoolkit/lock" not in members


@pytest.mark.parametrize(
    ("case", "error", "fragment"),
    [
        ("missing work directory", ArchiveError, "found nothing, expected the folder of a run"),
        ("work directory is a file", ArchiveError, "found a file, expected the folder of a run"),
        ("no run record", WorkdirError, "no run record"),
        ("run record not JSON", WorkdirError, "not valid JSON"),
        ("output is a folder", ArchiveError, "is a folder, expected a file name"),
        ("output below a file", ArchiveError, "is a file, not a folder"),
        ("output is the work directory", ArchiveError, "is a folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(run_dir, tmp_path, case, error, fragment):
    workdir, out = run_dir, tmp_path / "out.zip"
    if case == "missing work directory":
        workdir = tmp_path / "nowhere"
    elif case == "work directory is a file":
        workdir = run_dir / "scores.json"
    elif case == "no run record":
        WorkdirLayout(run_dir).run_record.unlink()
    elif case == "run record not JSON":
        WorkdirLayout(run_dir).run_record.write_text("{")
    elif case == "output is a folder":
        out.mkdir()
    elif case == "output below a file":
        out = run_dir / "scores.json" / "out.zip"
    else:
        out = run_dir
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(error, match=fragment) as raised:
        write_archive(workdir, out)
    assert "\n" not in str(raised.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == before
