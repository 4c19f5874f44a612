"""Stub steps and stub runs without Prefect: declared outputs made empty, the wiring checked end to end."""

from __future__ import annotations

import pytest
import yaml

from mltoolkit.errors import SpecError
from mltoolkit.yadage import StepOptions, run_workflow, stub_plan, validate_step
from mltoolkit.yadage.packtivity.stub import STUB_ENVIRONMENT, run_stub_step, stub_match
from mltoolkit.yadage.readers import ReadOutputs
from tests.mltoolkit.yadage.conftest import case_inputs, load_case


@pytest.mark.parametrize(
    ("pattern", "match"),
    [("/w/out/*.json", "/w/out/stub.json"), ("/w/f?.txt", "/w/fs.txt"), ("/w/[ab]_**.pkl", "/w/a_stub.pkl")],
)
def test_a_glob_gets_a_file_that_matches_it(pattern, match):
    assert stub_match(pattern) == match


def test_a_class_no_candidate_matches_is_one_line():
    with pytest.raises(SpecError, match="matches none of the characters"):
        stub_match("/w/[!a-z0-9_]x")


def _step(publisher):
    return validate_step(
        {
            "process": {"process_type": "string-interpolated-cmd", "cmd": "exit 3"},  # never runs
            "environment": {"environment_type": "docker-encapsulated", "image": "nowhere/image"},
            "publisher": publisher,
        }
    )


def test_declared_files_are_made_empty_and_published(tmp_path):
    step = _step({"publisher_type": "interpolated-pub", "glob": True, "publish": {"a": "{outdir}/*.root", "b": "{f}"}})
    result = run_stub_step(step, {"outdir": str(tmp_path / "out"), "f": str(tmp_path / "f.txt")}, tmp_path, name="s")
    assert result.published == {"a": [str(tmp_path / "out" / "stub.root")], "b": [str(tmp_path / "f.txt")]}
    assert (tmp_path / "out" / "stub.root").read_bytes() == b"" and (tmp_path / "f.txt").read_bytes() == b""
    assert result.environment == STUB_ENVIRONMENT and result.where == {"kind": STUB_ENVIRONMENT}
    assert sorted(result.log_path.read_text().split()) == [str(tmp_path / "f.txt"), str(tmp_path / "out" / "stub.root")]


def test_a_path_outside_the_step_folder_is_left_alone(tmp_path):
    upstream = tmp_path / "upstream.txt"
    step = _step({"publisher_type": "frompar-pub", "outputmap": {"passed": "infile"}})
    result = run_stub_step(step, {"infile": str(upstream)}, tmp_path / "step", name="s")
    assert result.published == {"passed": str(upstream)} and not upstream.exists()


def test_a_fromyaml_file_holds_what_later_stages_read(tmp_path):
    reads = ReadOutputs()
    reads.add("chunks", "fit")
    step = _step({"publisher_type": "fromyaml-pub", "yamlfile": "list.yml"})
    result = run_stub_step(step, {}, tmp_path, name="s", reads=reads)
    assert result.published == {"chunks": [str(tmp_path / "stub_chunks")]}
    assert yaml.safe_load((tmp_path / "list.yml").read_text()) == result.published


def test_a_stub_run_of_a_workflow_whose_images_exist_nowhere(tmp_path):
    workflow = load_case("stub_wiring")
    run = run_workflow(workflow, case_inputs("stub_wiring"), tmp_path, options=StepOptions(stub=stub_plan(workflow)))
    assert run.status == "completed", run.problems()
    published = {record.name: record.published for record in run.records()}
    assert published["fit_0"] == {"results": [str(tmp_path / "fit_0" / "out" / "stub.json")]}
    assert published["combine"] == {"summary": str(tmp_path / "combine" / "summary.json")}


def test_a_stub_run_answers_human_steps_itself(tmp_path):
    workflow = load_case("human_steps")
    run = run_workflow(workflow, case_inputs("human_steps"), tmp_path, options=StepOptions(stub=stub_plan(workflow)))
    assert run.status == "completed", run.problems()
    window = next(record for record in run.records() if record.name == "choose_window")
    assert set(window.published) == {"low", "high"}
    assert not (tmp_path / "count" / "counted.txt").read_text()  # the count never ran: an empty stand-in
