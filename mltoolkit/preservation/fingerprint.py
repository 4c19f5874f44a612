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
from email.parser import HeaderParser
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from mltoolkit.workdir.artifacts import FileHasher

__all__ = [
    "SCIENTIFIC_LIBRARIES",
    "CodeDigest",
    "code_digest",
    "code_digest_leaving_out",
    "installed_version",
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


@lru_cache(maxsize=64)
def _top_level_statements(source: bytes, filename: str) -> tuple[tuple[str | None, str], ...]:
    """Each top-level statement of a module's code: (its name when a function, sha256 of its code)."""
    with _AST_LOCK:
        body = ast.parse(source, filename=filename).body
        return tuple(
            (
                node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None,
                hashlib.sha256(ast.unparse(node).encode()).hexdigest(),
            )
            for node in body
        )


def _digest_without(path: Path, functions: Collection[str]) -> str:
    """sha256 of a module's code with the named top-level functions left out (comments are no code either).

    A module is parsed once per content: each step of a flow leaves out other functions of the same file.
    """
    statements = _top_level_statements(path.read_bytes(), str(path))
    kept = [digest for name, digest in statements if name is None or name not in functions]
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()


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
    return _code_digest_of(files)


def _code_digest_of(files: dict[str, str]) -> CodeDigest:
    return CodeDigest(hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest(), files)


def code_digest_leaving_out(
    whole: CodeDigest, packages: Mapping[str, str | os.PathLike[str]], leave_out: Mapping[str, Collection[str]]
) -> CodeDigest:
    """``code_digest(packages, leave_out)``, given ``whole = code_digest(packages)``: only the files named are read.

    A flow's steps each leave out other functions of the same few files; this
    spares them walking and hashing every package again.
    """
    files = dict(whole.files)
    for relative, functions in leave_out.items():
        package, _, inside = relative.partition("/")
        if functions and relative in files and package in packages:
            files[relative] = _digest_without(Path(packages[package]) / inside, functions)
    return _code_digest_of(files)


@cache
def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (read once per process), ``None`` when it is not installed.

    Only the metadata's headers are parsed: ``importlib.metadata.version`` parses the
    whole file, long description included (~2 ms for some libraries).
    """
    try:
        found = distribution(name)
    except PackageNotFoundError:
        return None
    text = found.read_text("METADATA") or found.read_text("PKG-INFO") or ""
    return HeaderParser().parsestr(text).get("Version") or found.version


def library_versions(names: Iterable[str] = SCIENTIFIC_LIBRARIES) -> dict[str, str]:
    """``{"python": "3.11.7", "numpy": ..., ...}``; a library that is not installed is ``"not installed"``."""
    versions = {"python": platform.python_version()}
    for name in names:
        versions[name] = installed_version(name) or "not installed"
    return versions
