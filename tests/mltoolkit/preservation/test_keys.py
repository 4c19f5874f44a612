"""Key parts, the reason a step ran, and the summary line of a run."""

from __future__ import annotations

import dataclasses

import pytest

from mltoolkit.preservation import KeyComponents, explain, summary_line
from mltoolkit.workdir.record import RunStep, StepCache

LIBRARIES = {"python": "3.11.7", "numpy": "2.1.0", "scikit-learn": "1.9.1"}
CODE_FILES = {"mltoolkit/analysis/classifiers.py": "a" * 64, "mltoolkit/analysis/ml.py": "b" * 64}


def components(**changes) -> KeyComponents:
    base = KeyComponents(
        step="/merge_and_visualize",
        definition={"step": {"cmd": "merge"}, "quote": True},
        parameters={"inputs": [{"file_sha256": "1" * 64}], "title": "moons"},
        code="code-1",
        libraries=dict(LIBRARIES),
        inputs={"inputs": {"classification_0/knn.pkl": "1" * 64}},
    )
    return dataclasses.replace(base, **changes)


def test_the_key_covers_everything_but_the_file_names():
    key = components().key("merge")
    assert key.startswith("merge-") and len(key) == len("merge-") + 40
    assert components(inputs={"inputs": {"elsewhere/knn.pkl": "1" * 64}}).key("merge") == key
    for changed in (
        components(code="code-2"),
        components(libraries={**LIBRARIES, "numpy": "2.2.0"}),
        components(parameters={"inputs": [{"file_sha256": "2" * 64}], "title": "moons"}),
        components(definition={"step": {"cmd": "merge2"}, "quote": True}),
        components(image="sha256:abc"),
        components(step="/other"),
    ):
        assert changed.key("merge") != key


def test_the_key_of_given_components_never_changes():
    # a changed key would make every stored result of earlier versions unreachable
    given = KeyComponents(
        "/stage1/0",
        {"cmd": "echo {x}", "env": ["a", ("b", 1)]},
        {"x": {"file_sha256": "ab" * 32}, "n": [1, 2.5, None, True]},
        "c0de",
        {"numpy": "2.0"},
        image="sha256:1",
        inputs={"x": {"in.txt": "ab" * 32}},
        toolkit="t00l",
    )
    assert given.key("stage1") == "stage1-759380940a9c3a1c289849dc4694846c369f6137"


def test_components_survive_json_and_damaged_records_are_unknown():
    assert KeyComponents.from_json(components().to_json()) == components()
    assert KeyComponents.from_json({"step": "/x"}) is None
    assert KeyComponents.from_json(["not", "a", "dict"]) is None


@pytest.mark.parametrize(
    ("current", "code_files", "reason"),
    [
        (
            components(code="code-2"),
            (CODE_FILES, {**CODE_FILES, "mltoolkit/analysis/classifiers.py": "c" * 64}),
            "code changed: mltoolkit/analysis/classifiers.py",
        ),
        (components(code="code-2"), (None, CODE_FILES), "code changed"),
        (
            components(libraries={**LIBRARIES, "scikit-learn": "1.9.2"}),
            (None, {}),
            "library changed: scikit-learn 1.9.1 -> 1.9.2",
        ),
        (
            components(parameters={"inputs": [{"file_sha256": "1" * 64}], "title": "stars"}),
            (None, {}),
            "parameter changed: title",
        ),
        (
            components(
                parameters={"inputs": [{"file_sha256": "2" * 64}], "title": "moons"},
                inputs={"inputs": {"classification_0/knn.pkl": "2" * 64}},
            ),
            (None, {}),
            "input changed: classification_0/knn.pkl",
        ),
        (
            components(definition={"step": {"cmd": "merge2"}, "quote": True}),
            (None, {}),
            "step definition changed: step",
        ),
        (components(image="sha256:0123456789abcdef"), (None, {}), "image changed: none -> 0123456789ab"),
    ],
    ids=["code", "code, files unknown", "library", "parameter", "input", "definition", "image"],
)
def test_explain_names_what_changed(current, code_files, reason):
    assert explain(components(), current, code_files) == reason


def test_other_code_of_the_same_toolkit_is_explained_by_the_parameter_that_chose_it():
    before = components(code="knn-part", toolkit="toolkit-1", parameters={"classifier": "knn"}, inputs={})
    after = components(code="svm-part", toolkit="toolkit-1", parameters={"classifier": "svm"}, inputs={})
    assert explain(before, after) == "parameter changed: classifier"
    edited = dataclasses.replace(after, toolkit="toolkit-2")
    assert explain(before, edited) == "code changed; parameter changed: classifier"
    assert after.key("classify") == dataclasses.replace(after, toolkit="toolkit-2").key("classify")


def test_explain_a_first_run_and_several_changes():
    assert explain(None, components()) == "first run"
    both = components(code="code-2", libraries={**LIBRARIES, "numpy": "2.2.0"})
    assert explain(components(), both) == "library changed: numpy 2.1.0 -> 2.2.0; code changed"


def test_explain_lists_a_few_files_and_counts_the_rest():
    before = {f"flows/m{index}.py": "0" * 64 for index in range(6)}
    after = {name: "1" * 64 for name in before}
    reason = explain(components(), components(code="code-2"), (before, after))
    assert reason == "code changed: flows/m0.py, flows/m1.py, flows/m2.py and 3 more"


def step(name: str, state: str, reused: bool | None = None, reason: str = "") -> dict:
    entry = {"name": name, "state": state}
    if reused is not None:
        entry["cache"] = {"reused": reused, "reason": reason}
    return entry


def test_summary_line_names_each_step_that_ran_with_its_reason():
    steps = [step(f"classification_{index}", "CACHED", True, "reused") for index in range(1, 5)]
    steps.insert(0, step("data_prep", "CACHED", True, "reused"))
    steps.insert(1, step("classification_0", "COMPLETED", False, "code changed: mltoolkit/analysis/classifiers.py"))
    steps.append(
        step("merge_and_visualize", "COMPLETED", False, "input changed: classification_0/nearest_neighbours.pkl")
    )
    assert summary_line(steps) == (
        "5 reused, 2 ran: classification_0 (code changed: mltoolkit/analysis/classifiers.py), "
        "merge_and_visualize (input changed: classification_0/nearest_neighbours.pkl)"
    )


def test_summary_line_groups_steps_with_the_same_reason_and_counts_failures():
    steps = [step(f"s{index}", "COMPLETED", False, "first run") for index in range(7)]
    steps += [step("bad", "FAILED", False, "first run"), step("after", "PENDING")]
    assert summary_line(steps) == (
        "0 reused, 7 ran, 1 failed, 1 not run: s0, s1, s2, s3, s4 and 2 more (first run); bad (failed; first run)"
    )
    assert summary_line([step("a", "CACHED", True, "reused")]) == "1 reused, 0 ran"


def test_summary_line_reads_typed_run_steps_too():
    typed = RunStep(stage="s", name="s", state="COMPLETED", cache=StepCache(reused=False, reason="--refresh"))
    assert summary_line([typed]) == "0 reused, 1 ran: s (--refresh)"
