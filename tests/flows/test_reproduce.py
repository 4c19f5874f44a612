"""``python -m flows.reproduce`` / ``mltoolkit reproduce`` end to end.

The session's native run, archived and reproduced from the zip in another folder,
exits 0; with ``KNeighborsClassifier(25)`` in a copy of the toolkit's code it
exits 1 naming the changed score and the figure's changed share; a tampered
archive is reported; bad sources end as one line before any flow run.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from mltoolkit.preservation.archive import write_archive
from tests.constants import REPO_ROOT


def _reproduce(run_cli, env, source, workdir, *extra, cwd=None):
    return run_cli(["-m", "flows.reproduce", str(source), "--workdir", str(workdir), *extra], env, cwd=cwd)


@pytest.fixture(scope="module")
def archived_native(shared_run, tmp_path_factory) -> Path:
    """The session's native run as an archive zip, in a folder of its own (as if moved to another machine)."""
    run = shared_run("native")
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    return write_archive(run.workdir, tmp_path_factory.mktemp("moved") / "native run.zip").path


def test_archived_native_run_reproduces(run_cli, cli_env, flow_cli, archived_native, tmp_path):
    result = flow_cli.check(_reproduce(run_cli, cli_env, archived_native, tmp_path / "again"))
    report = json.loads((tmp_path / "again/_mltoolkit/reproduction.json").read_text())
    assert report["exit_code"] == 0 and report["tampered"] == []
    verdicts = {row["output"]: row["verdict"] for row in report["outputs"]}
    assert set(verdicts.values()) <= {"identical", "within tolerance"}
    assert verdicts["scores.json"] == "identical"
    assert "merge_and_visualize/ml_results.png" in verdicts
    assert (
        "reproduced:" in result.stdout
        and "| scores.json |" in (tmp_path / "again/_mltoolkit/reproduction.md").read_text()
    )


def _toolkit_copy_with(folder: Path, old: str, new: str) -> Path:
    """A copy of the toolkit's code in ``folder`` with ``old`` replaced by ``new`` in its classifier registry."""
    for package in ("mltoolkit", "flows"):
        shutil.copytree(REPO_ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    registry = folder / "mltoolkit/analysis/classifiers.py"
    text = registry.read_text()
    assert old in text
    registry.write_text(text.replace(old, new))
    return folder


@pytest.mark.slow
def test_changed_classifier_is_named(run_cli, cli_env, archived_native, tmp_path):
    code = _toolkit_copy_with(tmp_path / "code", "KNeighborsClassifier(3)", "KNeighborsClassifier(25)")
    env = {**cli_env, "PYTHONPATH": str(code)}
    result = _reproduce(run_cli, env, archived_native, tmp_path / "again", cwd=code)  # the folder comes first
    assert result.returncode == 1, result.stderr[-3000:]
    assert "nearest_neighbours 0.975 -> 0.90" in result.stdout
    assert "NOT reproduced" in result.stdout
    report = json.loads((tmp_path / "again/_mltoolkit/reproduction.json").read_text())
    figure = next(row for row in report["outputs"] if row["output"].endswith("ml_results.png"))
    assert figure["verdict"] == "differs" and "of pixels differ, columns" in figure["detail"]
    assert Path(figure["diff_image"]).is_file()


def test_tampered_archive_is_reported(run_cli, cli_env, archived_native, tmp_path):
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archived_native) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data.replace(b"0.975", b"0.999") if info.filename == "scores.json" else data)
    result = _reproduce(run_cli, cli_env, tampered, tmp_path / "again")
    assert result.returncode == 1
    assert "scores.json" in result.stdout and "tampered" in result.stdout


@pytest.mark.parametrize("case", ["not-a-run", "foreign-crate", "corrupt-zip", "unknown-flow"])
def test_bad_source_is_one_line(run_cli, offline_env, flow_cli, shared_run, tmp_path, case):
    source = tmp_path / case
    if case == "corrupt-zip":
        source = tmp_path / "broken.zip"
        source.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    else:
        source.mkdir()
    if case == "foreign-crate":
        (source / "ro-crate-metadata.json").write_text('{"@graph": []}')
    if case == "unknown-flow":
        shutil.copytree(shared_run("native").workdir / "_mltoolkit", source / "_mltoolkit", dirs_exist_ok=True)
        manifest = source / "_mltoolkit/submitted/submitted.json"
        manifest.write_text(manifest.read_text().replace('"ml-workflow"', '"mystery-flow"'))
    result = _reproduce(run_cli, offline_env, source, tmp_path / "again")
    fragments = {
        "not-a-run": "not a run directory",
        "foreign-crate": "without mltoolkit's records",
        "corrupt-zip": "zip",
        "unknown-flow": "'mystery-flow', which reproduce does not know",
    }
    flow_cli.assert_error_line(result, fragments[case])
    assert not (tmp_path / "again" / "_mltoolkit").exists()


def test_workdir_must_be_fresh(run_cli, offline_env, flow_cli, archived_native, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    flow_cli.assert_error_line(_reproduce(run_cli, offline_env, archived_native, tmp_path / "used"), "not empty")


@pytest.mark.slow
def test_seed_spec_run_reproduces_from_its_stored_spec(run_cli, cli_env, flow_cli, shared_run, tmp_path):
    run = shared_run("seed-spec")
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    result = flow_cli.check(_reproduce(run_cli, cli_env, run.workdir, tmp_path / "again"))
    report = json.loads((tmp_path / "again/_mltoolkit/reproduction.json").read_text())
    outputs = [row["output"] for row in report["outputs"]]
    assert "merge_and_visualize/ml_results.png" in outputs
    assert not [name for name in outputs if "_packtivity" in name or name.endswith(".sha256")]  # bookkeeping
    assert "reproduced:" in result.stdout
    record = json.loads((tmp_path / "again/_mltoolkit/run.json").read_text())
    assert "_mltoolkit/submitted/spec" in record["workflow"]["toplevel"]  # the copy kept with the run, not today's
