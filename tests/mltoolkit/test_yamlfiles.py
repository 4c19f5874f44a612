"""YAML with limits: alias bombs, deep nesting and huge documents fail at once, with one line."""

from __future__ import annotations

import threading

import pytest

from mltoolkit.errors import InputsError, LimitExceededError
from mltoolkit.yamlfiles import parse_assignment, parse_yaml_text, read_yaml
from tests.constants import ALIAS_BOMB, ALIAS_BOMB_FLOW, DEEP_YAML


def _fails_quickly(call, *args):
    """Run ``call(*args)`` in a thread; its exception, or a failure if it is still busy after 60 s."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call(*args)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(60)
    assert outcome, "still expanding after 60 s"
    return outcome[0]


def test_an_alias_bomb_in_a_file_is_refused_naming_the_file_and_the_limit(tmp_path):
    path = tmp_path / "inputs.yml"
    path.write_text(ALIAS_BOMB)
    error = _fails_quickly(read_yaml, path)
    assert isinstance(error, LimitExceededError)
    assert str(error).startswith(f"inputs file {path}: node count (aliases and $refs expanded) is over the limit")
    assert "MLTOOLKIT_MAX_YAML_NODES=" in str(error) and "\n" not in str(error)


def test_an_alias_bomb_in_a_p_value_is_refused():
    error = _fails_quickly(parse_assignment, f"x={ALIAS_BOMB_FLOW}")
    assert isinstance(error, LimitExceededError) and str(error).startswith("-p x: node count")


def test_aliases_within_the_limit_load_and_count_as_copies(monkeypatch):
    text = "a: &a [1, 2, 3]\nb: [*a, *a]\nc: {<<: {k: 1}, d: 2}\n"
    assert parse_yaml_text(text, "t.yml") == {"a": [1, 2, 3], "b": [[1, 2, 3], [1, 2, 3]], "c": {"k": 1, "d": 2}}
    # every key and value counts, and each *a counts as the 4 nodes it names
    monkeypatch.setenv("MLTOOLKIT_MAX_YAML_NODES", "12")
    with pytest.raises(LimitExceededError, match=r"^t\.yml: node count"):
        parse_yaml_text(text, "t.yml")


def test_yaml_nested_600_deep_is_a_one_line_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "workflow.yml"
    path.write_text(f"stages: {DEEP_YAML}\n")
    with pytest.raises(LimitExceededError) as caught:
        read_yaml(path, what="workflow")
    assert str(caught.value).startswith(f"workflow {path}: nesting depth is over the limit of 100 levels")
    assert "MLTOOLKIT_MAX_YAML_DEPTH=" in str(caught.value)


def test_raising_the_depth_limit_past_what_pyyaml_reads_is_still_one_line(monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_MAX_YAML_DEPTH", "100000")
    with pytest.raises(LimitExceededError, match="PyYAML cannot read it this deep"):
        parse_yaml_text("[" * 5000 + "]" * 5000, "deep.yml")


def test_a_document_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_MAX_YAML_BYTES", "1000")
    path = tmp_path / "big.yml"
    path.write_text("x: " + "y" * 2000 + "\n")
    with pytest.raises(
        LimitExceededError, match=r"inputs file .*big.yml: size is 2,004 bytes, over the limit of 1,000"
    ):
        read_yaml(path)


def test_syntax_errors_keep_their_line_and_column():
    with pytest.raises(InputsError, match=r"^t.yml, line 2, column 1: not valid YAML"):
        parse_yaml_text("a: [1,\n", "t.yml")
