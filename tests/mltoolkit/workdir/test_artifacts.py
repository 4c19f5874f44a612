"""Atomic writes, sha256 sidecars and hash-checked unpickling."""

from __future__ import annotations

import pytest

from mltoolkit.errors import ArtifactError, IntegrityError
from mltoolkit.workdir.artifacts import (
    atomic_output,
    atomic_write_bytes,
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
