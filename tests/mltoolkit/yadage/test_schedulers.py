"""Schedulers: scatter (zip, cartesian, batchsize, partitionsize), jq parameter sets, cases."""

from __future__ import annotations

import pytest

from mltoolkit.errors import LimitExceededError, SpecError
from mltoolkit.yadage.model import Case, Scatter
from mltoolkit.yadage.schedulers import chunk, jq_parameter_sets, partition, scatter_parameters, select_case

from .conftest import NOOP_STEP as STEP


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (3, [[1, 2, 3], [4, 5, 6], [7]]),
        (7, [[1, 2, 3, 4, 5, 6, 7]]),
        (10, [[1, 2, 3, 4, 5, 6, 7]]),
        (1, [[n] for n in range(1, 8)]),
    ],
)
def test_chunk(size, expected):
    assert chunk(list(range(1, 8)), size) == expected


@pytest.mark.parametrize(
    ("count", "parts", "sizes"),
    [(10, 3, [3, 3, 4]), (7, 2, [3, 4]), (9, 3, [3, 3, 3]), (2, 3, [1, 1]), (0, 3, []), (5, 1, [5])],
)
def test_partition_sizes_follow_yadage(count, parts, sizes):
    values = list(range(count))
    groups = partition(values, parts)
    assert [len(group) for group in groups] == sizes
    assert [value for group in groups for value in group] == values  # order kept, nothing lost


def test_zip_scatter_keeps_the_other_parameters_and_their_order():
    sets = scatter_parameters(
        {"tag": "fixed", "letter": ["a", "b"], "number": [1, 2]},
        Scatter(method="zip", parameters=["letter", "number"]),
    )
    assert sets == [{"tag": "fixed", "letter": "a", "number": 1}, {"tag": "fixed", "letter": "b", "number": 2}]
    assert [list(each) for each in sets] == [["tag", "letter", "number"]] * 2


def test_cartesian_scatter_varies_the_first_parameter_slowest():
    sets = scatter_parameters(
        {"letter": ["a", "b"], "colour": ["red", "blue", "green"]},
        Scatter(method="cartesian", parameters=["letter", "colour"]),
    )
    assert [(each["letter"], each["colour"]) for each in sets] == [
        ("a", "red"),
        ("a", "blue"),
        ("a", "green"),
        ("b", "red"),
        ("b", "blue"),
        ("b", "green"),
    ]


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        ({"batchsize": 2}, [([1, 2], ["p", "q"]), ([3], ["r"])]),
        ({"partitionsize": 2}, [([1], ["p"]), ([2, 3], ["q", "r"])]),
    ],
)
def test_zip_of_batches_and_partitions_gives_each_step_lists(grouping, expected):
    sets = scatter_parameters(
        {"items": [1, 2, 3], "letters": ["p", "q", "r"]},
        Scatter(method="zip", parameters=["items", "letters"]),
        **grouping,
    )
    assert [(each["items"], each["letters"]) for each in sets] == expected


def test_cartesian_of_batches_and_an_empty_list():
    scatter = Scatter(method="cartesian", parameters=["items", "letters"])
    sets = scatter_parameters({"items": [1, 2, 3], "letters": ["p", "q"]}, scatter, batchsize=2)
    assert [(each["items"], each["letters"]) for each in sets] == [([1, 2], ["p", "q"]), ([3], ["p", "q"])]
    assert scatter_parameters({"items": [1, 2], "letters": []}, scatter) == []


def test_scatter_errors_are_one_line_naming_the_stage():
    with pytest.raises(
        SpecError, match=r"^stage 'z': scatter method zip needs lists of equal length, found a: 2, b: 1; "
    ):
        scatter_parameters({"a": [1, 2], "b": [1]}, Scatter(method="zip", parameters=["a", "b"]), where="stage 'z'")
    with pytest.raises(SpecError, match=r"^stage 'z': scatter parameter 'a' is str 'xyz', expected a list"):
        scatter_parameters({"a": "xyz"}, Scatter(method="zip", parameters=["a"]), where="stage 'z'")


