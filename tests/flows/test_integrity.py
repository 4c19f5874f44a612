"""Integrity of intermediates: sha256 in the run record, checked before anything is unpickled.

Each tampered pickle below is replaced by one whose loading would create a canary
file, so "detected before it is loaded" is checked directly: the canary must never
appear.
"""

from __future__ import annotations

import base64
import glob
import json
import pickle
import shutil
from pathlib import Path

import pytest

from mltoolkit.analysis.fun_with_ml import data_prep as data_prep_script
from mltoolkit.workdir.artifacts import sha256_file
from tests.constants import MOON, NATIVE_CLASSIFIERS, SPECS


class _Canary:
    """Unpickling this creates ``path``: proof that a file was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious_pickle(canary: Path) -> bytes:
    """A pickle whose loading creates ``canary`` (it must never be loaded)."""
    return pickle.dumps(_Canary(canary))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.fixture
def native_run(shared_run):
    run = shared_run("native")
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    return run


def test_native_run_record_has_a_sha256_for_every_intermediate(run_records, native_run):
    record = run_records.read(native_run.workdir)
    steps = run_records.by_name(record)
    assert record["status"] == "completed"
    assert run_records.assert_outputs_match_files(native_run.workdir, record) == len(NATIVE_CLASSIFIERS) + 3
    assert set(steps["data_prep"]["outputs"]) == {"data_prep/prepped_data.pkl"}
    for index, name in enumerate(NATIVE_CLASSIFIERS):
        assert set(steps[f"classification_{index}"]["outputs"]) == {f"classification_{index}/{name}.pkl"}
    assert set(steps["merge_and_visualize"]["outputs"]) == {"merge_and_visualize/ml_results.png", "scores.json"}
    assert not list(native_run.workdir.rglob("*.tmp")), "a temporary file of an atomic write was left behind"
    # each pickle's sidecar, which the step scripts check, agrees with the record
    pickles = {
        path: digest for step in record["steps"] for path, digest in step["outputs"].items() if path.endswith(".pkl")
    }
    assert len(pickles) == len(NATIVE_CLASSIFIERS) + 1
    for relative, digest in pickles.items():
        assert (native_run.workdir / (relative + ".sha256")).read_text().split()[0] == digest


def test_native_tampered_and_truncated_pickles_make_their_steps_run_again(
    run_cli, flow_cli, run_records, native_run, cli_env, tmp_path
):
    # a copy of the shared run: its cache travels with it (paths in keys are workdir-relative)
    workdir = tmp_path / "copy"
    shutil.copytree(native_run.workdir, workdir)
    before = run_records.by_name(run_records.read(workdir))
    canary = tmp_path / "CANARY"
    (workdir / "data_prep" / "prepped_data.pkl").write_bytes(malicious_pickle(canary))
    truncate(workdir / "classification_1" / f"{NATIVE_CLASSIFIERS[1]}.pkl")

    result = run_cli(flow_cli.native_args(workdir), cli_env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert not canary.exists(), "the tampered pickle was unpickled"
    record = run_records.read(workdir)
    steps = run_records.by_name(record)
    assert record["status"] == "completed"
    assert steps["data_prep"]["state"] == "COMPLETED"  # re-run, not trusted from the cache
    assert steps["classification_1"]["state"] == "COMPLETED"
    assert steps["classification_0"]["state"] == "CACHED"
    assert steps["classification_2"]["state"] == "CACHED"
    run_records.assert_outputs_match_files(workdir, record)
    # the re-run restored exactly what the first run had produced
    for name in ("data_prep", "classification_1"):
        assert steps[name]["outputs"] == before[name]["outputs"]


def test_seed_spec_tampered_and_truncated_pickles_make_their_steps_run_again(
    run_cli, flow_cli, run_records, cli_env, tmp_path
):
    workdir = tmp_path / "seed"
    first = run_cli(flow_cli.seed_spec_args(workdir), cli_env)
    assert first.returncode == 0, first.stderr[-3000:]
    record = run_records.read(workdir)
    assert record["status"] == "completed"
    assert run_records.assert_outputs_match_files(workdir, record) > 0
    assert not list(workdir.rglob("*.tmp")), "a temporary file of an atomic write was left behind"
    published = {step["name"]: step["published"] for step in record["steps"]}
    for step in record["steps"]:  # every published pickle and figure has its hash recorded
        for value in _strings(step["published"]):
            # the seed publishes '{outdir}/*.pkl' as written, for the merge step's shell to expand
            for path in sorted(glob.glob(value)) if value.endswith((".pkl", ".png")) else []:
                assert Path(path).relative_to(workdir).as_posix() in step["outputs"], (step["name"], path)

    canary = tmp_path / "CANARY"
    prepped = Path(published["data_prep"]["prepped_data"])
    prepped.write_bytes(malicious_pickle(canary))
    truncate(workdir / "classification_2" / "rbf_svm.pkl")

    second = run_cli(flow_cli.seed_spec_args(workdir), cli_env)

    assert second.returncode == 0, second.stderr[-3000:]
    assert not canary.exists(), "the tampered pickle was unpickled"
    record = run_records.read(workdir)
    steps = run_records.by_name(record)
    assert steps["data_prep"]["state"] == "COMPLETED"
    assert steps["classification_2"]["state"] == "COMPLETED"
    assert steps["classification_0"]["state"] == "CACHED"
    run_records.assert_outputs_match_files(workdir, record)


@pytest.fixture
def earlier_prepped(tmp_path):
    """Two prepped pickles (with sidecars) written by the seed's data_prep script in an earlier run."""
    files = []
    for name in ("tampered", "truncated"):
        path = tmp_path / "earlier run" / name / "prepped_data.pkl"
        assert data_prep_script.main(["--dataset", str(MOON), "--outfile", str(path)]) == 0
        files.append(path)
    return files


