"""Comparing two runs' outputs file by file, each by its kind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mltoolkit.preservation.comparison import OutputSet, Verdict, compare_file, compare_outputs
from mltoolkit.preservation.numeric import Tolerance, compare_values
from tests.mltoolkit.preservation.runs import sha256


def _outputs(root, files, tampered=()):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return OutputSet(root, {name: sha256(data) for name, data in files.items()}, frozenset(tampered))


DEFAULT = Tolerance()


def _compare(tmp_path, name, old, new, tolerance=DEFAULT, **options):
    archived = _outputs(tmp_path / "a", {name: old})
    now = _outputs(tmp_path / "b", {name: new})
    return compare_file(name, archived, now, tolerance, **options)


def _json(value):
    return json.dumps(value, indent=2).encode()


def test_equal_bytes_are_identical(tmp_path):
    row = _compare(tmp_path, "x.bin", b"\x00\x01", b"\x00\x01")
    assert row.verdict is Verdict.IDENTICAL and row.verdict.reproduced


@pytest.mark.parametrize(
    ("old", "new", "verdict", "fragment"),
    [
        (
            {"nearest_neighbours": 0.975, "rbf_svm": 0.975},
            {"nearest_neighbours": 0.9, "rbf_svm": 0.975},
            "differs",
            "nearest_neighbours 0.975 -> 0.90 (1 of 2 numbers beyond tolerance)",
        ),
        ({"a": [1.0, {"b": 2.0}]}, {"a": [1.0, {"b": 2.0 + 1e-12}]}, "within tolerance", "a.1.b"),
        ({"a": 1}, {"a": 1, "b": 2}, "differs", "b: absent -> 2"),
        ({"a": [1, 2]}, {"a": [1]}, "differs", "a: 2 items -> 1"),
        ({"a": "x"}, {"a": "y"}, "differs", "a: 'x' -> 'y'"),
    ],
    ids=["score-changed", "nested-within", "key-added", "list-shorter", "text-changed"],
)
def test_json_numbers_within_tolerance(tmp_path, old, new, verdict, fragment):
    row = _compare(tmp_path, "scores.json", _json(old), _json(new))
    assert str(row.verdict) == verdict
    assert fragment in row.detail


def test_json_formatting_only_is_within_tolerance(tmp_path):
    row = _compare(tmp_path, "scores.json", b'{"a": 1.0}', b'{ "a" : 1.0 }\n')
    assert row.verdict is Verdict.WITHIN_TOLERANCE and "formatting only" in row.detail


def test_yaml_is_compared_by_values_with_a_wider_tolerance(tmp_path):
    row = _compare(tmp_path, "r.yml", b"score: 0.95\n", b"score: 0.951\n", Tolerance(rtol=0.01))
    assert row.verdict is Verdict.WITHIN_TOLERANCE
    assert "score 0.95 -> 0.951" in row.detail


def test_worst_pair_is_the_largest_difference():
    result = compare_values({"a": 1.0, "b": 1.0}, {"a": 1.1, "b": 2.0}, Tolerance())
    assert result.worst().where == "b"


def test_text_gives_a_unified_diff_excerpt(tmp_path):
    row = _compare(tmp_path, "log.txt", b"alpha\nbeta\ngamma\n", b"alpha\nBETA\ngamma\n")
    assert row.verdict is Verdict.DIFFERS
    assert "-beta" in row.detail and "+BETA" in row.detail


def test_other_binary_differs(tmp_path):
    row = _compare(tmp_path, "blob.bin", b"\x00\xff", b"\x00\xfe")
    assert (row.verdict, row.detail) == (Verdict.DIFFERS, "bytes differ")


def _png(pixels):
    from io import BytesIO

    buffer = BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_figures_by_share_of_differing_pixels_with_a_diff_image(tmp_path):
    old = np.full((100, 300, 3), 255)
    new = old.copy()
    new[10:20, 200:210] = 0  # 100 of 30,000 pixels
    diffs = tmp_path / "diffs"
    strict = _compare(tmp_path / "1", "fig.png", _png(old), _png(new), Tolerance(image=0.001), diffs=diffs)
    assert strict.verdict is Verdict.DIFFERS
    assert "0.33% of pixels differ, columns 200-209 of 300" in strict.detail
    assert Image.open(strict.diff_image).size == (300, 100)
    lenient = _compare(tmp_path / "2", "fig.png", _png(old), _png(new), Tolerance(image=0.01))
    assert lenient.verdict is Verdict.WITHIN_TOLERANCE and lenient.diff_image is None


def test_figures_of_another_size_differ(tmp_path):
    row = _compare(tmp_path, "fig.png", _png(np.zeros((30, 150, 3))), _png(np.zeros((90, 270, 3))))
    assert row.verdict is Verdict.DIFFERS
    assert row.detail.startswith("size 150x30 -> 270x90")


def test_missing_on_either_side_and_tampered(tmp_path):
    archived = _outputs(tmp_path / "a", {"kept.json": b"1", "gone.json": b"2", "bad.json": b"3"}, ["bad.json"])
    now = _outputs(tmp_path / "b", {"kept.json": b"1", "bad.json": b"3", "new.json": b"4"})
    rows = {row.output: row for row in compare_outputs(archived, now, Tolerance())}
    assert rows["kept.json"].verdict is Verdict.IDENTICAL
    assert (rows["gone.json"].verdict, rows["gone.json"].detail) == (Verdict.MISSING, "not in the new run")
    assert (rows["new.json"].verdict, rows["new.json"].detail) == (Verdict.MISSING, "not in the archived run")
    assert rows["bad.json"].verdict is Verdict.TAMPERED  # never trusted, even when the bytes match
    assert list(rows) == ["kept.json", "gone.json", "bad.json", "new.json"]
