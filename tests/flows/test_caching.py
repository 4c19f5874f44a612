"""Per-step caching of both flows, end to end through their command lines.

Each flow runs once on a baseline work directory (module fixture, run twice:
the second run must reuse everything); every other test works on a copy of that
directory, which also exercises the relocation the cache is designed for.
The step states come from ``run.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mltoolkit.workdir.artifacts import sha256_file
from tests.constants import SEED_CLASSIFIERS, SPECS

NATIVE_STEPS = ["data_prep", *[f"classification_{i}" for i in range(5)], "merge_and_visualize"]
SPEC_STEPS = NATIVE_STEPS  # the seed spec's step names are the native flow's record names
PARAM_STEPS = ["prep", "left", "right", "join"]


#: What a run writes about itself (rewritten by every run), as opposed to step outputs.
RUN_RECORDS = frozenset({"_mltoolkit", "ro-crate-metadata.json"})


def output_digests(workdir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file the steps produced (the run's own records excluded)."""
    return {
        path.relative_to(workdir).as_posix(): sha256_file(path)
        for path in sorted(workdir.rglob("*"))
        if path.is_file() and path.relative_to(workdir).parts[0] not in RUN_RECORDS
    }


def _all(names: list[str], state: str) -> dict[str, str]:
    return {name: state for name in names}


def _modified_dataset(source: Path, target: Path) -> Path:
    """A copy of the moon data with one label flipped: same format, different content."""
    lines = source.read_text().splitlines(keepends=True)
    x, y, label = lines[1].split()
    lines[1] = f"{float(x):12.6f}{float(y):12.6f}{1 - int(label):12d}\n"
    target.write_text("".join(lines))
    assert sha256_file(target) != sha256_file(source)
    return target


class Baseline:
    """A finished first run, and what the immediate second run did to it."""

    def __init__(
        self,
        workdir: Path,
        dataset: Path,
        first: dict[str, str],
        second: dict[str, str],
        outputs_before: dict[str, str],
        outputs_after: dict[str, str],
        summaries: list[str],
    ) -> None:
        self.workdir = workdir
        self.dataset = dataset
        self.first = first
        self.second = second
        self.outputs_before = outputs_before
        self.outputs_after = outputs_after
        self.summaries = summaries  # the last line each command printed

    def copy(self, target: Path) -> Path:
        """Copy the work directory (records, cache and all) to ``target``, keeping file times."""
        shutil.copytree(self.workdir, target, symlinks=True)
        return target


@pytest.fixture(scope="module")
def module_env(session_cli_env: dict[str, str]) -> dict[str, str]:
    return session_cli_env


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, repo_root) -> Path:
    path = tmp_path_factory.mktemp("data") / "moon.txt"
    shutil.copyfile(repo_root / "data" / "moon.txt", path)
    return path


def _summary(stdout: str) -> str:
    """The summary line a command printed (``mltoolkit spec`` ends with the record's path after it)."""
    return next(line for line in reversed(stdout.splitlines()) if " reused, " in line)


def _baseline(run, flow_cli, run_records, workdir: Path, dataset: Path) -> Baseline:
    printed = [_summary(flow_cli.check(run(workdir)).stdout)]
    first = run_records.states(workdir)
    before = output_digests(workdir)
    printed.append(_summary(flow_cli.check(run(workdir)).stdout))
    second = run_records.states(workdir)
    return Baseline(workdir, dataset, first, second, before, output_digests(workdir), printed)


@pytest.fixture(scope="module")
def native_baseline(module_env, flow_cli, run_records, dataset, tmp_path_factory, repo_root) -> Baseline:
    workdir = tmp_path_factory.mktemp("native") / "workdir"
    return _baseline(
        lambda wd: flow_cli.native(
            module_env, wd, "--inputs", str(repo_root / "inputs.yml"), "-p", f"dataset={dataset}"
        ),
        flow_cli,
        run_records,
        workdir,
        dataset,
    )


@pytest.fixture(scope="module")
def spec_baseline(module_env, flow_cli, run_records, dataset, tmp_path_factory) -> Baseline:
    workdir = tmp_path_factory.mktemp("spec") / "workdir"
    return _baseline(
        lambda wd: flow_cli.spec(module_env, wd, "seed_parallel", "-p", f"dataset={dataset}"),
        flow_cli,
        run_records,
        workdir,
        dataset,
    )


# --- native flow ------------------------------------------------------------------------


@pytest.mark.slow
def test_native_second_run_reuses_every_step_and_changes_no_byte(native_baseline):
    assert native_baseline.first == _all(NATIVE_STEPS, "COMPLETED")
    assert native_baseline.second == _all(NATIVE_STEPS, "CACHED")
    assert native_baseline.outputs_after == native_baseline.outputs_before
    assert native_baseline.summaries == [
        "0 reused, 7 ran: data_prep, classification_0, classification_1, "
        "classification_2, classification_3 and 2 more (first run)",
        "7 reused, 0 ran",
    ]
    assert "scores.json" in native_baseline.outputs_after


