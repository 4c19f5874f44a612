"""Human steps without Prefect: what a person is asked, what their answer publishes, and the plain runner."""

from __future__ import annotations

import json

import pytest

from mltoolkit.errors import HumanStepError
from mltoolkit.yadage import StepOptions, load_step_ref, outputs_read, run_step, run_workflow, validate_step
from mltoolkit.yadage.packtivity.manual import OTHER_VALUES, human_request, publish_answer, write_answer, write_request
from mltoolkit.yadage.readers import ReadOutputs
from tests.constants import SPECS
from tests.mltoolkit.yadage.conftest import case_inputs, load_case

STEPS = SPECS / "human_steps" / "steps.yml"


def _step(name: str):
    return validate_step(load_step_ref(f"{STEPS}#/{name}"))


def _reads(*keys: str, whole: bool = False) -> ReadOutputs:
    found = ReadOutputs(whole=whole)
    for key in keys:
        found.add(key, "count")
    return found


def test_a_manual_publisher_asks_for_what_later_stages_read(tmp_path):
    request = human_request(
        _step("choose_window"),
        {"histogram": "/h.txt"},
        tmp_path,
        name="cw",
        stage="choose_window",
        reads=_reads("low", "high"),
    )
    assert [(item.key, item.required) for item in request.fields] == [("high", True), ("low", True)]
    assert [part for part, _ in request.instructions] == ["environment", "process", "publisher"]
    text = request.markdown()
    assert "Open the histogram file" in text and "Any text viewer" in text and "histogram: /h.txt" in text
    assert "`high`, `low`" in request.ask_line()
    assert publish_answer(_step("choose_window"), request, {"low": 120, "high": 130}) == {"low": 120, "high": 130}


@pytest.mark.parametrize(
    ("answer", "found"),
    [({"low": 1}, "lacks 'high'"), ({"low": 1, "high": 2, OTHER_VALUES: [1]}, "expected a mapping")],
)
def test_an_answer_without_a_needed_value_is_one_line(tmp_path, answer, found):
    reads = _reads("low", "high", whole=True)
    request = human_request(_step("choose_window"), {}, tmp_path, name="cw", stage="choose_window", reads=reads)
    with pytest.raises(HumanStepError, match=found) as caught:
        publish_answer(_step("choose_window"), request, answer)
    assert "\n" not in str(caught.value) and "stage 'choose_window' step cw" in str(caught.value)


def test_whole_publication_reads_add_optional_other_values(tmp_path):
    request = human_request(_step("choose_window"), {}, tmp_path, name="cw", stage="s", reads=_reads("low", whole=True))
    assert [(item.key, item.required) for item in request.fields] == [("low", True), (OTHER_VALUES, False)]
    published = publish_answer(_step("choose_window"), request, {"low": 3, OTHER_VALUES: {"note": "ok", "low": 9}})
    assert published == {"low": 3, "note": "ok"}  # the named value wins


def test_a_manual_process_with_an_ordinary_publisher_publishes_what_the_person_left(tmp_path):
    request = human_request(_step("sign_off"), {"counted": "/c.txt"}, tmp_path, name="so", stage="sign_off")
    assert request.fields == () and not request.publishes_answer
    assert publish_answer(_step("sign_off"), request, {}) == {"summary": []}  # nothing left yet
    (tmp_path / "summary.txt").write_text("done\n")
    assert publish_answer(_step("sign_off"), request, {}) == {"summary": [str(tmp_path / "summary.txt")]}


def test_a_manual_environment_shows_the_command_to_run(tmp_path):
    step = validate_step(
        {
            "process": {"process_type": "string-interpolated-cmd", "cmd": "analyse {infile} > {outfile}"},
            "environment": {"environment_type": "manual-instructions-env", "instructions": "Log in to the cluster."},
            "publisher": {"publisher_type": "interpolated-pub", "publish": {"out": "{outfile}"}},
        }
    )
    assert step.human and not step.publish_only
    request = human_request(step, {"infile": "a b.txt", "outfile": "/o.txt"}, tmp_path, name="s", stage="s")
    assert request.command == "analyse 'a b.txt' > /o.txt"
    assert "analyse 'a b.txt' > /o.txt" in request.text()


def test_request_and_answer_are_kept_in_the_step_folder(tmp_path):
    request = human_request(_step("choose_window"), {}, tmp_path, name="cw", stage="s", reads=_reads("low"))
    assert "Give the window's edges" in write_request(request).read_text()
    kept = write_answer(request, {"low": 4})
    assert kept.parent.name == "_packtivity" and json.loads(kept.read_text()) == {"low": 4}


def test_running_a_human_step_as_a_process_is_refused(tmp_path):
    with pytest.raises(HumanStepError, match="is a human step") as caught:
        run_step(_step("choose_window"), {}, tmp_path, name="cw", stage="choose_window")
    assert "\n" not in str(caught.value)


def test_the_plain_runner_asks_through_a_callback(tmp_path):
    workflow = load_case("human_steps")
    asked: list[list[str]] = []

    def person(planned, request):
        asked.append([item.key for item in request.fields])
        if planned.stage == "sign_off":
            (planned.workdir / "summary.txt").write_text("fine\n")
            return {}
        return {"low": 120, "high": 130}

    run = run_workflow(workflow, case_inputs("human_steps"), tmp_path, options=StepOptions(), ask=person)
    assert run.status == "completed", run.problems()
    assert asked == [["high", "low"], []]
    assert (tmp_path / "count" / "counted.txt").read_text() == "4 in [120, 130] (calibration 1.5)\n"
    assert outputs_read(workflow)["count"].sorted_keys() == ["counted"]


def test_the_plain_runner_fails_a_human_step_nobody_answers(tmp_path):
    run = run_workflow(load_case("human_steps"), case_inputs("human_steps"), tmp_path)
    assert run.status == "failed"
    assert any("is a human step" in problem for problem in run.problems())
