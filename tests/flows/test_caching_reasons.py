"""Every step says why it ran or was reused, and the cache never serves results of old code.

The flows run in this process, so a test can change what the cache key is made
of: the toolkit's code (its digest is computed from an edited copy of the
package: the code that runs stays the same) or a library's version. The small
``cache_params`` spec (prep -> left, right -> join) and the native flow with two
quick classifiers keep each run short.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest

from tests.constants import MOON, SPECS

PARAM_STEPS = ["prep", "left", "right", "join"]
CLASSIFIERS = ["nearest_neighbours", "decision_tree"]
NATIVE_STEPS = ["data_prep", "classification_0", "classification_1", "merge_and_visualize"]


def reasons(record: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    """``{step name: (reused, reason)}``."""
    return {step["name"]: (step["cache"]["reused"], step["cache"]["reason"]) for step in record["steps"]}


def everywhere(names: list[str], reused: bool, reason: str) -> dict[str, tuple[bool, str]]:
    return {name: (reused, reason) for name in names}


@pytest.fixture
def run_params(spec_in_process, tmp_path):
    """``run_params(**options)``: the cache_params spec in one work directory; returns run.json."""
    workdir = tmp_path / "params"

    def run(inputs: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        state, record = spec_in_process.run(
            workdir,
            "workflow.yml",
            toplevel=SPECS / "cache_params",
            inputs=inputs,
            inputs_file=SPECS / "cache_params" / "inputs.yml",
            **options,
        )
        assert state.is_completed(), record
        return record

    run.workdir = workdir  # type: ignore[attr-defined]
    return run


@pytest.fixture
def run_native(prefect_api, run_records, tmp_path):
    """``run_native(**options)``: the native flow on the moon data with two classifiers; returns run.json."""
    from flows.ml_workflow import ml_workflow

    workdir = tmp_path / "native"

    def run(**options: Any) -> dict[str, Any]:
        state = asyncio.run(
            ml_workflow(dataset=str(MOON), classifiers=CLASSIFIERS, workdir=str(workdir), return_state=True, **options)
        )
        assert state.is_completed()
        return run_records.read(workdir)

    return run


@pytest.fixture
def edited_code(monkeypatch, tmp_path):
    """``edit(relative, old, new)``: from now on the code digest sees ``mltoolkit/<relative>`` edited."""
    from flows import cache_keys

    copy = tmp_path / "edited" / "mltoolkit"
    shutil.copytree(cache_keys.TOOLKIT_PACKAGES["mltoolkit"], copy, ignore=shutil.ignore_patterns("__pycache__"))

    def edit(relative: str, old: str, new: str) -> None:
        source = copy / relative
        text = source.read_text()
        assert text.count(old) == 1, (relative, old)
        source.write_text(text.replace(old, new))
        monkeypatch.setattr(cache_keys, "TOOLKIT_PACKAGES", {**cache_keys.TOOLKIT_PACKAGES, "mltoolkit": copy})
        cache_keys.forget_code_facts()

    yield edit
    cache_keys.forget_code_facts()


def test_spec_first_run_then_reused_then_changed_parameter_names_itself(run_params):
    assert reasons(run_params()) == everywhere(PARAM_STEPS, False, "first run")
    assert reasons(run_params()) == everywhere(PARAM_STEPS, True, "reused")

    changed = reasons(run_params(inputs={"left_factor": 5}))
    assert changed == {
        "prep": (True, "reused"),
        "left": (False, "parameter changed: factor"),
        "right": (True, "reused"),
        "join": (False, "input changed: left/left.txt"),
    }


def test_spec_refresh_and_no_cache_say_so(run_params):
    run_params()
    assert reasons(run_params(refresh_cache=True)) == everywhere(PARAM_STEPS, False, "--refresh")
    assert reasons(run_params(use_cache=False)) == everywhere(PARAM_STEPS, False, "--no-cache")
    assert reasons(run_params()) == everywhere(PARAM_STEPS, True, "reused")


def test_spec_changed_code_reruns_every_step_naming_the_file(run_params, edited_code):
    run_params()
    edited_code("analysis/classifiers.py", "KNeighborsClassifier(3)", "KNeighborsClassifier(25)")
    record = run_params()
    assert {step["name"]: step["state"] for step in record["steps"]} == dict.fromkeys(PARAM_STEPS, "COMPLETED")
    assert reasons(record) == everywhere(PARAM_STEPS, False, "code changed: mltoolkit/analysis/classifiers.py")
    assert reasons(run_params()) == everywhere(PARAM_STEPS, True, "reused")


def test_spec_changed_library_version_reruns_naming_both_versions(run_params, monkeypatch):
    from flows import cache_keys

    run_params()
    versions = cache_keys.toolkit_libraries()
    bumped = {**versions, "scikit-learn": versions["scikit-learn"] + ".post1"}
    monkeypatch.setattr(cache_keys, "toolkit_libraries", lambda: bumped)
    record = run_params()
    expected = f"library changed: scikit-learn {versions['scikit-learn']} -> {bumped['scikit-learn']}"
    assert reasons(record) == everywhere(PARAM_STEPS, False, expected)


def test_spec_changed_output_reruns_its_step_naming_the_file(run_params):
    run_params()
    (run_params.workdir / "left" / "left.txt").write_text("tampered\n")
    record = reasons(run_params())
    assert record["left"] == (False, "output changed: left/left.txt")
    assert record["join"] == (True, "reused")  # left wrote the same file again: join's input is unchanged
    assert record["prep"] == record["right"] == (True, "reused")


def test_native_changed_classifier_code_reruns_exactly_that_classifiers_step(run_native, edited_code):
    assert reasons(run_native()) == everywhere(NATIVE_STEPS, False, "first run")
    edited_code("analysis/classifiers.py", "KNeighborsClassifier(3)", "KNeighborsClassifier(25)")
    after = reasons(run_native())
    assert after == {
        **everywhere(NATIVE_STEPS, True, "reused"),
        "classification_0": (False, "code changed: mltoolkit/analysis/classifiers.py"),
    }


def test_native_changed_shared_code_reruns_every_step(run_native, edited_code):
    run_native()
    edited_code("analysis/plotting.py", "MARGIN = 0.5", "MARGIN = 0.6")
    assert reasons(run_native()) == everywhere(NATIVE_STEPS, False, "code changed: mltoolkit/analysis/plotting.py")