@pytest.mark.slow
def test_native_copied_workdir_keeps_its_cache(native_baseline, module_env, repo_root, tmp_path, flow_cli, run_records):
    workdir = native_baseline.copy(tmp_path / "elsewhere" / "copy")
    result = flow_cli.check(
        flow_cli.native(
            module_env, workdir, "--inputs", str(repo_root / "inputs.yml"), "-p", f"dataset={native_baseline.dataset}"
        )
    )
    assert run_records.states(workdir) == _all(NATIVE_STEPS, "CACHED")
    assert output_digests(workdir) == native_baseline.outputs_before
    assert str(workdir / "merge_and_visualize" / "ml_results.png") in result.stdout
    for step in run_records.read(workdir)["steps"]:
        assert step["workdir"].startswith(str(workdir)), step


@pytest.mark.slow
def test_native_changed_dataset_reruns_everything(
    native_baseline, module_env, repo_root, tmp_path, flow_cli, run_records
):
    workdir = native_baseline.copy(tmp_path / "workdir")
    changed = _modified_dataset(native_baseline.dataset, tmp_path / "moon.txt")
    flow_cli.check(
        flow_cli.native(module_env, workdir, "--inputs", str(repo_root / "inputs.yml"), "-p", f"dataset={changed}")
    )
    assert run_records.states(workdir) == _all(NATIVE_STEPS, "COMPLETED")
    assert _reasons(run_records, workdir)["data_prep"] == (False, f"input changed: {changed}")


@pytest.mark.slow
def test_native_changed_classifier_code_reruns_exactly_its_step_and_the_merge_saying_why(
    native_baseline, module_env, repo_root, tmp_path, flow_cli, run_records, run_cli
):
    """The issue's reproduction: KNeighborsClassifier(3) -> (25) in an installed copy of the toolkit."""
    installed = tmp_path / "installed"
    for package in ("mltoolkit", "flows"):
        shutil.copytree(repo_root / package, installed / package, ignore=shutil.ignore_patterns("__pycache__"))
    registry = installed / "mltoolkit" / "analysis" / "classifiers.py"
    registry.write_text(registry.read_text().replace("KNeighborsClassifier(3)", "KNeighborsClassifier(25)"))
    workdir = native_baseline.copy(tmp_path / "workdir")
    env = {**module_env, "PYTHONPATH": str(installed)}
    arguments = ["--inputs", str(repo_root / "inputs.yml"), "-p", f"dataset={native_baseline.dataset}"]

    result = flow_cli.check(
        run_cli(["-m", "flows.ml_workflow", "--workdir", str(workdir), *arguments], env, cwd=installed)
    )

    expected = _all(NATIVE_STEPS, "CACHED")
    expected.update(classification_0="COMPLETED", merge_and_visualize="COMPLETED")
    assert run_records.states(workdir) == expected
    assert json.loads((workdir / "scores.json").read_text())["nearest_neighbours"] == pytest.approx(0.9)
    assert result.stdout.splitlines()[-1] == (
        "5 reused, 2 ran: classification_0 (code changed: mltoolkit/analysis/classifiers.py), "
        "merge_and_visualize (input changed: classification_0/nearest_neighbours.pkl)"
    )


@pytest.mark.slow
def test_native_changed_classifier_reruns_that_step_and_the_merge(
    native_baseline, module_env, tmp_path, flow_cli, run_records
):
    workdir = native_baseline.copy(tmp_path / "workdir")
    classifiers = list(SEED_CLASSIFIERS)
    classifiers[2] = "{name: svm_gamma_1, estimator: sklearn.svm.SVC, params: {gamma: 1}}"
    flow_cli.check(
        flow_cli.native(
            module_env,
            workdir,
            "-p",
            f"dataset={native_baseline.dataset}",
            "-p",
            f"classifiers=[{', '.join(classifiers)}]",
        )
    )
    expected = _all(NATIVE_STEPS, "CACHED")
    expected.update(classification_2="COMPLETED", merge_and_visualize="COMPLETED")
    assert run_records.states(workdir) == expected
    reasons = _reasons(run_records, workdir)
    assert reasons["classification_2"] == (False, "parameter changed: classifier")
    assert reasons["merge_and_visualize"] == (False, "input changed: classification_2/svm_gamma_1.pkl")
    assert reasons["data_prep"] == (True, "reused")
    scores = json.loads((workdir / "scores.json").read_text())
    assert list(scores) == ["nearest_neighbours", "linear_svm", "svm_gamma_1", "gaussian_process", "decision_tree"]


