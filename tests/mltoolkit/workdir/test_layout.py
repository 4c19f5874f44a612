"""The work directory's layout: every ``_mltoolkit`` path from one place; deletions stay inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mltoolkit.errors import WorkdirError
from mltoolkit.workdir.layout import (
    BOOKKEEPING_DIRS,
    CACHE_DIR,
    KEYS_DIR,
    LOCK_FILE,
    RECORDS_DIR,
    RUN_RECORD_FILE,
    STEP_PRIVATE_DIR,
    WorkdirLayout,
    inside_workdir,
    remove_tree,
    step_private_dir,
)


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A work directory with a step folder and a file in it, next to a folder that must survive."""
    root = tmp_path / "work"
    (root / "data_prep").mkdir(parents=True)
    (root / "data_prep" / "prepped_data.pkl").write_bytes(b"prepped")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.txt").write_text("keep me")
    return root


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attribute, relative",
    [
        ("records", RECORDS_DIR),
        ("run_record", RUN_RECORD_FILE),
        ("lock", LOCK_FILE),
        ("cache", CACHE_DIR),
        ("cache_keys", KEYS_DIR),
        ("init", "init"),
        ("crate", "ro-crate-metadata.json"),
    ],
)
def test_every_path_is_under_the_resolved_root(tmp_path, attribute, relative):
    layout = WorkdirLayout(tmp_path / "a" / ".." / "work")

    assert layout.root == (tmp_path / "work").resolve()
    assert getattr(layout, attribute) == layout.root / relative


def test_records_live_in_one_folder_that_is_bookkeeping():
    for relative in (RUN_RECORD_FILE, LOCK_FILE, CACHE_DIR, KEYS_DIR):
        assert Path(relative).parts[0] == RECORDS_DIR
    assert {RECORDS_DIR, STEP_PRIVATE_DIR} <= BOOKKEEPING_DIRS


def test_cache_key_records_are_files_under_cache_keys_whatever_the_step_id(tmp_path):
    layout = WorkdirLayout(tmp_path)
    paths = [layout.step_key(step_id) for step_id in ("/data_prep", "/map/0/stage1", "/../../etc", "")]

    assert len(set(paths)) == len(paths)
    for path in [*paths, layout.code_files("ab" * 32), layout.cache_reasons, layout.pruned_results]:
        assert path.is_relative_to(layout.cache_keys) and ".." not in path.relative_to(layout.cache_keys).parts


def test_pictures_and_private_folders(tmp_path):
    layout = WorkdirLayout(tmp_path)

    assert layout.picture("svg") == layout.records / "workflow.svg"
    assert step_private_dir(tmp_path / "data_prep") == tmp_path / "data_prep" / STEP_PRIVATE_DIR


def test_relative_names_paths_inside_and_keeps_outside_ones_absolute(tmp_path):
    layout = WorkdirLayout(tmp_path / "work")

    assert layout.relative(tmp_path / "work" / "data_prep" / "x.pkl") == "data_prep/x.pkl"
    assert layout.relative(tmp_path / "elsewhere.txt") == str((tmp_path / "elsewhere.txt").resolve())


# --- inside_workdir and remove_tree --------------------------------------------------------


@pytest.mark.parametrize("path", [".", "..", "data_prep/../..", "/", "/tmp", "../outside"])
def test_inside_workdir_refuses_the_root_and_anything_outside(workdir, path):
    with pytest.raises(WorkdirError, match="not strictly inside the work directory") as raised:
        inside_workdir(workdir, path, what="step folder")
    assert str(raised.value).startswith(f"step folder {path!r} resolves to ")
    assert "\n" not in str(raised.value)


def test_inside_workdir_accepts_relative_and_absolute_paths_inside(workdir):
    expected = (workdir / "data_prep").resolve()

    assert inside_workdir(workdir, "data_prep") == expected
    assert inside_workdir(workdir, workdir / "data_prep") == expected
    assert inside_workdir(workdir, workdir / "new" / "not yet written") == expected.parent / "new" / "not yet written"


def test_inside_workdir_with_a_root_already_resolved_gives_the_same_answer_and_fails_closed(tmp_path, workdir):
    base = workdir.resolve()
    assert inside_workdir(base, "data_prep", root_resolved=True) == inside_workdir(workdir, "data_prep")
    link = tmp_path / "link to work"
    link.symlink_to(workdir)
    # a root said to be resolved that is not: what is inside it resolves elsewhere, so it is refused
    with pytest.raises(WorkdirError, match="not strictly inside"):
        inside_workdir(link, link / "data_prep", root_resolved=True)


def test_inside_workdir_resolves_a_symlink_that_points_out(workdir):
    (workdir / "escape").symlink_to(workdir.parent / "outside")

    with pytest.raises(WorkdirError, match="outside"):
        inside_workdir(workdir, workdir / "escape" / "precious.txt")


@pytest.mark.parametrize("path", [".", "..", "../outside", "data_prep/../..", "/"])
def test_remove_tree_refuses_and_deletes_nothing(workdir, path):
    before = sorted(workdir.parent.rglob("*"))

    with pytest.raises(WorkdirError):
        remove_tree(workdir, path)

    assert sorted(workdir.parent.rglob("*")) == before


def test_remove_tree_removes_folders_and_files_inside(workdir):
    (workdir / "scores.json").write_text("{}")

    remove_tree(workdir, workdir / "data_prep")
    remove_tree(workdir, "scores.json", what="file")
    remove_tree(workdir, "never written")  # nothing there: nothing to do

    assert sorted(path.name for path in workdir.iterdir()) == []


def test_remove_tree_unlinks_a_symlink_without_following_it(workdir):
    outside = workdir.parent / "outside"
    (workdir / "link to outside").symlink_to(outside)
    (workdir / "data_prep" / "link to file").symlink_to(outside / "precious.txt")

    remove_tree(workdir, workdir / "link to outside")
    remove_tree(workdir, workdir / "data_prep")  # holds a link out: the link goes, not its target

    assert not (workdir / "link to outside").exists() and not (workdir / "data_prep").exists()
    assert (outside / "precious.txt").read_text() == "keep me"


def test_remove_tree_refuses_a_path_through_a_symlinked_folder_that_points_out(workdir):
    outside = workdir.parent / "outside"
    (workdir / "escape").symlink_to(outside)
    (outside / "inner link").symlink_to(outside / "precious.txt")

    for path in (workdir / "escape" / "precious.txt", workdir / "escape" / "inner link"):
        with pytest.raises(WorkdirError, match="not strictly inside"):
            remove_tree(workdir, path)

    assert (outside / "precious.txt").read_text() == "keep me"
    assert (outside / "inner link").is_symlink()


def test_remove_tree_refuses_a_work_directory_that_is_itself_a_link(tmp_path, workdir):
    link = tmp_path / "link to work"
    link.symlink_to(workdir)

    with pytest.raises(WorkdirError):
        remove_tree(link, link)

    assert os.path.islink(link) and (workdir / "data_prep" / "prepped_data.pkl").is_file()