def test_jq_parameter_sets_run_stepscript_then_postscript():
    sets = jq_parameter_sets(
        {"items": [1, 2, 3], "label": "x"},
        "[.items[] as $i | {item: $i, label: .label}]",
        "{item: (.item * 10), label}",
    )
    assert sets == [{"item": 10, "label": "x"}, {"item": 20, "label": "x"}, {"item": 30, "label": "x"}]
    assert jq_parameter_sets({"a": 1}, "[.]", ".") == [{"a": 1}]  # yadage's defaults: one step
    assert jq_parameter_sets({"items": []}, "[.items[] | {item: .}]", ".") == []


@pytest.mark.parametrize(
    ("stepscript", "postscript", "message"),
    [
        (".items", ".", r"^jq-stage 'j': stepscript gave list \[1, 2\], expected a list of objects"),
        ("{a: 1}", ".", r"^jq-stage 'j': stepscript gave dict"),
        ("[.]", ".a", r"^jq-stage 'j': postscript gave NoneType None, expected an object of parameters"),
        ('[.items[] | error("boom")]', ".", r"^jq-stage 'j': stepscript: jq program .* failed: .*boom"),
        ("[.]", ".items + 1", r"^jq-stage 'j': postscript: jq program .* failed"),
    ],
)
def test_jq_parameter_set_errors(stepscript, postscript, message):
    with pytest.raises(SpecError, match=message):
        jq_parameter_sets({"items": [1, 2]}, stepscript, postscript, where="jq-stage 'j'")


CASES = [
    Case.model_validate({"if": ".par == 0", "step": STEP}),
    Case.model_validate({"if": ".par > 5", "step": STEP}),
    Case.model_validate({"if": ".par >= 0", "step": STEP}),
]


@pytest.mark.parametrize(("par", "chosen"), [(0, 0), (7, 1), (3, 2), (-1, None)])
def test_select_case_takes_the_first_condition_that_holds(par, chosen):
    case = select_case(CASES, {"par": par})
    assert (CASES.index(case) if case is not None else None) == chosen


def test_a_failing_case_condition_names_the_case():
    cases = [Case.model_validate({"if": ".par + 1", "step": STEP})]
    with pytest.raises(
        SpecError, match=r"^stage 's': case #0 'if': jq program '\.par \+ 1' failed: .*; fix the condition$"
    ):
        select_case(cases, {"par": "text"}, where="stage 's'")


def test_a_cartesian_scatter_over_the_step_limit_fails_before_building_anything():
    parameters = {name: list(range(1000)) for name in "abc"}
    scatter = Scatter(method="cartesian", parameters=["a", "b", "c"])
    with pytest.raises(LimitExceededError) as caught:
        scatter_parameters(parameters, scatter, where="workflow.yml line 4: stage 'big'")
    assert str(caught.value).startswith(
        "workflow.yml line 4: stage 'big': number of steps of one stage is 1,000,000,000, over the limit of 50,000 "
        "(cartesian scatter over 1000 x 1000 x 1000 values); to allow more, set MLTOOLKIT_MAX_SCATTER_STEPS="
    )


def test_the_scatter_limit_applies_to_zip_and_jq_stages_and_can_be_raised(monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_MAX_SCATTER_STEPS", "5")
    assert len(scatter_parameters({"a": list(range(5))}, Scatter(method="zip", parameters=["a"]))) == 5
    with pytest.raises(LimitExceededError, match="number of steps of one stage is 6"):
        scatter_parameters({"a": list(range(6))}, Scatter(method="zip", parameters=["a"]))
    with pytest.raises(LimitExceededError, match="number of steps of one stage is 6"):
        jq_parameter_sets({"n": 6}, "[range(.n) | {i: .}]", ".")
    monkeypatch.setenv("MLTOOLKIT_MAX_SCATTER_STEPS", "6")
    assert len(jq_parameter_sets({"n": 6}, "[range(.n) | {i: .}]", ".")) == 6


def test_a_jq_stage_that_never_ends_is_stopped(monkeypatch):
    monkeypatch.setenv("MLTOOLKIT_JQ_TIMEOUT", "1")
    with pytest.raises(SpecError, match=r"^stage 'x': stepscript: jq program '\[repeat\(\.\)\]': jq run time is over"):
        jq_parameter_sets({"a": 1}, "[repeat(.)]", ".", where="stage 'x'")
