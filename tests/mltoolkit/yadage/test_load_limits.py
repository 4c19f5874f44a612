"""Phase 1 under limits: alias bombs in spec files and $ref fan-outs fail at once, naming the file."""

from __future__ import annotations

import pytest

from mltoolkit.errors import LimitExceededError
from mltoolkit.yadage.load import load_step_ref, load_workflow
from tests.constants import ALIAS_BOMB, DEEP_YAML

STEP = """\
step:
  process: {process_type: string-interpolated-cmd, cmd: 'true'}
  environment: {environment_type: localproc-env}
  publisher: {publisher_type: constant-pub, publish: {}}
"""


def _fan_out(levels: int, width: int) -> str:
    """A workflow file whose definitions refer ``width`` times to the level below, ``levels`` deep."""
    lines = ["stages: []", "definitions:", f"  d0: [{', '.join(['x'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"  d{level}: [{', '.join([f'{{$ref: {chr(39)}#/definitions/d{level - 1}{chr(39)}}}'] * width)}]")
    lines.append(f"top: {{$ref: '#/definitions/d{levels - 1}'}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("file", ["workflow.yml", "steps.yml"])
def test_an_alias_bomb_in_a_spec_file_is_refused_naming_it(tmp_path, file):
    (tmp_path / "workflow.yml").write_text("stages: []\nstep: {$ref: 'steps.yml#/step'}\n")
    (tmp_path / "steps.yml").write_text(STEP)
    (tmp_path / file).write_text((tmp_path / file).read_text() + ALIAS_BOMB)
    with pytest.raises(LimitExceededError) as caught:
        load_workflow(tmp_path / "workflow.yml")
    assert str(caught.value).startswith(f"{tmp_path / file}: node count (aliases and $refs expanded) is over")


def test_deep_nesting_in_a_step_file_is_one_line(tmp_path):
    (tmp_path / "steps.yml").write_text(STEP + f"deep: {DEEP_YAML}\n")
    with pytest.raises(LimitExceededError, match=r"steps.yml: nesting depth is over the limit of 100 levels"):
        load_step_ref("steps.yml#/step", tmp_path)


def test_a_ref_fan_out_is_refused_naming_the_file_and_the_limit(tmp_path):
    (tmp_path / "workflow.yml").write_text(_fan_out(levels=8, width=10))  # 10**8 nodes once expanded
    with pytest.raises(LimitExceededError) as caught:
        load_workflow(tmp_path / "workflow.yml")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'workflow.yml'}: expanding $ref: node count")
    assert "each $ref counts as a copy" in message and "MLTOOLKIT_MAX_YAML_NODES=" in message


def test_a_small_fan_out_still_expands(tmp_path, monkeypatch):
    (tmp_path / "workflow.yml").write_text(_fan_out(levels=3, width=3))
    loaded = load_workflow(tmp_path / "workflow.yml")
    assert loaded.data["top"] == [[["x"] * 3] * 3] * 3
    monkeypatch.setenv("MLTOOLKIT_MAX_YAML_NODES", "30")
    with pytest.raises(LimitExceededError):
        load_workflow(tmp_path / "workflow.yml")
