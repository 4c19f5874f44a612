"""The validation report (``mltoolkit validate``) and what it relies on: which outputs later stages read.

Pure: the Docker engine is given (``docker=False``), never asked.
"""

from __future__ import annotations

import pytest

from mltoolkit.yadage import outputs_read, parse_image_map
from mltoolkit.yadage.readers import init_outputs_read, stage_names
from mltoolkit.yadage.validate import step_summary, validation_report
from tests.mltoolkit.yadage.conftest import case_inputs, load_case


def _report(case: str, *, init: bool = True, **options):
    options.setdefault("image_map", {})
    options.setdefault("provided", {})
    options.setdefault("docker", False)
    return validation_report(load_case(case), source=case, init=case_inputs(case) if init else None, **options)


def test_what_later_stages_read_from_a_human_step():
    reads = outputs_read(load_case("human_steps"))
    assert reads["choose_window"].sorted_keys() == ["high", "low"]
    assert reads["choose_window"].keys["low"] == {"count"} and not reads["choose_window"].whole
    assert reads["sign_off"].sorted_keys() == [] and not reads["sign_off"].whole  # nothing reads it
    assert init_outputs_read(load_case("human_steps")).sorted_keys() == ["masses"]


@pytest.mark.parametrize(
    ("selection", "names"), [("map[*].fit", {"map", "fit"}), ("map.[*].fit", {"map", "fit"}), ("fit", {"fit"})]
)
def test_stage_names_of_a_selection(selection, names):
    assert stage_names(selection) == names


def test_a_spec_that_runs_here_lists_stages_steps_and_people():
    report = _report("human_steps")
    assert report.ok and report.problems == []
    stages = {stage.name: stage for stage in report.stages}
    assert list(stages) == ["histogram", "calibration", "choose_window", "count", "sign_off"]
    assert stages["count"].after == ["choose_window", "calibration"]
    assert stages["choose_window"].runs == ["a person (human step: the run pauses for high, low)"]
    assert stages["sign_off"].runs == ["a person (human step: the run pauses for a confirmation)"]
    assert stages["histogram"].steps == ["interpolated-script-cmd in localproc-env, publishes with interpolated-pub"]
    assert report.lines()[-1] == "ok: the workflow would run here"


def test_nested_stages_carry_their_scope():
    report = _report("nested", init=False)
    scopes = {(stage.scope, stage.name, stage.depth) for stage in report.stages}
    assert {("/", "map", 0), ("/map", "inner", 1), ("/map/inner", "leaf", 2), ("/single/inner", "leaf", 2)} <= scopes
    assert any(line.strip().startswith("leaf in /map/inner [singlestep-stage]") for line in report.lines())
    # without inputs, what the workflow reads from init is a warning, not a problem
    assert report.ok and any("inputs not checked" in warning for warning in report.warnings)


def test_images_and_resources_nothing_provides_are_problems():
    report = _report("stub_wiring")
    assert not report.ok
    assert len(report.problems) == 3  # CVMFS, and each of the two images once
    assert any("needs resource 'CVMFS'" in problem and "--provide CVMFS=" in problem for problem in report.problems)
    fitter = [problem for problem in report.problems if "mltoolkit-test/fitter:latest" in problem]
    assert (
        len(fitter) == 1
        and "(stages fit, combine)" in fitter[0]
        and "--image-map mltoolkit-test/fitter=local" in fitter[0]
    )


def test_an_image_map_and_provided_resources_make_it_run_here():
    image_map = parse_image_map(["mltoolkit-test/selection=local", "mltoolkit-test/fitter=local"])
    report = _report("stub_wiring", image_map=image_map, provided={"CVMFS": "/cvmfs"})
    assert report.ok, report.problems
    select = report.stages[0]
    assert select.runs == ["image mltoolkit-test/selection:2.1 -> image map: local"]
    assert select.needs == ["CVMFS (provided by --provide CVMFS=/cvmfs)"]


def test_docker_makes_images_available():
    report = _report("stub_wiring", docker=True, provided={"CVMFS": ""})
    assert report.ok, report.problems


def test_an_init_value_the_inputs_lack_is_a_problem():
    report = validation_report(
        load_case("human_steps"), source="x", image_map={}, provided={}, docker=False, init={"other": 1}
    )
    assert report.problems == [
        "inputs: the workflow reads init value 'masses' (stages count, histogram), which the inputs do not give; "
        "add it to INPUTS or pass -p masses=VALUE"
    ]


def test_step_summary_of_a_publish_only_step():
    relay = next(stage for stage in load_case("publish_only").stages if stage.name == "relay")
    assert step_summary(relay.scheduler.step) == "string-interpolated-cmd in none, publishes with frompar-pub"
