"""What a run keeps for later, and ``mltoolkit archive`` / ``python -m flows.archive`` on real runs.

Both runs are the session's shared ones (``shared_run``: the native flow and the seed
spec, started from their command lines with ``-p`` values and an inputs file); the
archive tests work on copies, since archiving takes the run's lock.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from mltoolkit.analysis.results import read_model_summary
from mltoolkit.preservation.archive import EXCLUDED
from mltoolkit.preservation.submitted import read_submission
from mltoolkit.workdir.layout import ARCHIVE_MANIFEST_FILE, CRATE_FILE, WorkdirLayout
from tests.constants import MOON, NATIVE_CLASSIFIERS, SEED_SPEC_DIR


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(params=["native", "seed-spec"])
def finished(request, shared_run) -> tuple[str, Path]:
    run = shared_run(request.param)
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    return request.param, run.workdir


def test_the_native_run_keeps_its_command_line_and_its_data(shared_run):
    workdir = shared_run("native").workdir
    kept = read_submission(workdir)
    assert kept["kind"] == "native" and kept["flow"] == "ml-workflow" and kept["inputs_file"] is None
    assert kept["parameters"] == {"dataset": str(MOON), "classifiers": json.dumps(NATIVE_CLASSIFIERS)}
    assert kept["inputs"]["dataset"] == str(MOON) and kept["inputs"]["classifiers"] == NATIVE_CLASSIFIERS
    [dataset] = kept["datasets"]
    assert dataset["path"] == "data/moon.txt" and dataset["sha256"] == _sha(MOON)


def test_the_seed_spec_run_keeps_exact_copies_of_its_spec_and_inputs(shared_run):
    workdir = shared_run("seed-spec").workdir
    kept = read_submission(workdir)
    assert (kept["kind"], kept["flow"], kept["workflow"], kept["toplevel"]) == (
        "spec",
        "spec-workflow",
        "spec/workflow.yml",
        "spec",
    )
    assert kept["inputs_file"] == "inputs.yml" and kept["parameters"] == {}
    submitted = WorkdirLayout(workdir).submitted
    for original, copy in [("workflow.yml", "spec/workflow.yml"), ("steps.yml", "spec/steps.yml")]:
        assert (submitted / copy).read_bytes() == (SEED_SPEC_DIR / original).read_bytes()
    assert (submitted / "inputs.yml").read_bytes() == (SEED_SPEC_DIR / "inputs.yml").read_bytes()
    assert kept["datasets"][0]["sha256"] == _sha(MOON)


def test_every_kept_file_has_its_sha256_and_the_crate_lists_it(finished):
    _, workdir = finished
    layout = WorkdirLayout(workdir)
    files = read_submission(workdir)["files"]
    assert files == {
        path.relative_to(layout.submitted).as_posix(): _sha(path)
        for path in layout.submitted.rglob("*")
        if path.is_file() and path != layout.submitted_manifest
    }
    crate = json.loads(layout.crate.read_text())
    described = {entity["@id"]: entity.get("sha256") for entity in crate["@graph"]}
    for relative, digest in files.items():
        assert described[f"_mltoolkit/submitted/{relative}"] == digest


def test_each_model_has_a_summary_whose_score_is_the_runs(finished, spec_scores):
    kind, workdir = finished
    models = sorted(workdir.glob("classification_*/*.pkl"))
    summaries = {summary["classifier"]: summary for summary in map(read_model_summary, models)}
    expected = json.loads((workdir / "scores.json").read_text()) if kind == "native" else spec_scores(workdir, 5)
    assert {name: summary["score"] for name, summary in summaries.items()} == expected
    assert all(summary["n_test"] == len(summary["predictions"]) == 40 for summary in summaries.values())


def test_the_run_record_names_the_machine(finished):
    _, workdir = finished
    environment = json.loads(WorkdirLayout(workdir).run_record.read_text())["environment"]
    assert set(environment) == {"platform", "machine", "cpu_flags"}
    assert environment["platform"] and environment["cpu_flags"] == sorted(environment["cpu_flags"])


def _archived(workdir: Path, out: Path, run_cli, offline_env, kind: str) -> None:
    if kind == "native":  # the documented entry point, in a process of its own (no Prefect server needed)
        result = run_cli(["-m", "flows.archive", str(workdir), str(out)], offline_env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"archive: {out} (")
    else:
        result = CliRunner().invoke(app, ["archive", str(workdir), str(out)])
        assert result.exit_code == 0, result.output


def test_an_archive_holds_the_run_and_the_sha256_of_every_file(finished, tmp_path, run_cli, offline_env):
    kind, shared = finished
    workdir = tmp_path / "run"
    shutil.copytree(shared, workdir, symlinks=True)
    out = tmp_path / "out folder" / "run.zip"
    _archived(workdir, out, run_cli, offline_env, kind)
    on_disk = {
        path.relative_to(workdir).as_posix()
        for path in workdir.rglob("*")
        if path.is_file() and not any(path.relative_to(workdir).as_posix().startswith(cut) for cut in EXCLUDED)
    }
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read(ARCHIVE_MANIFEST_FILE))["files"]
        digests = {name: hashlib.sha256(archive.read(name)).hexdigest() for name in names - {ARCHIVE_MANIFEST_FILE}}
    assert names == on_disk | {ARCHIVE_MANIFEST_FILE}
    assert manifest == digests
    assert {CRATE_FILE, "_mltoolkit/run.json", "_mltoolkit/submitted/submitted.json"} <= names
    assert any(name.endswith(".pkl.summary.json") for name in names)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("not a run", "no run record"),
        ("missing", "found nothing, expected the folder of a run"),
        ("output is a folder", "is a folder, expected a file name"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(tmp_path, case, fragment):
    workdir, out = tmp_path / "work", tmp_path / "out.zip"
    if case != "missing":
        workdir.mkdir()
    if case == "output is a folder":
        WorkdirLayout(workdir).records.mkdir()
        WorkdirLayout(workdir).run_record.write_text('{"status": "completed", "steps": []}')
        out.mkdir()
    result = CliRunner().invoke(app, ["archive", str(workdir), str(out)])
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and fragment in line