def test_spec_without_cache_refuses_tampered_upstream_files_naming_them(
    run_cli, flow_cli, run_records, earlier_prepped, cli_env, tmp_path
):
    tampered, truncated = earlier_prepped
    canary = tmp_path / "CANARY"
    tampered.write_bytes(malicious_pickle(canary))
    truncate(truncated)
    workdir = tmp_path / "work"

    result = run_cli(
        [
            "-m",
            "flows.spec_workflow",
            str(workdir),
            "reuse_prepped.yml",
            "--toplevel",
            str(SPECS / "trust"),
            "--no-cache",
            "-p",
            f"prepped_files={json.dumps([str(tampered), str(truncated)])}",
        ],
        cli_env,
    )

    line = flow_cli.assert_error_line(
        result, "2 of 2 step(s) failed", str(tampered), "sha256 is", "modified or truncated", only_line=False
    )
    assert "error: --prepped_data" in line
    assert not canary.exists(), "the tampered pickle was unpickled"
    record = run_records.read(workdir)
    assert record["status"] == "failed"
    errors = {step["name"]: step["error"] for step in record["steps"]}
    assert set(errors) == {"classification_0", "classification_1"}
    for name, path in (("classification_0", tampered), ("classification_1", truncated)):
        assert f"--prepped_data {path}: sha256 is" in errors[name]
        assert sha256_file(path) in errors[name]
    assert not list(workdir.glob("classification_*/*.pkl"))


def test_spec_step_refuses_a_pickle_from_outside_without_a_known_hash(
    run_cli, flow_cli, earlier_prepped, cli_env, tmp_path
):
    stray = earlier_prepped[0]
    canary = tmp_path / "CANARY"
    stray.write_bytes(malicious_pickle(canary))
    stray.with_name(stray.name + ".sha256").unlink()  # no sidecar, nothing else records it
    workdir = tmp_path / "step"

    result = run_cli(
        [
            "-m",
            "flows.spec_step",
            "steps.yml#/classification_step",
            str(workdir),
            "--toplevel",
            str(SPECS / "seed_parallel"),
            "-p",
            f"input_data={stray}",
            "-p",
            "all_classifiers=[decision_tree]",
            "-p",
            "outdir={workdir}",
        ],
        cli_env,
    )

    flow_cli.assert_error_line(result, str(stray), "no known sha256", only_line=False)
    assert not canary.exists(), "a pickle of unknown origin was unpickled"


def test_native_tampered_cache_record_is_not_loaded(run_cli, flow_cli, native_run, cli_env, tmp_path):
    """Prefect's stored results are pickles: one whose hash differs from the sealed one is never unpickled."""
    workdir = tmp_path / "copy"
    shutil.copytree(native_run.workdir, workdir)
    canary = tmp_path / "CANARY"
    (record,) = (workdir / "_mltoolkit" / "cache").glob("data_prep-*")
    content = json.loads(record.read_text())
    content["result"] = base64.b64encode(malicious_pickle(canary)).decode()  # Prefect's record: base64 pickle
    record.write_text(json.dumps(content))

    result = run_cli(flow_cli.native_args(workdir), cli_env)

    assert not canary.exists(), "a tampered cache record was unpickled"
    assert result.returncode == 0, result.stderr[-2000:]
    states = {
        step["name"]: step["state"] for step in json.loads((workdir / "_mltoolkit" / "run.json").read_text())["steps"]
    }
    assert states["data_prep"] == "COMPLETED"  # run again, not trusted
