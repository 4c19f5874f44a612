"""Code digests, library versions, Docker image ids and bounded file hashing."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from mltoolkit.errors import HashingTimeoutError
from mltoolkit.preservation import code_digest, code_digest_leaving_out, installed_version, library_versions
from mltoolkit.workdir.artifacts import FileHasher

CLASSIFIERS_SOURCE = '''"""A registry."""


def _nearest_neighbours():
    return ("knn", 3)


def _linear_svm():
    return ("svm", 0.025)


SEED = {"nearest_neighbours": _nearest_neighbours, "linear_svm": _linear_svm}
'''


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A small package: two modules, data, and what is no code (bytecode, hidden files)."""
    root = tmp_path / "pkg"
    (root / "analysis" / "__pycache__").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "analysis" / "classifiers.py").write_text(CLASSIFIERS_SOURCE)
    (root / "analysis" / "data.txt").write_text("1 2 3\n")
    (root / "analysis" / "__pycache__" / "classifiers.cpython-311.pyc").write_bytes(b"bytecode")
    (root / ".hidden").write_text("editor state")
    return root


def test_code_digest_covers_sources_and_data_and_names_each_file(package):
    digest = code_digest({"pkg": package})
    assert set(digest.files) == {"pkg/__init__.py", "pkg/analysis/classifiers.py", "pkg/analysis/data.txt"}
    assert digest.files["pkg/analysis/data.txt"] == hashlib.sha256(b"1 2 3\n").hexdigest()
    assert code_digest({"pkg": package}) == digest


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        (lambda root: (root / "analysis" / "data.txt").write_text("4 5 6\n"), ["pkg/analysis/data.txt"]),
        (lambda root: (root / "analysis" / "new.py").write_text("x = 1\n"), ["pkg/analysis/new.py"]),
        (lambda root: (root / "__init__.py").unlink(), ["pkg/__init__.py"]),
    ],
    ids=["data changed", "module added", "module removed"],
)
def test_code_digest_changes_with_any_file_and_names_it(package, change, changed):
    before = code_digest({"pkg": package})
    change(package)
    after = code_digest({"pkg": package})
    assert after.digest != before.digest
    assert after.changed_files(before.files) == changed


def test_bytecode_hidden_files_and_links_are_no_code(package, tmp_path):
    before = code_digest({"pkg": package})
    (package / "analysis" / "__pycache__" / "classifiers.cpython-311.pyc").write_bytes(b"other bytecode")
    (package / ".hidden").write_text("other editor state")
    (tmp_path / "elsewhere.py").write_text("import os\n")
    (package / "linked.py").symlink_to(tmp_path / "elsewhere.py")
    assert code_digest({"pkg": package}) == before


def test_functions_a_step_cannot_run_are_left_out_of_its_code(package):
    others = {"pkg/analysis/classifiers.py": {"_linear_svm"}}  # a step that trains nearest_neighbours
    before = code_digest({"pkg": package}, others)
    source = package / "analysis" / "classifiers.py"

    source.write_text(CLASSIFIERS_SOURCE.replace('("svm", 0.025)', '("svm", 1.0)'))
    assert code_digest({"pkg": package}, others) == before  # another classifier's builder changed

    source.write_text(CLASSIFIERS_SOURCE.replace('("knn", 3)', '("knn", 25)'))
    after = code_digest({"pkg": package}, others)
    assert after.changed_files(before.files) == ["pkg/analysis/classifiers.py"]

    source.write_text(CLASSIFIERS_SOURCE.replace('SEED = {"nearest', 'EXTRA = 1\nSEED = {"nearest'))
    assert code_digest({"pkg": package}, others).digest != before.digest  # module-level code always counts


def test_comments_are_no_code_of_a_module_with_functions_left_out(package):
    others = {"pkg/analysis/classifiers.py": {"_linear_svm"}}
    before = code_digest({"pkg": package}, others)
    source = package / "analysis" / "classifiers.py"
    source.write_text(CLASSIFIERS_SOURCE.replace("def _linear_svm", "# a comment\ndef _linear_svm"))
    assert code_digest({"pkg": package}, others) == before
    source.write_text(CLASSIFIERS_SOURCE.replace('"""A registry."""', '"""Another registry."""'))
    assert code_digest({"pkg": package}, others) != before  # a docstring is part of the code


@pytest.mark.parametrize(
    "leave_out",
    [
        {},
        {"pkg/analysis/classifiers.py": {"_linear_svm"}},
        {"pkg/analysis/classifiers.py": {"_linear_svm", "_nearest_neighbours"}},
        {"pkg/analysis/classifiers.py": set()},
        {"pkg/analysis/missing.py": {"_linear_svm"}, "other/classifiers.py": {"_linear_svm"}},
    ],
    ids=["nothing", "one function", "both", "no function", "files not in the packages"],
)
def test_leaving_out_functions_from_the_whole_digest_is_the_same_as_digesting_again(package, leave_out):
    whole = code_digest({"pkg": package})
    assert code_digest_leaving_out(whole, {"pkg": package}, leave_out) == code_digest({"pkg": package}, leave_out)


def test_installed_version_is_the_distributions_version():
    from importlib.metadata import version

    for name in ("numpy", "scikit-learn", "Scikit_Learn", "prefect"):
        assert installed_version(name) == version(name)
    assert installed_version("surely-not-an-installed-package") is None


def test_library_versions_name_python_and_each_library():
    versions = library_versions(["numpy", "surely-not-an-installed-package"])
    assert versions["python"].count(".") == 2
    assert versions["numpy"][0].isdigit()
    assert versions["surely-not-an-installed-package"] == "not installed"


# --- hashing: regular files only, within a deadline --------------------------------------------


def test_hasher_digests_regular_files_and_follows_links_to_them(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"content")
    (tmp_path / "link").symlink_to(path)
    hasher = FileHasher()
    assert hasher.digest(path) == hasher.digest(tmp_path / "link") == hashlib.sha256(b"content").hexdigest()
    assert hasher.digest(tmp_path / "missing") is None
    assert hasher.digest(tmp_path) is None


@pytest.mark.timeout(60)
def test_hasher_never_opens_a_fifo_or_a_device(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "zero").symlink_to("/dev/zero")
    hasher = FileHasher()
    assert hasher.digest(fifo) is None  # opening it for reading would wait for a writer forever
    assert hasher.digest(tmp_path / "zero") is None  # reading it would never end
    assert hasher.digest("/dev/null") is None


@pytest.mark.timeout(120)
def test_hashing_a_huge_sparse_file_stops_at_the_deadline(tmp_path):
    huge = tmp_path / "sparse.bin"
    with open(huge, "wb") as handle:
        handle.truncate(64 << 30)  # 64 GiB of holes: minutes to hash, no disk used
    with pytest.raises(
        HashingTimeoutError, match=r"hashing .*sparse\.bin did not finish within the step timeout \(1 s\)"
    ):
        FileHasher.within(1.0).digest(huge)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_hasher_returns_nothing_for_an_unreadable_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("private")
    secret.chmod(0)
    assert FileHasher().digest(secret) is None


def test_hasher_remembers_digests_until_the_file_changes(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("one")
    hasher = FileHasher()
    first = hasher.digest(path)
    shutil.copyfile(path, tmp_path / "copy.txt")
    path.write_text("two, longer")
    assert hasher.digest(path) != first
    assert hasher.digest(tmp_path / "copy.txt") == first
