"""inputs.yml and -p overrides of the native workflow."""

from __future__ import annotations

import pytest

from mltoolkit.analysis.inputs import load_inputs, parse_inputs
from mltoolkit.errors import CommandLineError, InputsError, LimitExceededError
from mltoolkit.yamlfiles import parse_assignment


def test_root_inputs_file(repo_root):
    inputs = load_inputs(repo_root / "inputs.yml")
    assert inputs.dataset == str(repo_root / "data" / "moon.txt")
    assert [spec.name for spec in inputs.classifiers] == [
        "nearest_neighbours",
        "linear_svm",
        "rbf_svm",
        "gaussian_process",
        "decision_tree",
    ]


def test_relative_paths_resolve_against_the_inputs_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "inputs.yml"
    path.write_text("dataset: ../moon.txt\nclassifiers: [rbf_svm]\n")
    assert load_inputs(path).dataset == str(tmp_path / "moon.txt")


def test_overrides_win_and_parse_as_yaml(tmp_path, monkeypatch):
    path = tmp_path / "inputs.yml"
    path.write_text("dataset: a.txt\nclassifiers: [rbf_svm]\n")
    monkeypatch.chdir(tmp_path)
    key, value = parse_assignment("classifiers=[linear_svm, 'Decision Tree']")
    inputs = load_inputs(path, {key: value, "dataset": "b.txt"})
    assert [spec.name for spec in inputs.classifiers] == ["linear_svm", "decision_tree"]
    assert inputs.dataset == str(tmp_path / "b.txt")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("dataset: x\n", "missing key 'classifiers'"),
        ("classifiers: [rbf_svm]\n", "missing key 'dataset'"),
        ("- a\n- b\n", "found list, expected a mapping"),
        ("dataset: [1, 2]\nclassifiers: [rbf_svm]\n", "key 'dataset': found list"),
        ("dataset: x\nclassifiers: 12\n", "expected a non-empty list"),
        ("dataset: x\nclassifiers: []\n", "expected a non-empty list"),
        ("dataset: x\nclassifiers: [rbf_svn]\n", "Did you mean 'rbf_svm'"),
        ("dataset: x\nclassifiers: [rbf_svm, RBF SVM]\n", "listed more than once"),
        ("dataset: x\nclassifiers: [rbf_svm]\ncolour: red\n", "unknown key(s) 'colour'"),
        ("dataset: x\ndataset_sha256: abc\nclassifiers: [rbf_svm]\n", "expected 64 hex digits"),
        ("dataset: x\nclassifiers: [rbf_svm\n", "line 3"),
    ],
)
def test_bad_inputs_files(tmp_path, text, fragment):
    path = tmp_path / "inputs.yml"
    path.write_text(text)
    with pytest.raises(InputsError) as info:
        load_inputs(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_inputs_file(tmp_path):
    with pytest.raises(InputsError, match="does not exist"):
        load_inputs(tmp_path / "nope.yml")


@pytest.mark.parametrize("text", ["novalue", "=x", "1abc=2", "a b=1", "xs=[1,"])
def test_bad_assignments(text):
    with pytest.raises(CommandLineError) as info:
        parse_assignment(text)
    assert repr(text) in str(info.value)


def test_parse_inputs_accepts_a_mapping_directly():
    inputs = parse_inputs({"dataset": "/abs/moon.txt", "classifiers": ["Linear SVM"]})
    assert inputs.dataset == "/abs/moon.txt"
    assert inputs.classifiers[0].name == "linear_svm"


def test_native_inputs_larger_than_a_flow_run_may_take_are_refused(tmp_path):
    path = tmp_path / "inputs.yml"
    path.write_text(f"dataset: {'d' * 600_000}\nclassifiers: [rbf_svm]\n")
    with pytest.raises(LimitExceededError, match=rf"^inputs file {path}: size of the inputs as JSON is 600,\d+ bytes"):
        load_inputs(path)
