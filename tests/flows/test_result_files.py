"""Which published files a spec run shows in the UI, and as what (no Prefect needed)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from flows import result_files
from flows.result_files import artifact_key, image_data_uri, published_result_files, table_rows
from tests.constants import PNG_SIGNATURE


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("scores.json", '{"a": 0.5, "b": 1}', [{"name": "a", "value": 0.5}, {"name": "b", "value": 1}]),
        ("scores.yml", "a: {score: 0.5, n: 3}\n", [{"name": "a", "score": 0.5, "n": 3}]),
        ("list.json", "[1, 2.5]", [{"index": 0, "value": 1}, {"index": 1, "value": 2.5}]),
        ("rows.yaml", "- {x: 1, y: 2}\n- {x: 3, y: 4}\n", [{"x": 1, "y": 2}, {"x": 3, "y": 4}]),
        ("columns.json", '{"x": [1, 2], "label": ["a", "b"]}', [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}]),
    ],
)
def test_small_files_of_numbers_become_rows(tmp_path, name, text, expected):
    assert table_rows(_write(tmp_path / name, text)) == expected


@pytest.mark.parametrize(
    "name, text",
    [
        ("words.json", '{"a": "x", "b": "y"}'),  # no number: not a result table
        ("flags.json", '{"a": true}'),  # booleans are not numbers
        ("nested.json", '{"a": {"b": {"c": 1}}}'),  # deeper than a table
        ("empty.json", "{}"),
        ("broken.json", "{"),
        ("broken.yml", "a: [1,"),
        ("text.yml", "just a sentence"),
        ("ragged.json", '{"x": [1, 2], "y": [1]}'),
    ],
)
def test_other_files_are_not_tables(tmp_path, name, text):
    assert table_rows(_write(tmp_path / name, text)) is None


def test_big_tables_and_big_files_are_skipped(tmp_path):
    many_rows = _write(tmp_path / "many.json", json.dumps(list(range(result_files.MAX_TABLE_ROWS + 1))))
    wide = _write(tmp_path / "wide.json", json.dumps([{f"c{i}": i for i in range(result_files.MAX_TABLE_COLUMNS + 1)}]))
    huge = _write(tmp_path / "huge.json", json.dumps({"a": 1, "pad": "x" * result_files.MAX_TABLE_BYTES}))
    assert [table_rows(path) for path in (many_rows, wide, huge)] == [None, None, None]


def test_published_values_name_files_directly_or_by_glob_in_order_and_bounded(tmp_path):
    png = _write(tmp_path / "a" / "plot.png", "")
    scores = _write(tmp_path / "b" / "scores.json", "{}")
    for index in range(3):
        _write(tmp_path / "c" / f"part{index}.yml", "")
    _write(tmp_path / "c" / "model.pkl", "")
    published = [
        {"figure": str(png), "relative": "plot.png", "missing": str(tmp_path / "gone.svg")},
        {"nested": [[str(scores)]], "models": str(tmp_path / "c" / "*.pkl"), "n": 3},
        {"parts": str(tmp_path / "c" / "*")},
    ]
    parts = [tmp_path / "c" / f"part{index}.yml" for index in range(3)]
    assert published_result_files(published) == [png, scores, *parts]
    assert published_result_files(published, limit=2) == [png, scores]


def test_images_are_embedded_pngs_downscaled(tmp_path):
    from PIL import Image

    wide = tmp_path / "wide.png"
    Image.new("RGB", (2000, 100), (1, 2, 3)).save(wide)
    uri = image_data_uri(wide)
    assert uri is not None and uri.startswith("data:image/png;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.width == result_files.PREVIEW_WIDTH


def _count_previews(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each preview made (they are made by ``preview_png_base64``)."""
    from mltoolkit.analysis import plotting

    made: list[str] = []
    real = plotting.preview_png_base64

    def counted(path: str, width: int) -> str:
        made.append(path)
        return real(path, width)

    monkeypatch.setattr(plotting, "preview_png_base64", counted)
    return made


def test_a_pngs_preview_is_kept_and_made_again_only_when_the_png_changed(tmp_path, monkeypatch):
    from PIL import Image

    made = _count_previews(monkeypatch)
    figure, kept = tmp_path / "figure.png", tmp_path / "records" / "preview.json"
    Image.new("RGB", (2000, 100), (1, 2, 3)).save(figure)
    first = image_data_uri(figure, kept)
    assert json.loads(kept.read_text())["width"] == result_files.PREVIEW_WIDTH
    assert image_data_uri(figure, kept) == first and len(made) == 1  # the same file: the kept preview

    Image.new("RGB", (2000, 100), (9, 9, 9)).save(figure)
    changed = image_data_uri(figure, kept)
    assert changed != first and len(made) == 2
    assert image_data_uri(figure) == changed and len(made) == 3  # nowhere to keep it: made each time


@pytest.mark.parametrize(
    "damage",
    [
        lambda kept: kept.write_text("{not json"),
        lambda kept: kept.write_text('{"sha256": "0", "width": 900, "png_base64": "AAAA"}'),
        lambda kept: kept.write_text("[1, 2]"),
        lambda kept: kept.write_text(json.dumps({**json.loads(kept.read_text()), "png_base64": None})),
    ],
    ids=["unreadable", "of another file", "not a record", "without its preview"],
)
def test_a_damaged_kept_preview_is_made_again(tmp_path, monkeypatch, damage):
    from PIL import Image

    figure, kept = tmp_path / "figure.png", tmp_path / "preview.json"
    Image.new("RGB", (2000, 100), (1, 2, 3)).save(figure)
    expected = image_data_uri(figure, kept)
    damage(kept)
    made = _count_previews(monkeypatch)
    assert image_data_uri(figure, kept) == expected and len(made) == 1
    assert image_data_uri(figure, kept) == expected and len(made) == 1  # kept again


def test_a_preview_that_cannot_be_kept_is_still_shown(tmp_path):
    from PIL import Image

    figure = tmp_path / "figure.png"
    Image.new("RGB", (2000, 100), (1, 2, 3)).save(figure)
    (tmp_path / "records").write_text("a file where the folder would be")
    uri = image_data_uri(figure, tmp_path / "records" / "preview.json")
    assert uri is not None and uri.startswith("data:image/png;base64,")


def test_svgs_are_embedded_as_they_are_unless_too_big(tmp_path):
    svg = _write(tmp_path / "d.svg", '<svg xmlns="http://www.w3.org/2000/svg"/>')
    uri = image_data_uri(svg)
    assert uri is not None and base64.b64decode(uri.split(",", 1)[1]) == svg.read_bytes()
    big = _write(tmp_path / "big.svg", "<svg>" + " " * result_files.MAX_SVG_BYTES + "</svg>")
    assert image_data_uri(big) is None


@pytest.mark.parametrize(
    "relative, expected",
    [
        ("merge_and_visualize/ml_results.png", "spec-image-merge-and-visualize-ml-results-png"),
        ("Map_0/Inner Dir/Ü.JSON", "spec-image-map-0-inner-dir-json"),
        ("___", "spec-image"),
    ],
)
def test_artifact_keys_are_valid_prefect_keys(relative, expected):
    assert artifact_key("spec-image", relative) == expected
