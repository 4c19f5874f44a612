"""Phase 6: init values from the INPUTS file and -p overrides."""

from __future__ import annotations

import pytest

from mltoolkit.errors import CommandLineError, InputsError
from mltoolkit.yadage import init_dir, read_inputs


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
