"""Atomic writes, sha256 sidecars and hash-checked unpickling."""

from __future__ import annotations

import pytest

from mltoolkit.errors import ArtifactError, IntegrityError
from mltoolkit.workdir.artifacts import (
    LINEAGE_ENV,
    atomic_output,
    atomic_write_bytes,
    lineage_environment,
    lineage_sha256,
    load_pickle,
    read_sidecar,
    save_pickle,
    sha256_bytes,
    sidecar_path,
)


def test_save_and_load_roundtrip_with_sidecar(tmp_path):
    path = tmp_path / "a" / "value.pkl"
    digest = save_pickle({"x": [1, 2, 3]}, path)
    assert read_sidecar(path) == digest == sha256_bytes(path.read_bytes())
    assert sidecar_path(path).read_text().strip() == f"{digest}  value.pkl"
    assert load_pickle(path) == {"x": [1, 2, 3]}
    assert load_pickle(path, expected_sha256=digest) == {"x": [1, 2, 3]}


def test_tampered_pickle_is_detected_before_unpickling(tmp_path):
    path = tmp_path / "value.pkl"
    save_pickle([1, 2, 3], path)
    path.write_bytes(path.read_bytes().replace(b"\x03", b"\x04"))
    with pytest.raises(IntegrityError) as info:
        load_pickle(path)
    assert str(path) in str(info.value) and "re-run the step" in str(info.value)


def test_truncated_pickle_is_detected(tmp_path):
    path = tmp_path / "value.pkl"
    digest = save_pickle(list(range(1000)), path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(IntegrityError):
        load_pickle(path)
    # even without any recorded hash, a truncated file is reported, not a raw error
    sidecar_path(path).unlink()
    with pytest.raises(IntegrityError, match="truncated or corrupt"):
        load_pickle(path)
    assert digest


def test_unknown_origin_is_refused_when_a_hash_is_required(tmp_path):
    import pickle

    path = tmp_path / "foreign.pkl"
    path.write_bytes(pickle.dumps("hello"))
    with pytest.raises(ArtifactError, match="no known sha256"):
        load_pickle(path, require_hash=True)
    assert load_pickle(path) == "hello"


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_pickle(tmp_path / "nope.pkl")


def test_atomic_write_leaves_old_content_on_failure(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError), atomic_output(path) as temporary:
        temporary.write_bytes(b"half-writ")
        raise RuntimeError("crash in the middle")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


# --- the run's lineage: the sha256 each upstream file had when its step wrote it -----------


@pytest.fixture
def lineage_run(tmp_path):
    root = tmp_path / "run"
    for folder in ("data_prep", "merge", "init"):
        (root / folder).mkdir(parents=True)
    return root


def test_lineage_gives_the_recorded_hash_of_an_upstream_file(lineage_run):
    environ = lineage_environment(lineage_run, {"data_prep/prepped.pkl": "a" * 64}, lineage_run / "merge", "unused")
    assert lineage_sha256(lineage_run / "data_prep" / "prepped.pkl", environ) == "a" * 64
    assert lineage_sha256(lineage_run / "merge" / "own.pkl", environ) is None  # the step's own output
    assert lineage_sha256(lineage_run / "init" / "given.pkl", environ) is None  # named by the user
    assert lineage_sha256(lineage_run.parent / "elsewhere.pkl", environ) is None
    assert lineage_sha256(lineage_run / "data_prep" / "prepped.pkl", {}) is None  # a step run on its own


def test_a_file_in_the_work_directory_no_upstream_step_wrote_is_refused(lineage_run):
    environ = lineage_environment(lineage_run, {"data_prep/prepped.pkl": "a" * 64}, lineage_run / "merge", "unused")
    with pytest.raises(ArtifactError, match=r"stray\.pkl: no step this one depends on wrote this file in this run"):
        lineage_sha256(lineage_run / "data_prep" / "stray.pkl", environ)


def test_a_long_lineage_travels_in_a_file(lineage_run):
    files = {f"data_prep/part_{index:05d}.pkl": f"{index:064x}" for index in range(2000)}
    spill = lineage_run / "merge" / "lineage.json"
    environ = lineage_environment(lineage_run, files, lineage_run / "merge", spill)
    assert environ == {LINEAGE_ENV: str(spill)}
    assert lineage_sha256(lineage_run / "data_prep" / "part_01999.pkl", environ) == f"{1999:064x}"
