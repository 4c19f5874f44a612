"""Phase 3: stage selection (JSONPath), output references and jq, alone and through the planner."""

from __future__ import annotations

import pytest

from mltoolkit.errors import SpecError
from mltoolkit.yadage import validate_workflow
from mltoolkit.yadage.planner import WorkflowRun
from mltoolkit.yadage.selectors import (
    combine_outputs,
    compile_jq,
    is_plain_name,
    parse_jsonpath,
    root_stage,
    run_jq,
    select_output,
)

from .conftest import case_inputs, load_case, noop_stage, plan_all


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("data_prep", True),
        ("delphes-pileup", True),
        ("_x1", True),
        ("map.[*].stage1", False),
        ("map[*].stage1", False),
        ("first[0]", False),
        ("$..leaf", False),
        ("1st", False),
    ],
)
def test_plain_names_and_jsonpath_expressions(text, plain):
    assert is_plain_name(text) is plain


@pytest.mark.parametrize(
    ("expression", "root"),
    [
        ("data_prep", "data_prep"),
        ("map.[*].stage1", "map"),
        ("map[*].stage1", "map"),
        ("map.[*].inner.[*].leaf", "map"),
        ("first[0]", "first"),
        ("$.map[*].stage1", "map"),
        ("$..leaf", None),
        ("*.stage1", None),
        ("not valid ((", None),
    ],
)
def test_the_stage_a_selection_starts_from(expression, root):
    assert root_stage(expression) == root


# the shape of a scope's view: stage -> list of steps ({_nodeid}) or instances ({_offset, stage: [...]})
VIEW = {
    "_offset": "",
    "init": [{"_nodeid": "/init"}],
    "map": [
        {"_offset": "/map/0", "init": [{"_nodeid": "/map/0/init"}], "stage1": [{"_nodeid": "/map/0/stage1"}]},
        {"_offset": "/map/1", "init": [{"_nodeid": "/map/1/init"}], "stage1": [{"_nodeid": "/map/1/stage1"}]},
    ],
    "first": [{"_nodeid": "/first_0"}, {"_nodeid": "/first_1"}],
}


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("map.[*].stage1", [[{"_nodeid": "/map/0/stage1"}], [{"_nodeid": "/map/1/stage1"}]]),
        ("map[*].stage1", [[{"_nodeid": "/map/0/stage1"}], [{"_nodeid": "/map/1/stage1"}]]),
        ("map[1].stage1", [[{"_nodeid": "/map/1/stage1"}]]),
        ("first[0]", [{"_nodeid": "/first_0"}]),
        ("first[-1:]", [{"_nodeid": "/first_1"}]),
        ("nothing.[*]", []),
    ],
)
def test_jsonpath_stage_selection_over_a_scope_view(expression, selected):
    assert [match.value for match in parse_jsonpath(expression).find(VIEW)] == selected


def test_jsonpath_parsing_is_cached_and_bad_expressions_say_so():
    assert parse_jsonpath("map[*].stage1") is parse_jsonpath("map[*].stage1")
    with pytest.raises(ValueError, match=r"'a b' is not a valid JSONPath expression"):
        parse_jsonpath("a b")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (None, {"file": "a.txt", "pair": ["x", "y"], "deep": {"k": 3}}),
        ("$", {"file": "a.txt", "pair": ["x", "y"], "deep": {"k": 3}}),
        ("", {"file": "a.txt", "pair": ["x", "y"], "deep": {"k": 3}}),
        ("file", "a.txt"),
        ("pair[1]", "y"),
        ("deep.k", 3),
    ],
)
def test_select_output_takes_one_value(output, expected):
    result = {"file": "a.txt", "pair": ["x", "y"], "deep": {"k": 3}}
    assert select_output(result, output, what="stage 'b' parameter 'x'") == expected


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing", r"^here: output 'missing' matches nothing in the published values \(published: file, pair\)"),
        ("pair[*]", r"^here: output 'pair\[\*\]' matches 2 values, expected exactly one"),
        ("a b", r"^here: 'a b' is not a valid JSONPath expression .*; fix 'output'$"),
    ],
)
def test_select_output_errors_name_where_and_what(output, message):
    with pytest.raises(SpecError, match=message):
        select_output({"file": "a.txt", "pair": ["x", "y"]}, output, what="here")


@pytest.mark.parametrize(
    ("values", "flatten", "unwrap", "expected"),
    [
        ([["a", "a"], ["b"]], False, False, [["a", "a"], ["b"]]),
        ([["a", "a"], ["b"]], True, False, ["a", "a", "b"]),
        ([["a", "a"], "c"], True, False, ["a", "a", "c"]),
        (["x"], False, True, "x"),
        ([["x"]], True, True, "x"),
        (["x", "y"], False, True, ["x", "y"]),
        ([], True, True, []),
    ],
)
def test_combine_outputs_as_yadage(values, flatten, unwrap, expected):
    assert combine_outputs(values, flatten=flatten, unwrap=unwrap) == expected


def test_jq_first_output_all_outputs_and_errors():
    assert compile_jq(".a") is compile_jq(".a")
    assert run_jq(".items[] | . * 2", {"items": [1, 2, 3]}) == 2
    assert run_jq(".items[] | . * 2", {"items": [1, 2, 3]}, multiple=True) == [2, 4, 6]
    assert run_jq("empty", {}) is None
    with pytest.raises(ValueError, match=r"jq program '\.a \|\|\|' does not compile"):
        compile_jq(".a |||")
    with pytest.raises(ValueError, match=r"jq program '\.a \+ 1' failed"):
        run_jq(".a + 1", {"a": "text"})


@pytest.mark.parametrize("selection", ["map.[*].stage1", "map[*].stage1"])
def test_both_jsonpath_spellings_read_every_instance_in_order(tmp_path, selection):
    workflow = load_case("nested")
    reduce = workflow.stage("reduce")
    reduce.scheduler.parameters["firsts"].stages = selection
    run = WorkflowRun(workflow, case_inputs("nested"), tmp_path)
    stages = plan_all(run, lambda step: {"value": step.parameters.get("item", "?")})
    [merged] = [planned for planned in stages if planned.stage == "reduce"]
    assert merged.steps[0].parameters["firsts"] == ["a", "b"]


def test_a_step_reference_that_selects_several_steps_fails_the_stage(tmp_path):
    workflow = validate_workflow(
        {
            "stages": [
                noop_stage(
                    "first",
                    ["init"],
                    {"value": [1, 2]},
                    scheduler_type="multistep-stage",
                    scatter={"method": "zip", "parameters": ["value"]},
                ),
                noop_stage("second", ["first"], {"value": {"step": "first", "output": "value"}}),
            ]
        }
    )
    run = WorkflowRun(workflow, {}, tmp_path)
    plan_all(run)
    [message] = run.errors
    assert "stage 'second' parameter 'value': step: 'first' selects 2 steps, expected exactly one" in message