def _cache_records(workdir: Path) -> dict[str, tuple[str, int]]:
    """``{record: (sha256, mtime_ns)}`` of the cached results: any rewrite changes the mtime."""
    folder = workdir / "_mltoolkit" / "cache"
    return {path.name: (sha256_file(path), path.stat().st_mtime_ns) for path in folder.iterdir()}


def _written_since(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]) -> list[str]:
    """Records added or rewritten (a step whose inputs changed stores under a new key)."""
    return [key for key, (_, mtime) in after.items() if key not in before or before[key][1] != mtime]


def _stored_keys(workdir: Path) -> dict[str, tuple[str, int]]:
    """``{file: (sha256, mtime_ns)}`` of the kept parts of each step's stored key."""
    folder = workdir / "_mltoolkit" / "cache-keys" / "steps"
    return {path.name: (sha256_file(path), path.stat().st_mtime_ns) for path in folder.iterdir()}


def _reasons(run_records, workdir: Path) -> dict[str, tuple[bool, str]]:
    """``{step name: (reused, reason)}`` from ``run.json``."""
    return {
        step["name"]: (step["cache"]["reused"], step["cache"]["reason"]) for step in run_records.read(workdir)["steps"]
    }


@pytest.mark.slow
def test_native_no_cache_neither_reuses_nor_stores_and_refresh_reruns_all(
    native_baseline, module_env, repo_root, tmp_path, flow_cli, run_records
):
    workdir = native_baseline.copy(tmp_path / "workdir")
    args = ["--inputs", str(repo_root / "inputs.yml"), "-p", f"dataset={native_baseline.dataset}"]
    records = _cache_records(workdir)
    stored_keys = _stored_keys(workdir)
    assert len(records) == len(NATIVE_STEPS) == len(stored_keys)

    flow_cli.check(flow_cli.native(module_env, workdir, *args, "--no-cache"))
    assert run_records.states(workdir) == _all(NATIVE_STEPS, "COMPLETED")
    assert _cache_records(workdir) == records  # not one record read-and-rewritten or added
    assert _stored_keys(workdir) == stored_keys  # nor the parts of the keys kept beside them
    assert set(_reasons(run_records, workdir).values()) == {(False, "--no-cache")}

    result = flow_cli.check(flow_cli.native(module_env, workdir, *args, "--refresh"))
    assert run_records.states(workdir) == _all(NATIVE_STEPS, "COMPLETED")
    assert set(_reasons(run_records, workdir).values()) == {(False, "--refresh")}
    assert "0 reused, 7 ran: data_prep, classification_0" in result.stdout and "(--refresh)" in result.stdout
    assert len(_written_since(records, _cache_records(workdir))) == len(NATIVE_STEPS)  # each result stored anew
    assert json.loads((workdir / "scores.json").read_text()) == json.loads(
        (native_baseline.workdir / "scores.json").read_text()
    )


# --- spec flow ----------------------------------------------------------------------------


@pytest.mark.slow
def test_spec_second_run_reuses_every_step_and_changes_no_byte(spec_baseline):
    assert spec_baseline.first == _all(SPEC_STEPS, "COMPLETED")
    assert spec_baseline.second == _all(SPEC_STEPS, "CACHED")
    assert spec_baseline.outputs_after == spec_baseline.outputs_before
    assert spec_baseline.summaries[1] == "7 reused, 0 ran"


@pytest.mark.slow
def test_spec_copied_workdir_keeps_its_cache_and_publishes_its_own_paths(
    spec_baseline, module_env, tmp_path, flow_cli, run_records
):
    """The original is moved away: nothing may still point into it."""
    moved = tmp_path / "moved"
    copy = spec_baseline.copy(tmp_path / "elsewhere" / "copy")
    shutil.move(str(copy), moved)
    flow_cli.check(flow_cli.spec(module_env, moved, "seed_parallel", "-p", f"dataset={spec_baseline.dataset}"))
    assert run_records.states(moved) == _all(SPEC_STEPS, "CACHED")
    for step in run_records.read(moved)["steps"]:
        for value in json.dumps(step["published"]).split('"'):
            if value.startswith("/"):
                assert value.startswith(str(moved) + "/"), (step["name"], value)
    merge = next(step for step in run_records.read(moved)["steps"] if step["name"] == "merge_and_visualize")
    assert merge["parameters"]["input_data"] == str(moved / "data_prep" / "prepped_data.pkl")


@pytest.mark.slow
def test_spec_changed_dataset_reruns_everything(spec_baseline, module_env, tmp_path, flow_cli, run_records):
    workdir = spec_baseline.copy(tmp_path / "workdir")
    changed = _modified_dataset(spec_baseline.dataset, tmp_path / "moon.txt")
    flow_cli.check(flow_cli.spec(module_env, workdir, "seed_parallel", "-p", f"dataset={changed}"))
    assert run_records.states(workdir) == _all(SPEC_STEPS, "COMPLETED")


