"""Dataset resolution (paths, file://, http(s) with sha256, the known-URL registry) and parsing."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from mltoolkit.analysis.data import (
    KNOWN_DATASETS,
    MOON_SHA256,
    bundled_dataset_path,
    known_dataset_file,
    load_table,
    resolve_dataset,
)
from mltoolkit.errors import (
    ChecksumMismatchError,
    DatasetDownloadError,
    DatasetError,
    DatasetNotFoundError,
)

SEED_URL = "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1"


def test_bundled_moon_matches_the_root_copy_and_make_moons(repo_root):
    bundled = bundled_dataset_path("moon.txt")
    assert bundled.read_bytes() == (repo_root / "data" / "moon.txt").read_bytes()
    X, y = load_table(bundled)
    from sklearn.datasets import make_moons

    expected_X, expected_y = make_moons(noise=0.3, random_state=0)
    assert X.shape == (100, 2)
    assert abs(X - expected_X).max() < 1e-6
    assert (y == expected_y).all()
    lines = bundled.read_text().splitlines()
    assert lines[0] == "X Y Value"
    assert len(lines[1]) == 36  # three 12-character columns


def test_seed_dropbox_url_resolves_offline_to_the_bundled_copy():
    assert SEED_URL in KNOWN_DATASETS
    path = resolve_dataset(SEED_URL)
    assert path == bundled_dataset_path("moon.txt")


@pytest.mark.parametrize(
    ("text", "bundled"),
    [(SEED_URL, True), (f"  {SEED_URL} ", True), ("https://example.org/moon.txt", False), ("moon.txt", False)],
)
def test_known_dataset_file_names_the_bundled_copy_of_known_urls_only(text, bundled):
    assert known_dataset_file(text) == (bundled_dataset_path("moon.txt") if bundled else None)


def test_paths_and_file_urls(tmp_path, repo_root):
    assert resolve_dataset("data/moon.txt", base_dir=repo_root) == repo_root / "data" / "moon.txt"
    file_url = (repo_root / "data" / "moon.txt").as_uri()
    assert resolve_dataset(file_url) == repo_root / "data" / "moon.txt"
    assert resolve_dataset(repo_root / "data" / "moon.txt", sha256=MOON_SHA256)


def test_sha256_mismatch_on_a_local_file(repo_root):
    with pytest.raises(ChecksumMismatchError) as info:
        resolve_dataset(repo_root / "data" / "moon.txt", sha256="0" * 64)
    assert MOON_SHA256 in str(info.value)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_server(tmp_path, repo_root):
    (tmp_path / "moon.txt").write_bytes((repo_root / "data" / "moon.txt").read_bytes())
    handler = lambda *a, **k: _Handler(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_download_with_matching_sha256(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_CACHE", str(tmp_path / "cache"))
    path = resolve_dataset(f"{http_server}/moon.txt", sha256=MOON_SHA256)
    assert path.read_bytes() == bundled_dataset_path("moon.txt").read_bytes()
    assert path.is_relative_to(tmp_path / "cache")


def test_http_download_with_mismatching_sha256(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ChecksumMismatchError) as info:
        resolve_dataset(f"{http_server}/moon.txt", sha256="1" * 64)
    assert "does not match sha256" in str(info.value)


def test_unreachable_url_suggests_a_local_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetDownloadError) as info:
        resolve_dataset("http://127.0.0.1:9/moon.txt")
    assert "-p dataset=PATH" in str(info.value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.txt"
    path.write_text(text)
    return path


GOOD_ROWS = "".join(f"{i * 0.1:.6f} {i * 0.2:.6f} {i % 2}\n" for i in range(20))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "file is empty"),
        ("X Y Value\n1.0 2.0\n" + GOOD_ROWS, "line 2: found 2 columns, expected 3"),
        ("X Y Value\n1.0 2.0 0 7\n" + GOOD_ROWS, "found 4 columns"),
        ("X Y Value\n1.0 abc 0\n" + GOOD_ROWS, "line 2: non-numeric value"),
        ("X Y Value\n1.0 2.0 0.5\n" + GOOD_ROWS, "label '0.5' is not an integer"),
        ("X Y Value\n" + "1.0 2.0 1\n" * 3, "3 data rows, expected at least 10"),
        ("X Y Value\n" + "1.0 2.0 1\n" * 30, "only one class"),
        ("X Y Value\n1.0 nan 1\n" + GOOD_ROWS, "non-finite value"),
    ],
)
def test_malformed_tables(tmp_path, text, fragment):
    with pytest.raises(DatasetError) as info:
        load_table(_write(tmp_path, text))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        resolve_dataset(tmp_path / "nope.txt")
    with pytest.raises(DatasetError, match="is a directory"):
        resolve_dataset(tmp_path)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(DatasetError, match="not a UTF-8 text table"):
        load_table(binary)
    with pytest.raises(DatasetError, match="unsupported URL scheme 'ftp'"):
        resolve_dataset("ftp://example.org/moon.txt")


def test_a_corrupt_bundled_copy_is_refused(monkeypatch, tmp_path):
    from mltoolkit.analysis import data

    corrupt = tmp_path / "moon.txt"
    corrupt.write_text("X Y Value\n")
    monkeypatch.setattr(data, "bundled_dataset_path", lambda name: corrupt)
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        known_dataset_file(SEED_URL)
