"""Fingerprints of a step's parameters: files by content, and only what may safely be read."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from mltoolkit.errors import HashingTimeoutError
from mltoolkit.preservation import Fingerprinter
from mltoolkit.workdir.artifacts import FileHasher


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A work directory with two step folders, bookkeeping in one of them."""
    root = tmp_path / "run"
    for index in range(2):
        (root / f"step_{index}").mkdir(parents=True)
        (root / f"step_{index}" / "out.pkl").write_bytes(b"result %d" % index)
    (root / "step_0" / "_packtivity").mkdir()
    (root / "step_0" / "_packtivity" / "step_0.run.log").write_text("log")
    return root


def key(root: Path, value: str) -> object:
    return Fingerprinter(root, own_dir=root / "merge").of(value)


def test_a_glob_or_folder_counts_by_the_files_it_matches_or_holds(run, tmp_path):
    glob_key, folder_key = key(run, f"{run}/step_*/*.pkl"), key(run, f"{run}/step_0")
    assert glob_key == {
        "glob": "step_*/*.pkl",
        "files": {"step_0/out.pkl": sha(b"result 0"), "step_1/out.pkl": sha(b"result 1")},
    }

    (run / "step_0" / "_packtivity" / "step_0.run.log").write_text("another log")  # bookkeeping only
    (run / "step_0" / "__pycache__").mkdir()
    (run / "step_0" / "__pycache__" / "tool.cpython-311.pyc").write_bytes(b"bytecode")  # written on import
    assert key(run, f"{run}/step_0") == folder_key

    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(run, copy)  # relocation: same content, other path
    assert key(copy, f"{copy}/step_*/*.pkl") == glob_key and key(copy, f"{copy}/step_0") == folder_key

    (run / "step_0" / "out.pkl").write_bytes(b"changed")
    assert key(run, f"{run}/step_*/*.pkl") != glob_key and key(run, f"{run}/step_0") != folder_key
    changed = key(run, f"{run}/step_*/*.pkl")
    (run / "step_1" / "extra.pkl").write_bytes(b"new match")
    assert key(run, f"{run}/step_*/*.pkl") != changed


def test_the_steps_own_outputs_are_named_not_read(run):
    (run / "merge").mkdir()
    (run / "merge" / "figure.png").write_bytes(b"an older figure")
    assert key(run, f"{run}/merge/figure.png") == {"workdir_path": "merge/figure.png"}


def test_paths_outside_the_work_directory_are_text_unless_named(run, tmp_path):
    dataset = tmp_path / "moon.txt"
    dataset.write_bytes(b"x y label\n")
    assert Fingerprinter(run).of(str(dataset)) == str(dataset)
    named = Fingerprinter(run, named=[str(dataset)])
    assert named.of(str(dataset)) == {"file_sha256": sha(b"x y label\n")}
    assert named.files == {str(dataset): sha(b"x y label\n")}


def test_a_link_leading_out_of_the_work_directory_is_never_followed(run, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not the run's business")
    (run / "step_1" / "leak").symlink_to(secret)
    (run / "outside").symlink_to(tmp_path, target_is_directory=True)
    fingerprinter = Fingerprinter(run)

    assert fingerprinter.of(f"{run}/step_1/leak") == {"link_leading_out": "step_1/leak"}
    assert fingerprinter.of(f"{run}/outside/secret.txt") == {"link_leading_out": "outside/secret.txt"}
    assert fingerprinter.of(f"{run}/step_1")["files"]["step_1/leak"] == "link leading out"
    assert fingerprinter.of(f"{run}/step_*/*")["files"]["step_1/leak"] == "link leading out"
    assert sha(secret.read_bytes()) not in repr(fingerprinter.files)


@pytest.mark.timeout(60)
def test_fifos_devices_and_link_loops_are_named_by_kind_never_opened(run):
    os.mkfifo(run / "step_1" / "fifo")
    (run / "step_1" / "zero").symlink_to("/dev/zero")  # leads out of the work directory, too
    (run / "step_1" / "loop").symlink_to(run / "step_1" / "loop")
    os.mkfifo(run / "pipe")
    fingerprinter = Fingerprinter(run)

    folder = fingerprinter.of(f"{run}/step_1")["files"]
    assert folder["step_1/fifo"] == "not a regular file"
    assert folder["step_1/zero"] == "link leading out"
    assert folder["step_1/loop"] == "unreadable"
    assert fingerprinter.of(f"{run}/pipe") == {"special_file": "pipe"}


@pytest.mark.timeout(120)
def test_hashing_a_folder_stops_at_the_deadline_naming_the_file(run):
    with open(run / "step_1" / "huge.bin", "wb") as handle:
        handle.truncate(64 << 30)
    fingerprinter = Fingerprinter(run, hasher=FileHasher.within(0.5))
    with pytest.raises(HashingTimeoutError, match=r"huge\.bin did not finish within the step timeout \(0\.5 s\)"):
        fingerprinter.of(f"{run}/step_1")


def test_the_toolkits_own_files_are_named_by_their_place_in_it(run, tmp_path):
    scripts = tmp_path / "site-packages" / "mltoolkit" / "analysis" / "fun_with_ml"
    scripts.mkdir(parents=True)
    fingerprinter = Fingerprinter(run, named=[str(scripts)], code_roots={"mltoolkit": scripts.parents[1]})
    assert fingerprinter.of(str(scripts)) == {"toolkit_path": "mltoolkit/analysis/fun_with_ml"}
    assert fingerprinter.of(f"{scripts.parents[1]}/") == {"toolkit_path": "mltoolkit"}
    # a folder whose name only starts like the package's is not in it (and, not named, is just text)
    assert fingerprinter.of(f"{scripts.parents[1]}-old/x.py") == f"{scripts.parents[1]}-old/x.py"
    assert Fingerprinter(run, own_dir=run / "step_1").of(f"{run}/step_1/out.pkl") == {"workdir_path": "step_1/out.pkl"}


@dataclass(frozen=True)
class FileRef:
    path: str
    sha256: str


@dataclass(frozen=True)
class Output:
    name: str
    score: float
    result: FileRef


def test_parameters_are_fingerprinted_each_with_the_files_behind_it(run):
    values = {
        "classifications": [Output("knn", 0.97, FileRef("step_0/out.pkl", "ab" * 32))],
        "data": f"{run}/step_1/out.pkl",
        "label": "plain text",
    }
    parameters, files = Fingerprinter(run).parameters(values)
    assert parameters["label"] == "plain text"
    assert parameters["classifications"] == [
        {"type": "Output", "name": "knn", "score": 0.97, "result": {"file_sha256": "ab" * 32}}
    ]
    assert files == {"classifications": {"step_0/out.pkl": "ab" * 32}, "data": {"step_1/out.pkl": sha(b"result 1")}}


def test_plain_json_values_and_their_general_forms_fingerprint_alike(tmp_path):
    """The exact-type shortcut for plain JSON values gives what the general rules give."""
    import collections

    fingerprinter = Fingerprinter(tmp_path)
    plain = {"b": [1, 2.5, True, None, "text", "/not/read"], "a": {"x": "y"}, 3: "three"}
    general = collections.OrderedDict([("b", (1, 2.5, True, None, "text", Path("/not/read"))), ("a", {"x": "y"})])
    general[3] = "three"
    expected = {"3": "three", "a": {"x": "y"}, "b": [1, 2.5, True, None, "text", "/not/read"]}
    assert fingerprinter.of(plain) == fingerprinter.of(general) == expected
