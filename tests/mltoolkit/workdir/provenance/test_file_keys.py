"""Which files a record value names: paths, URLs, globs over recorded outputs, init files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltoolkit.workdir.provenance.file_keys import FileKeys


@pytest.fixture()
def keys(tmp_path: Path) -> FileKeys:
    """Keys for a work directory with an init file, an existing step file and two recorded outputs."""
    root = tmp_path / "work"
    (root / "init").mkdir(parents=True)
    (root / "init" / "data.txt").write_text("d")
    (root / "a").mkdir()
    (root / "a" / "kept.pkl").write_bytes(b"k")
    (tmp_path / "elsewhere.txt").write_text("e")
    file_keys = FileKeys(root.resolve())
    file_keys.register_outputs(["a/out.pkl", "a/.hidden.pkl", "a/out.pkl.sha256", "b/r.txt"])
    return file_keys


@pytest.mark.parametrize(
    "value, expected",
    [
        ("a/kept.pkl", ["a/kept.pkl"]),  # relative to the work directory
        ("data.txt", ["init/data.txt"]),  # relative init values resolve against init/ first
        ("https://example.org/moon.txt?dl=1", ["https://example.org/moon.txt?dl=1"]),
        ("{root}/a/out.pkl", ["a/out.pkl"]),  # recorded, although it no longer exists
        ("{root}/a/*.pkl", ["a/out.pkl"]),  # a glob, expanded over the recorded outputs, no hidden files
        ("{root}/a/.*.pkl", ["a/.hidden.pkl"]),
        ("{root}/a/out.pkl*", ["a/out.pkl", "a/out.pkl.sha256"]),
        (["{root}/a/out.pkl", "{root}/b/r.txt"], ["a/out.pkl", "b/r.txt"]),
    ],
)
def test_values_that_name_files(keys, value, expected):
    def filled(text: str) -> str:
        return text.replace("{root}", str(keys.root))

    assert keys.of_value([filled(v) for v in value] if isinstance(value, list) else filled(value)) == expected


@pytest.mark.parametrize(
    "value",
    [
        "rbf_svm",
        "",
        "{root}/a/missing.pkl",
        "{root}/*/out.pkl",
        "{root}/a/*.png",
        "a\nb",
        "x" * 5000,
        ["a/kept.pkl", 3],
    ],
)
def test_values_that_name_no_file(keys, value):
    text = value.replace("{root}", str(keys.root)) if isinstance(value, str) else value

    assert keys.of_value(text) is None


def test_a_list_with_one_value_that_is_no_file_names_no_files(keys):
    assert keys.of_value([f"{keys.root}/a/out.pkl", "rbf_svm"]) is None


def test_files_outside_the_work_directory_are_file_uris(keys):
    outside = keys.root.parent / "elsewhere.txt"

    assert keys.of_value(str(outside)) == [outside.as_uri()]
    assert keys.of_value(outside.as_uri()) == [outside.as_uri()]
    assert keys.local_path(outside.as_uri()) == str(outside)
    assert keys.local_path("a/out.pkl") == str(keys.root / "a" / "out.pkl")
    assert keys.local_path("https://example.org/x") is None


@pytest.mark.parametrize(
    "recorded, expected",
    [("a/out.pkl", "a/out.pkl"), ("./a//out.pkl", "a/out.pkl"), ("../sibling.txt", "sibling")],
)
def test_output_keys_are_normalised(keys, recorded, expected):
    key = keys.output_key(recorded)

    if expected == "sibling":  # a path out of the work directory keeps an absolute id
        assert key == (keys.root.parent / "sibling.txt").as_uri()
    else:
        assert key == expected


def test_workflow_locations(keys):
    spec = keys.root.parent / "spec" / "workflow.yml"

    assert keys.location_key(str(spec)) == (spec.as_uri(), str(spec))
    assert keys.location_key(spec.as_uri()) == (spec.as_uri(), str(spec))
    assert keys.location_key("https://example.org/workflow.yml") == ("https://example.org/workflow.yml", None)
    assert keys.location_key(str(keys.root / "flow.py")) == ("flow.py", str(keys.root / "flow.py"))
