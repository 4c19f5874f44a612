"""Opening a run to reproduce or compare: work directory, crate folder, zip; safe extraction; verification."""

from __future__ import annotations

import json
import stat
import zipfile

import pytest

from mltoolkit.errors import RunSourceError
from mltoolkit.preservation.sources import extract_zip, open_run
from tests.mltoolkit.preservation.runs import make_run, zip_run

FILES = {"scores.json": b'{"rbf_svm": 0.975}', "merge/figure.png": b"not really a png"}


def test_work_directory_verifies_clean(tmp_path):
    root = make_run(tmp_path / "run", FILES)
    with open_run(root) as run:
        assert run.kind == "workdir"
        assert run.tampered == []
        assert set(run.outputs) == set(FILES)


def test_tampered_output_is_reported(tmp_path):
    root = make_run(tmp_path / "run", FILES)
    (root / "scores.json").write_text('{"rbf_svm": 1.0}')
    (root / "merge" / "figure.png").unlink()
    with open_run(root) as run:
        found = {finding.path: finding.found for finding in run.tampered}
    assert set(found) == {"scores.json", "merge/figure.png"}
    assert found["merge/figure.png"] is None  # missing
    assert run.tampered[0].recorded_in == "_mltoolkit/run.json"


def test_tampered_submitted_file_is_reported(tmp_path):
    submitted = {"kind": "native", "flow": "ml-workflow", "files": {"data/moon.txt": "0" * 64}, "inputs": {}}
    root = make_run(tmp_path / "run", FILES, submitted=submitted)
    (root / "_mltoolkit" / "submitted" / "data").mkdir()
    (root / "_mltoolkit" / "submitted" / "data" / "moon.txt").write_text("x y label\n")
    with open_run(root) as run:
        assert [finding.path for finding in run.tampered] == ["_mltoolkit/submitted/data/moon.txt"]


def test_zip_is_extracted_verified_and_removed_on_close(tmp_path):
    archive = zip_run(make_run(tmp_path / "run", FILES), tmp_path / "run.zip")
    with open_run(archive) as run:
        extracted = run.root
        assert run.kind == "zip" and run.tampered == []
        assert (extracted / "scores.json").read_bytes() == FILES["scores.json"]
    assert not extracted.exists()


def test_zip_tampered_after_archiving_is_reported(tmp_path):
    root = make_run(tmp_path / "run", FILES)
    archive = zip_run(root, tmp_path / "run.zip", extra={"scores.json": b'{"rbf_svm": 0.5}'})
    with open_run(archive) as run:
        assert {finding.recorded_in for finding in run.tampered} == {"_mltoolkit/run.json", "_mltoolkit/archive.json"}


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: tmp, "not a run directory"),
        (lambda tmp: (tmp / "ro-crate-metadata.json").write_text("{}") and tmp, "RO-Crate without mltoolkit's records"),
        (lambda tmp: (tmp / "x.zip").write_bytes(b"PK\x03\x04 broken") and tmp / "x.zip", "not a zip"),
        (lambda tmp: tmp / "nothing-here", "no such file or folder"),
    ],
    ids=["empty-folder", "foreign-crate", "corrupt-zip", "missing"],
)
def test_bad_source_is_one_line(tmp_path, make, fragment):
    source = make(tmp_path)
    with pytest.raises(RunSourceError) as caught:
        open_run(source)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_zip_without_run_record_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(RunSourceError, match=r"holds no _mltoolkit/run\.json"):
        open_run(tmp_path / "other.zip")


def test_damaged_member_is_one_line(tmp_path):
    archive = zip_run(make_run(tmp_path / "run", {"big.txt": b"a" * 10_000}), tmp_path / "run.zip", extra={})
    data = bytearray(archive.read_bytes())
    offset = data.index(b"a" * 100)  # stored, not compressed: corrupt the content, the CRC no longer matches
    data[offset : offset + 10] = b"b" * 10
    archive.write_bytes(bytes(data))
    with pytest.raises(RunSourceError, match="the zip is damaged"):
        open_run(archive)


def _unsafe_zip(path, name, *, link=False):
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd" if link else "payload")
    return path


@pytest.mark.parametrize(
    ("name", "link", "fragment"),
    [("../escape.txt", False, "climbs out"), ("/etc/evil", False, "absolute name"), ("link", True, "symbolic link")],
)
def test_unsafe_zip_members_are_refused(tmp_path, name, link, fragment):
    archive = _unsafe_zip(tmp_path / "evil.zip", name, link=link)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(RunSourceError, match=fragment):
        extract_zip(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()


def test_zip_larger_than_the_bound_is_refused(tmp_path):
    archive = zip_run(make_run(tmp_path / "run", {"big.txt": b"0" * 5000}), tmp_path / "run.zip")
    with pytest.raises(RunSourceError, match="more than the limit"):
        extract_zip(archive, tmp_path / "out", max_bytes=1000)


def test_crate_sha256_is_checked(tmp_path):
    root = make_run(tmp_path / "run", FILES)
    (root / "spec.yml").write_text("stages: []\n")
    crate = {"@graph": [{"@id": "spec.yml", "@type": "File", "sha256": "f" * 64}]}
    (root / "ro-crate-metadata.json").write_text(json.dumps(crate))
    with open_run(root) as run:
        assert run.kind == "crate"
        assert [(finding.path, finding.recorded_in) for finding in run.tampered] == [
            ("spec.yml", "ro-crate-metadata.json")
        ]