@pytest.mark.slow
def test_spec_changed_classifier_reruns_that_step_and_the_merge(
    spec_baseline, module_env, tmp_path, flow_cli, run_records, spec_scores
):
    workdir = spec_baseline.copy(tmp_path / "workdir")
    classifiers = list(SEED_CLASSIFIERS)
    classifiers[2] = "decision_tree"
    flow_cli.check(
        flow_cli.spec(
            module_env,
            workdir,
            "seed_parallel",
            "-p",
            f"dataset={spec_baseline.dataset}",
            "-p",
            f"classifiers=[{', '.join(classifiers)}]",
        )
    )
    expected = _all(SPEC_STEPS, "CACHED")
    expected.update(classification_2="COMPLETED", merge_and_visualize="COMPLETED")
    assert run_records.states(workdir) == expected
    # the step ran in a clean folder: the old classifier's pickle is gone, not merged
    assert sorted(path.name for path in (workdir / "classification_2").glob("*.pkl")) == ["decision_tree.pkl"]
    assert spec_scores(workdir, 5)  # every folder holds exactly one pickle


@pytest.mark.slow
def test_spec_no_cache_neither_reuses_nor_stores_and_refresh_reruns_all(
    spec_baseline, module_env, tmp_path, flow_cli, run_records, spec_scores
):
    workdir = spec_baseline.copy(tmp_path / "workdir")
    args = ["-p", f"dataset={spec_baseline.dataset}"]
    records = _cache_records(workdir)
    stored_keys = _stored_keys(workdir)
    assert len(records) == len(SPEC_STEPS) == len(stored_keys)

    flow_cli.check(flow_cli.spec(module_env, workdir, "seed_parallel", *args, "--no-cache"))
    assert run_records.states(workdir) == _all(SPEC_STEPS, "COMPLETED")
    assert _cache_records(workdir) == records
    assert _stored_keys(workdir) == stored_keys
    assert set(_reasons(run_records, workdir).values()) == {(False, "--no-cache")}

    flow_cli.check(flow_cli.spec(module_env, workdir, "seed_parallel", *args, "--refresh"))
    assert run_records.states(workdir) == _all(SPEC_STEPS, "COMPLETED")
    assert set(_reasons(run_records, workdir).values()) == {(False, "--refresh")}
    assert len(_written_since(records, _cache_records(workdir))) == len(SPEC_STEPS)
    assert spec_scores(workdir, 5) == spec_scores(spec_baseline.workdir, 5)


@pytest.mark.slow
def test_spec_changed_parameter_reruns_exactly_its_dependants(module_env, tmp_path, flow_cli, run_records):
    workdir = tmp_path / "workdir"
    flow_cli.check(flow_cli.spec(module_env, workdir, "cache_params"))
    assert run_records.states(workdir) == _all(PARAM_STEPS, "COMPLETED")

    # an init value only 'left' reads
    flow_cli.check(flow_cli.spec(module_env, workdir, "cache_params", "-p", "left_factor=5"))
    assert run_records.states(workdir) == {
        "prep": "CACHED",
        "left": "COMPLETED",
        "right": "CACHED",
        "join": "COMPLETED",
    }
    assert (workdir / "join" / "joined.txt").read_text() == "7\n5L\n7\n3R\n"

    # a literal parameter of 'right' in the spec itself
    edited = tmp_path / "edited_spec"
    shutil.copytree(SPECS / "cache_params", edited)
    workflow = edited / "workflow.yml"
    text = workflow.read_text()
    assert text.count("suffix: R") == 1
    workflow.write_text(text.replace("suffix: R", "suffix: Q"))
    flow_cli.check(flow_cli.spec(module_env, workdir, edited, "-p", "left_factor=5"))
    assert run_records.states(workdir) == {
        "prep": "CACHED",
        "left": "CACHED",
        "right": "COMPLETED",
        "join": "COMPLETED",
    }
    assert (workdir / "join" / "joined.txt").read_text() == "7\n5L\n7\n3Q\n"

    # Back to the first inputs: their results are still cached, but 'left' and
    # 'right' have since overwritten their files, so those results must not be
    # reused (the files are the truth); 'prep' never changed.
    flow_cli.check(flow_cli.spec(module_env, workdir, "cache_params"))
    assert run_records.states(workdir) == {
        "prep": "CACHED",
        "left": "COMPLETED",
        "right": "COMPLETED",
        "join": "COMPLETED",
    }
    assert (workdir / "join" / "joined.txt").read_text() == "7\n2L\n7\n3R\n"
