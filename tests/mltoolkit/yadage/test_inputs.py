"""Phase 6: init values from the INPUTS file and -p overrides."""

from __future__ import annotations

import pytest

from mltoolkit.errors import CommandLineError, InputsError, LimitExceededError
from mltoolkit.yadage import init_dir, read_inputs
from tests.constants import ALIAS_BOMB


def test_inputs_file_then_overrides_parsed_as_yaml(specs, tmp_path):
    values = read_inputs(specs / "seed_parallel" / "inputs.yml", ["classifiers=[linear_svm]", "n=3", "flag=true"])
    assert values == {
        "dataset": "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1",
        "classifiers": ["linear_svm"],
        "n": 3,
        "flag": True,
    }
    assert read_inputs(None, ["dataset=data/moon.txt"], overrides={"x": 1}) == {"dataset": "data/moon.txt", "x": 1}
    assert init_dir(tmp_path) == tmp_path / "init"


def test_empty_file_is_no_inputs(tmp_path):
    (tmp_path / "inputs.yml").write_text("")
    assert read_inputs(tmp_path / "inputs.yml") == {}


def test_bad_inputs(tmp_path):
    (tmp_path / "list.yml").write_text("- a\n")
    with pytest.raises(InputsError, match=r"list\.yml: found list, expected a mapping of input names"):
        read_inputs(tmp_path / "list.yml")
    with pytest.raises(InputsError, match=r"missing\.yml: file does not exist"):
        read_inputs(tmp_path / "missing.yml")
    with pytest.raises(CommandLineError, match=r"expected key=value"):
        read_inputs(None, ["novalue"])


def test_inputs_larger_than_a_flow_run_may_take_are_refused_at_load(tmp_path):
    big = tmp_path / "inputs.yml"
    big.write_text("items:\n" + "".join(f"- {'x' * 100}\n" for _ in range(6000)))
    with pytest.raises(LimitExceededError) as caught:
        read_inputs(big)
    message = str(caught.value)
    assert message.startswith(f"inputs file {big}: size of the inputs as JSON is 618,011 bytes, over the limit")
    assert "MLTOOLKIT_MAX_INPUTS_BYTES=" in message and len(message) < 500
    with pytest.raises(LimitExceededError, match=r"^inputs with -p values: size of the inputs"):
        read_inputs(None, [f"big={'y' * 600_000}"])


def test_an_alias_bomb_in_an_inputs_file_is_refused(tmp_path):
    path = tmp_path / "inputs.yml"
    path.write_text(ALIAS_BOMB)
    with pytest.raises(
        LimitExceededError, match=r"inputs file .*inputs.yml: node count \(aliases and \$refs expanded\)"
    ):
        read_inputs(path)
