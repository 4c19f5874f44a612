"""The report: exit rule, text and Markdown tables, atomic files; environment drift; the re-run plan."""

from __future__ import annotations

import json

import pytest

from mltoolkit.errors import ReproductionError
from mltoolkit.preservation.comparison import FileComparison, Verdict
from mltoolkit.preservation.drift import environment_drift
from mltoolkit.preservation.numeric import Tolerance
from mltoolkit.preservation.report import Report, render_text, write_reports
from mltoolkit.preservation.rerun import plan_rerun
from mltoolkit.preservation.sources import Tampered, open_run
from mltoolkit.workdir.record import RunRecord
from tests.mltoolkit.preservation.runs import make_run, sha256


def _report(*verdicts, tampered=()):
    files = [FileComparison(f"out{index}", verdict, "a", "b", f"why {index}") for index, verdict in enumerate(verdicts)]
    return Report("archived", "now", Tolerance(), files, [], list(tampered))


@pytest.mark.parametrize(
    ("verdicts", "tampered", "code"),
    [
        ([Verdict.IDENTICAL, Verdict.WITHIN_TOLERANCE], [], 0),
        ([Verdict.IDENTICAL, Verdict.DIFFERS], [], 1),
        ([Verdict.MISSING], [], 1),
        ([Verdict.IDENTICAL], [Tampered("spec/steps.yml", "a" * 64, "b" * 64, "submitted.json")], 1),
    ],
    ids=["reproduced", "differs", "missing", "tampered-spec"],
)
def test_exit_code_rule(verdicts, tampered, code):
    assert _report(*verdicts, tampered=tampered).exit_code == code


def test_reports_are_written_and_printed(tmp_path):
    report = _report(Verdict.IDENTICAL, Verdict.DIFFERS)
    write_reports(report, tmp_path / "r.json", tmp_path / "r.md", "Reproduction of x")
    written = json.loads((tmp_path / "r.json").read_text())
    assert (written["exit_code"], written["reproduced"]) == (1, False)
    assert written["problems"] == ["out1: why 1"]
    markdown = (tmp_path / "r.md").read_text()
    assert "| out1 | a | b | differs | why 1 |" in markdown
    text = render_text(written)
    assert "NOT reproduced: 1 identical, 1 differs" in text and "  out1: why 1" in text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temporary files left


def test_drift_lists_versions_platform_and_cpu_flags():
    archived = RunRecord(
        status="completed",
        software={"python": "3.7.9", "numpy": "1.18.1"},
        environment={"platform": "Linux-a", "machine": "x86_64", "cpu_flags": ["sse2", "avx"]},
    )
    now = RunRecord(
        status="completed",
        software={"python": "3.11.7", "numpy": "1.18.1", "prefect": "3.9.1"},
        environment={"platform": "Linux-b", "machine": "x86_64", "cpu_flags": ["sse2", "avx512f"]},
    )
    rows = {row.item: (row.archived, row.now, row.changed) for row in environment_drift(archived, now)}
    assert rows["python"] == ("3.7.9", "3.11.7", True)
    assert rows["numpy"][2] is False
    assert rows["prefect"] == ("-", "3.9.1", True)
    assert rows["platform"] == ("Linux-a", "Linux-b", True)
    assert rows["cpu flags"] == ("only here: avx", "only here: avx512f", True)


def _submitted_run(tmp_path, **manifest):
    data = b"X Y Value\n"
    base = {
        "kind": "native",
        "flow": "ml-workflow",
        "inputs": {"dataset": "/gone/moon.txt", "classifiers": ["rbf_svm"]},
        "files": {"data/moon.txt": sha256(data)},
        "datasets": [
            {"name": "moon.txt", "original": "/gone/moon.txt", "path": "data/moon.txt", "sha256": sha256(data)}
        ],
    }
    root = make_run(tmp_path / "run", {"scores.json": b"{}"}, submitted={**base, **manifest})
    (root / "_mltoolkit/submitted/data").mkdir()
    (root / "_mltoolkit/submitted/data/moon.txt").write_bytes(data)
    return root


def test_native_plan_uses_the_kept_dataset_copy(tmp_path):
    with open_run(_submitted_run(tmp_path)) as run:
        plan = plan_rerun(run)
    assert plan.kind == "native"
    assert plan.parameters["dataset"] == str(tmp_path / "run/_mltoolkit/submitted/data/moon.txt")
    assert plan.parameters["classifiers"] == ["rbf_svm"]


def test_spec_plan_uses_the_stored_spec(tmp_path):
    root = _submitted_run(
        tmp_path,
        kind="spec",
        flow="spec-workflow",
        workflow="spec/workflow.yml",
        toplevel="spec",
        inputs={"dataset": "/gone/moon.txt", "classifiers": ["rbf_svm"]},
    )
    (root / "_mltoolkit/submitted/spec").mkdir()
    (root / "_mltoolkit/submitted/spec/workflow.yml").write_text("stages: []\n")
    with open_run(root) as run:
        plan = plan_rerun(run)
    assert plan.parameters["workflow"] == "workflow.yml"
    assert plan.parameters["toplevel"] == str(root / "_mltoolkit/submitted/spec")
    assert plan.parameters["inputs"]["dataset"].endswith("_mltoolkit/submitted/data/moon.txt")


@pytest.mark.parametrize(
    ("manifest", "tamper", "fragment"),
    [
        ({"flow": "mystery-flow"}, False, "flow 'mystery-flow', which reproduce does not know"),
        ({}, True, "a tampered submitted file is never run"),
        (
            {"kind": "spec", "flow": "spec-workflow", "workflow": "spec/missing.yml"},
            False,
            "not in _mltoolkit/submitted",
        ),
    ],
    ids=["unknown-flow", "tampered-dataset", "missing-spec"],
)
def test_plan_refuses_what_cannot_be_rerun(tmp_path, manifest, tamper, fragment):
    root = _submitted_run(tmp_path, **manifest)
    if tamper:
        (root / "_mltoolkit/submitted/data/moon.txt").write_text("changed\n")
    with open_run(root) as run, pytest.raises(ReproductionError, match=fragment):
        plan_rerun(run)


def test_spec_run_without_copies_cannot_be_rerun(tmp_path):
    root = make_run(tmp_path / "run", {"a.json": b"1"}, flow="spec-workflow")
    with open_run(root) as run, pytest.raises(ReproductionError, match="kept no copies of its spec"):
        plan_rerun(run)


@pytest.mark.parametrize(
    ("path", "compared"),
    [
        ("classification_0/rbf_svm.pkl", True),
        ("classification_0/rbf_svm.pkl.summary.json", True),
        ("classification_0/rbf_svm.pkl.sha256", False),
        ("data_prep/_packtivity/data_prep.run.log", False),
        ("map_0/stage1/_packtivity/stage1.script", False),
    ],
)
def test_bookkeeping_is_verified_but_not_compared(path, compared):
    from mltoolkit.preservation.reproduction import is_result

    assert is_result(path) is compared
