"""Human steps through Prefect: the run pauses with a form, a person answers through the API, the run goes on.

The fixture ``tests/specs/human_steps`` has two human steps: ``choose_window``
(manual process, environment and publisher: the person provides ``low`` and
``high``, which ``count`` reads) and ``sign_off`` (a manual process with an
ordinary ``fromglob-pub``: the person writes ``summary.txt``, the publisher finds
it). ``calibration`` needs no person. The flow runs in this process; a thread
plays the person: it waits for the paused run, reads its form and description
as the UI does, and resumes it with ``prefect.flow_runs.resume_flow_run``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.constants import SPECS

CASE = SPECS / "human_steps"


def paused_run(workdir: Path, seen: set[str], timeout: float = 240.0) -> Any:
    """The flow run of ``workdir`` once it is paused by a pause not in ``seen`` (pause keys)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for run in client.read_flow_runs(flow_run_filter=paused):
                key = run.state.state_details.pause_key
                if run.parameters.get("workdir") == str(workdir) and key not in seen:
                    seen.add(key)
                    return run
            time.sleep(0.3)
    raise AssertionError(f"no new pause of the run in {workdir} within {timeout} s")


def form_of(run: Any) -> tuple[dict[str, Any], str]:
    """The paused run's form (JSON schema) and description, as the UI reads them."""
    from prefect.input.actions import read_flow_run_input

    keyset = run.state.state_details.run_input_keyset
    return (
        read_flow_run_input(keyset["schema"], flow_run_id=run.id),
        read_flow_run_input(keyset["description"], flow_run_id=run.id),
    )


class Person(threading.Thread):
    """Answers each pause of a run with the next of ``answers`` (a function of the paused run)."""

    def __init__(self, workdir: Path, answers: list[Callable[[Any], dict[str, Any] | None]]) -> None:
        super().__init__(daemon=True)
        self.workdir, self.answers = workdir, answers
        self.seen: set[str] = set()
        self.forms: list[tuple[dict[str, Any], str]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from prefect.flow_runs import resume_flow_run

        try:
            for answer in self.answers:
                paused = paused_run(self.workdir, self.seen)
                self.forms.append(form_of(paused))
                resume_flow_run(paused.id, run_input=answer(paused))
        except BaseException as error:  # reported by the test
            self.error = error


def run_with_person(workdir: Path, answers: list[Callable[[Any], Any]], **options: Any) -> tuple[Any, Person]:
    from flows.spec_workflow import spec_workflow

    person = Person(workdir, answers)
    person.start()
    state = asyncio.run(
        spec_workflow(
            workflow="workflow.yml",
            workdir=str(workdir),
            inputs_file=str(CASE / "inputs.yml"),
            toplevel=str(CASE),
            return_state=True,
            **options,
        )
    )
    person.join(timeout=60)
    return state, person


def _window(paused: Any) -> dict[str, Any]:
    return {"low": 120, "high": 130}


def _write_summary(workdir: Path) -> Callable[[Any], None]:
    def answer(paused: Any) -> None:
        (workdir / "sign_off" / "summary.txt").write_text("four events in the window\n")
        return None

    return answer


def test_the_run_pauses_with_a_form_and_goes_on_with_the_answer(prefect_api, tmp_path, run_records):
    workdir = tmp_path / "work"
    state, person = run_with_person(workdir, [_window, _write_summary(workdir)])
    assert person.error is None, person.error
    assert state.is_completed(), state
    record = run_records.read(workdir)
    steps = run_records.by_name(record)
    assert {name: step["state"] for name, step in steps.items()} == dict.fromkeys(
        ["histogram", "calibration", "choose_window", "count", "sign_off"], "COMPLETED"
    )
    # the person's values are what the step published, and what 'count' used
    assert steps["choose_window"]["published"] == {"low": 120, "high": 130}
    assert (workdir / "count" / "counted.txt").read_text() == "4 in [120, 130] (calibration 1.5)\n"
    # an ordinary publisher found what the person left in the folder
    assert steps["sign_off"]["published"] == {"summary": [str(workdir / "sign_off" / "summary.txt")]}
    assert "sign_off/summary.txt" in steps["sign_off"]["outputs"]
    human = steps["choose_window"]["human"]
    assert human["asks_for"] == ["high", "low"] and human["answer"] == {"high": 130, "low": 120}
    assert human["instructions"]["publisher"] == "Give the window's edges as numbers, low and high."
    assert human["asked"] <= human["answered"]
    assert steps["sign_off"]["human"]["asks_for"] == [] and steps["sign_off"]["human"]["answer"] == {"done": True}
    assert "human" not in steps["count"]


def test_the_form_and_description_are_what_the_ui_shows(prefect_api, tmp_path):
    workdir = tmp_path / "work"
    _, person = run_with_person(workdir, [_window, _write_summary(workdir)])
    assert person.error is None, person.error
    (window_schema, window_text), (sign_schema, sign_text) = person.forms
    assert window_schema["required"] == ["high", "low"]
    assert set(window_schema["properties"]) == {"high", "low"}
    assert "Open the histogram file and find the peak" in window_text
    assert "Any text viewer will do" in window_text  # the environment's instructions
    assert str(workdir / "histogram" / "histogram.txt") in window_text  # the parameters
    assert sign_schema["properties"]["done"]["default"] is True and not sign_schema.get("required")
    assert "write a one-line summary into summary.txt" in sign_text
    kept = workdir / "choose_window" / "_packtivity"
    assert "Open the histogram file" in (kept / "choose_window.instructions.md").read_text()
    assert '"high": 130' in (kept / "choose_window.answer.json").read_text()


def test_independent_branches_finish_before_the_run_pauses(prefect_api, tmp_path):
    workdir = tmp_path / "work"
    finished_before: list[bool] = []

    def window(paused: Any) -> dict[str, Any]:
        finished_before.append((workdir / "calibration" / "calibration.txt").is_file())
        return _window(paused)

    state, person = run_with_person(workdir, [window, _write_summary(workdir)])
    assert person.error is None and state.is_completed(), (person.error, state)
    assert finished_before == [True]


def test_a_step_nobody_answers_fails_with_one_line(prefect_api, tmp_path, run_records):
    workdir = tmp_path / "work"
    state, _ = run_with_person(workdir, [], human_timeout=2)  # nobody there
    assert state.is_failed(), state
    steps = run_records.by_name(run_records.read(workdir))
    assert {name: step["state"] for name, step in steps.items()} == {
        "histogram": "COMPLETED",
        "calibration": "COMPLETED",
        "choose_window": "FAILED",
    }
    error = steps["choose_window"]["error"]
    assert "\n" not in error and "nobody answered within 2 s (--human-timeout)" in error
    assert steps["choose_window"]["human"]["answered"] is None


@pytest.mark.parametrize("answer", [{}, {"low": 120}, {"low": 1, "high": 2, "extra": 3}])
def test_an_answer_that_does_not_fit_the_form_is_refused(prefect_api, tmp_path, answer):
    from prefect.flow_runs import resume_flow_run

    workdir = tmp_path / "work"
    refused: list[str] = []

    def bad_then_good(paused: Any) -> dict[str, Any]:
        try:
            resume_flow_run(paused.id, run_input=answer)
        except RuntimeError as error:
            refused.append(str(error))
        return _window(paused)

    state, person = run_with_person(workdir, [bad_then_good, _write_summary(workdir)])
    assert person.error is None and state.is_completed(), (person.error, state)
    assert len(refused) == 1 and "Cannot resume this run" in refused[0]
