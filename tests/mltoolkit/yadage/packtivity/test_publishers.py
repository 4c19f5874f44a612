"""Publishers: every kind, and errors that name the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage import load_step_ref, validate_step
from mltoolkit.yadage.packtivity import run_step


def _publisher_step(specs: Path, name: str):
    return validate_step(load_step_ref(f"steps.yml#/{name}", toplevel=specs / "publishers"))


def test_every_publisher(specs, tmp_path):
    def run(step_name: str, **parameters):
        workdir = tmp_path / step_name
        step = _publisher_step(specs, step_name)
        return run_step(step, parameters, workdir, name=step_name).published, workdir.resolve()

    published, w = run("interpolated_plain", name="a")
    assert published == {"pattern": f"{w}/*.txt", "named": "a.txt"}
    published, w = run("interpolated_glob", name="a")
    assert published == {"files": [f"{w}/a.txt", f"{w}/b.txt"], "one": [f"{w}/a.txt"], "none": "nothing-*.dat"}
    published, w = run("interpolated_relative", name="a")
    assert published == {"file": f"{w}/a.txt", "absolute": "/elsewhere/a.txt"}
    published, _ = run("frompar", name="n")
    assert published == {"out": "n", "nested": {"inner": "n"}}
    published, w = run("fromglob")
    assert published == {"texts": [f"{w}/a.txt", f"{w}/b.txt"]}
    published, _ = run("fromyaml", name="y")
    assert published == {"name": "y", "numbers": [1, 2]}
    published, _ = run("constant")
    assert published == {"answer": 42, "list": ["x", "y"]}
    published, w = run("fromparjq", name="a")
    assert published == {"exact": f"{w}/a.txt", "globbed": [f"{w}/a.txt", f"{w}/b.txt"], "kept": "a"}


def test_publisher_errors_name_the_step(make_step, specs, tmp_path):
    with pytest.raises(SpecError, match=r"step frompar: frompar-pub outputmap names parameter 'name'"):
        run_step(_publisher_step(specs, "frompar"), {}, tmp_path / "frompar", name="frompar")
    step = make_step("true", publisher={"publisher_type": "fromyaml-pub", "yamlfile": "missing.yml"})
    with pytest.raises(SpecError, match=r"step y: fromyaml-pub file .*missing\.yml: file does not exist"):
        run_step(step, {}, tmp_path / "y", name="y")
    step = make_step("true", publisher={"publisher_type": "interpolated-pub", "publish": {"a": "{nope}"}})
    with pytest.raises(SpecError, match=r"interpolated-pub value '\{nope\}' uses \{nope\}, which is not a parameter"):
        run_step(step, {}, tmp_path / "i", name="i")


@pytest.mark.parametrize(
    "publisher",
    [
        {"publisher_type": "interpolated-pub", "relative_paths": True, "glob": True, "publish": {"x": "../*"}},
        {"publisher_type": "interpolated-pub", "relative_paths": True, "publish": {"x": "a/../../b"}},
        {"publisher_type": "fromglob-pub", "globexpression": "../../*", "outputkey": "x"},
        {"publisher_type": "fromyaml-pub", "yamlfile": "../other.yml"},
        {"publisher_type": "fromparjq-pub", "script": '{x: "../*"}', "relative_paths": True, "glob": True},
    ],
    ids=["interpolated-glob", "interpolated", "fromglob", "fromyaml", "fromparjq"],
)
def test_relative_published_paths_stay_in_the_step_folder(make_step, tmp_path, publisher):
    (tmp_path / "other.yml").write_text("secret: 1\n")
    step = make_step("true", publisher=publisher)
    with pytest.raises(SpecError, match=r"step p: .* leads out of the step's folder .*; a relative path must stay"):
        run_step(step, {}, tmp_path / "p", name="p")


def test_absolute_published_paths_are_kept_as_written(make_step, tmp_path):
    publisher = {"publisher_type": "interpolated-pub", "relative_paths": True, "publish": {"x": "/elsewhere/a"}}
    assert run_step(make_step("true", publisher=publisher), {}, tmp_path / "p").published == {"x": "/elsewhere/a"}
