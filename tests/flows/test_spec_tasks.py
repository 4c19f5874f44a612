"""The spec step task: it runs in a clean folder, and never removes anything outside the work directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.constants import SPECS


def _planned_step(folder: Path):
    """A planned step of the trust spec's ``write_step`` whose folder is ``folder``, built directly."""
    from mltoolkit.yadage import load_step_ref, validate_step
    from mltoolkit.yadage.planner import PlannedStep

    step = validate_step(load_step_ref("steps.yml#/write_step", SPECS / "trust"))
    parameters = {"message": "hello", "outfile": f"{folder}/out.txt"}
    return PlannedStep("/escape", "", "escape", None, "escape", folder, parameters, step)


def _run(planned, root: Path):
    from prefect.cache_policies import NO_CACHE

    from flows.spec_tasks import run_spec_step, step_identity
    from mltoolkit.yadage import StepOptions

    options = StepOptions()
    task = run_spec_step.with_options(cache_policy=NO_CACHE)
    return task("escape", step_identity(planned, options), planned, options, str(root))


def _escaping_folder(case: str, root: Path, outside: Path) -> Path:
    if case == "a sibling folder":
        return outside
    if case == "the work directory itself":
        return root
    if case == "a path with '..'":
        return root / ".." / outside.name
    link = root / "link"  # inside the work directory, leading out of it
    link.symlink_to(outside, target_is_directory=True)
    # the step's folder behind the link: there already, or yet to be made (it must not be made there)
    return link / ("step" if case == "a link leading out" else "new step")


@pytest.mark.parametrize(
    "case",
    [
        "a sibling folder",
        "the work directory itself",
        "a path with '..'",
        "a link leading out",
        "a link leading out to a folder not made yet",
    ],
)
def test_a_step_folder_outside_the_work_directory_is_refused_and_nothing_is_removed(
    case, prefect_api, snapshot, tmp_path
):
    from mltoolkit.errors import WorkdirError

    root, outside = tmp_path / "run", tmp_path / "outside"
    for folder in (root, outside, outside / "step"):
        folder.mkdir()
        (folder / "keep.txt").write_text(f"a file in {folder.name}\n")
    planned = _planned_step(_escaping_folder(case, root, outside))
    before = snapshot(tmp_path)
    with pytest.raises(WorkdirError, match="is not strictly inside the work directory"):
        _run(planned, root)
    assert snapshot(tmp_path) == before


def test_a_step_runs_in_a_clean_folder_inside_the_work_directory(prefect_api, tmp_path):
    root = tmp_path / "run"
    folder = root / "escape"
    folder.mkdir(parents=True)
    (folder / "left-over.pkl").write_text("an earlier attempt's file\n")
    outcome = _run(_planned_step(folder), root)
    assert not (folder / "left-over.pkl").exists()
    assert (folder / "out.txt").read_text() == "hello\n"
    assert outcome.published == {"written": str(folder / "out.txt")}
    assert "escape/out.txt" in outcome.files and outcome.root == str(root)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/old/run/a.txt", "/new/place/a.txt"),
        ("/old/run", "/new/place"),
        ("/old/running/a.txt", "/old/running/a.txt"),  # another folder that only starts alike
        ({"files": ["/old/run/x", 3], "name": "x"}, {"files": ["/new/place/x", 3], "name": "x"}),
    ],
)
def test_published_paths_move_with_a_relocated_work_directory(value, expected):
    from flows.spec_tasks import relocated

    assert relocated(value, "/old/run", "/new/place") == expected
