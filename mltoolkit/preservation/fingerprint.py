"""The parts of a result's fingerprint that are not its inputs: code, libraries, image, and file hashing.

A cached result may only be reused when everything that made it is unchanged.
Besides a step's inputs (:mod:`mltoolkit.preservation.inputs`) that is

* the **code**: every source and data file of the toolkit's own packages
  (:func:`code_digest`, with the per-file digests kept, so that a changed key
  can name the changed file);
* the **libraries** the analysis uses, and Python itself (:func:`library_versions`);
* for a step run in Docker, the **image** it ran in (its id, asked of the engine by the step runner).

Files are hashed by :class:`~mltoolkit.workdir.artifacts.FileHasher`, which
opens regular files only (a FIFO blocks, ``/dev/zero`` never ends) and stops at
a deadline, so that hashing is covered by a step's timeout.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import stat
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mltoolkit.workdir.artifacts import FileHasher

__all__ = [
    "SCIENTIFIC_LIBRARIES",
    "CodeDigest",
    "code_digest",
    "library_versions",
]

#: The libraries whose version can change the analysis' results (Python is always added).
SCIENTIFIC_LIBRARIES: tuple[str, ...] = ("numpy", "scipy", "scikit-learn", "matplotlib", "cloudpickle")

#: Folders and file endings inside a package that are no code: bytecode caches, build metadata.
_SKIPPED_FOLDERS = frozenset({"__pycache__"})
_SKIPPED_ENDINGS = (".pyc", ".pyo", ".tmp", ".egg-info")


@dataclass(frozen=True)
class CodeDigest:
    """The toolkit's code: one digest, and the sha256 of each file (``mltoolkit/analysis/ml.py`` -> sha256)."""

    digest: str
    files: Mapping[str, str] = field(default_factory=dict)

    def changed_files(self, other: Mapping[str, str]) -> list[str]:
        """Files added, removed or changed between ``other`` (older per-file digests) and these."""
        names = set(self.files) | set(other)
        return sorted(name for name in names if self.files.get(name) != other.get(name))


def _package_files(name: str, folder: Path) -> Iterable[tuple[str, Path]]:
    for current, folders, files in os.walk(folder):
        folders[:] = sorted(
            entry
            for entry in folders
            if entry not in _SKIPPED_FOLDERS and not entry.startswith(".") and not entry.endswith(_SKIPPED_ENDINGS)
        )
        here = Path(current)
        for entry in sorted(files):
            if entry.startswith(".") or entry.endswith(_SKIPPED_ENDINGS):
                continue
            path = here / entry
            if stat.S_ISREG(path.lstat().st_mode):
                yield f"{name}/{path.relative_to(folder).as_posix()}", path


#: ``ast.parse`` is not thread-safe in CPython 3.11 ("AST constructor recursion depth mismatch").
_AST_LOCK = threading.Lock()


def _digest_without(path: Path, functions: Collection[str]) -> str:
    """sha256 of a module's code with the named top-level functions left out (comments are no code either)."""
    source = path.read_bytes()
    with _AST_LOCK:
        tree = ast.parse(source, filename=str(path))
        tree.body = [
            node
            for node in tree.body
            if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in functions)
        ]
        code = ast.unparse(tree)
    return hashlib.sha256(code.encode()).hexdigest()


def code_digest(
    packages: Mapping[str, str | os.PathLike[str]], leave_out: Mapping[str, Collection[str]] | None = None
) -> CodeDigest:
    """The digest of every source and data file of ``packages`` (name -> folder).

    Files are named ``<package>/<path inside it>``; bytecode caches, hidden files
    and symbolic links are left out. ``leave_out`` names, per file, top-level
    functions a step cannot run (e.g. the registry's builders of the classifiers
    it does not train): that file is then digested without them.
    """
    hasher = FileHasher()
    files: dict[str, str] = {}
    for name, folder in sorted(packages.items()):
        for relative, path in _package_files(name, Path(folder)):
            functions = (leave_out or {}).get(relative)
            digest = _digest_without(path, functions) if functions else hasher.digest(path)
            if digest is not None:
                files[relative] = digest
    overall = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return CodeDigest(overall, files)


def library_versions(names: Iterable[str] = SCIENTIFIC_LIBRARIES) -> dict[str, str]:
    """``{"python": "3.11.7", "numpy": ..., ...}``; a library that is not installed is ``"not installed"``."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions
