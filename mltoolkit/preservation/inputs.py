"""A step's parameters as a JSON value that changes exactly when what the step reads changes.

Values are taken as they are, except paths: a file counts by the sha256 of its
content, a folder or a glob by the files it holds or matches. Paths inside the
work directory are written relative to it, so a copied or moved work directory
keeps its keys.

What is hashed is bounded, because parameters can come from anyone who wrote a
spec or an upstream step's output:

* inside the work directory, only what stays inside it: a link leading out of
  it is named, never followed;
* outside the work directory, only the *named inputs* (the run's own inputs: the
  dataset, init values, image-map folders); any other path is just text;
* only regular files are opened -- a FIFO, a device or a socket is named by its
  kind, never read -- and hashing stops at the step's deadline
  (:class:`~mltoolkit.preservation.fingerprint.FileHasher`).

Paths inside the toolkit's own packages (the step scripts an image map mounts)
are named by their place in the toolkit: their content is the code digest's,
and a key must not change because the toolkit is installed elsewhere.
"""

from __future__ import annotations

import dataclasses
import functools
import glob as globbing
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mltoolkit.workdir.artifacts import FileHasher
from mltoolkit.workdir.layout import BOOKKEEPING_DIRS

__all__ = ["Fingerprinter"]

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
#: What a folder or glob entry is, when it is not a readable regular file.
LINK_OUT = "link leading out"
SPECIAL = "not a regular file"
UNREADABLE = "unreadable"


def _inner(path: str, folder: str) -> str | None:
    """``path`` below ``folder`` (``.`` for the folder itself), ``None`` when outside; both absolute and normalized."""
    if path == folder:
        return "."
    prefix = folder if folder.endswith(os.sep) else folder + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else None


@functools.lru_cache(maxsize=8)
def _resolved_roots(roots: tuple[tuple[str, str], ...]) -> dict[str, Path]:
    """The toolkit's package folders resolved, once per process (not once per step of a scatter)."""
    return {name: Path(folder).resolve() for name, folder in roots}


class Fingerprinter:
    """Fingerprints of one step's parameters (:meth:`of`), and the files that entered them (:attr:`files`).

    Args:
        workdir: the run's work directory.
        own_dir: the step's own folder: paths in it are its outputs, named but not read.
        named: paths outside the work directory that may be read (the run's named inputs).
        hasher: hashes files (and holds the deadline).
        code_roots: the toolkit's packages (name -> folder), whose files the code digest covers.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        own_dir: str | os.PathLike[str] | None = None,
        named: Iterable[str | os.PathLike[str]] = (),
        hasher: FileHasher | None = None,
        code_roots: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> None:
        self.root = Path(workdir).resolve()
        roots = tuple((name, os.fspath(folder)) for name, folder in (code_roots or {}).items())
        self.code_roots = _resolved_roots(roots)
        self.own = Path(os.path.normpath(own_dir)) if own_dir is not None else None
        # the same as text: every absolute string of a step's parameters and spec is compared with them
        self._own_text = str(self.own) if self.own is not None else None
        self._code_texts = tuple((name, str(folder)) for name, folder in self.code_roots.items())
        self.named = tuple(Path(os.path.normpath(path)) for path in named if os.path.isabs(path))
        self.hasher = hasher or FileHasher()
        #: Every file whose content entered a fingerprint: place (workdir-relative or absolute) -> sha256.
        self.files: dict[str, str] = {}

    def of(self, value: Any) -> Any:
        """``value`` as a JSON-ready fingerprint.

        Raises:
            HashingTimeoutError: the hasher's deadline passed.
        """
        # Plain JSON values first (a step's spec is a few hundred of them), by exact type:
        # the general checks below (dataclass, model, abstract Mapping) cost more than the work.
        kind = type(value)
        if kind is str:
            return self._text(value)
        if kind is dict:
            return self._of_mapping(value)
        if kind is list:
            return [self.of(item) for item in value]
        if kind is int or kind is float or kind is bool or value is None:
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if hasattr(value, "sha256") and hasattr(value, "path"):  # a FileRef: its content is what counts
                self.files[str(value.path)] = str(value.sha256)
                return {"file_sha256": value.sha256}
            fields = {field.name: self.of(getattr(value, field.name)) for field in dataclasses.fields(value)}
            return {"type": type(value).__qualname__, **fields}
        if hasattr(value, "model_dump"):
            return self.of(value.model_dump())
        if isinstance(value, Mapping):
            return self._of_mapping(value)
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
            return [self.of(item) for item in items]
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return repr(value)

    def _of_mapping(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        return {str(key): self.of(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}

    def parameters(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        """Each parameter's fingerprint, and the files behind each (``{name: {place: sha256}}``).

        Raises:
            HashingTimeoutError: the hasher's deadline passed.
        """
        fingerprints: dict[str, Any] = {}
        files: dict[str, dict[str, str]] = {}
        for name, value in sorted(values.items()):
            before = dict(self.files)
            self.files = {}
            fingerprints[name] = self.of(value)
            if self.files:
                files[name] = self.files
            self.files = {**before, **self.files}
        return fingerprints, files

    def _place(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def _named_boundary(self, path: Path) -> Path | None:
        for named in self.named:
            if path == named or path.is_relative_to(named):
                return named
        return None

    def _text(self, text: str) -> Any:
        if "://" in text or len(text) > 4096 or "\n" in text or "\x00" in text or not os.path.isabs(text):
            return text
        normal = os.path.normpath(text)
        path = Path(normal)
        if self._own_text is not None and _inner(normal, self._own_text) is not None:
            return {"workdir_path": self._place(path)}
        for name, folder in self._code_texts:
            inner = _inner(normal, folder)
            if inner is not None:
                return {"toolkit_path": name if inner == "." else f"{name}/{inner}"}
        inside = path.is_relative_to(self.root)
        if not inside and self._named_boundary(path) is None:
            return text  # not the run's input: never read
        real = Path(os.path.realpath(path))  # realpath: a link loop is no error
        if inside and not real.is_relative_to(self.root):
            return {"link_leading_out": self._place(path)}
        try:
            info = os.stat(real)
        except OSError:
            if _GLOB_CHARACTERS.search(text):
                return self._glob(text, path)
            return {"workdir_path": self._place(path)} if inside else text
        if stat.S_ISREG(info.st_mode):
            digest = self.hasher.digest(real)
            if digest is None:
                return {UNREADABLE: self._place(path)}
            self.files[self._place(path)] = digest
            return {"file_sha256": digest}
        if stat.S_ISDIR(info.st_mode):
            return {"folder": self._place(path), "files": self._tree(real, self.root if inside else real)}
        return {"special_file": self._place(path)}

    def _entry(self, path: Path, boundary: Path) -> str | None:
        """The digest (or kind) of one folder or glob entry; ``None`` for a folder."""
        self.hasher.check_deadline(path)
        real = Path(os.path.realpath(path))  # a link, or a linked folder on the way, may lead out
        if not real.is_relative_to(boundary):
            return LINK_OUT
        try:
            info = os.stat(real)
        except OSError:
            return UNREADABLE
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode):
            return SPECIAL
        digest = self.hasher.digest(real)
        if digest is None:
            return UNREADABLE
        self.files[self._place(path)] = digest
        return digest

    def _tree(self, folder: Path, boundary: Path) -> dict[str, str]:
        """``{place: sha256 or kind}`` of the files under ``folder``, without bookkeeping or the step's own folder.

        Bookkeeping is no input: the toolkit's records, step logs and Python's
        bytecode caches (written on import, e.g. under image-mapped script folders).
        Linked folders are not entered.
        """
        digests: dict[str, str] = {}
        for current, folders, files in os.walk(folder):
            here = Path(current)
            folders[:] = sorted(
                name
                for name in folders
                if name not in BOOKKEEPING_DIRS and not name.startswith(".") and here / name != self.own
            )
            for name in sorted(files):
                if not name.startswith("."):
                    entry = self._entry(here / name, boundary)
                    if entry is not None:
                        digests[self._place(here / name)] = entry
        return digests

    def _glob(self, text: str, path: Path) -> dict[str, Any]:
        """A glob (the seed's merge step gets ``'<folder>/*.pkl'`` for its shell): the files it matches."""
        boundary = self.root if path.is_relative_to(self.root) else self._named_boundary(path) or path
        files: dict[str, str] = {}
        for match in sorted(globbing.glob(text)):
            entry = self._entry(Path(match), boundary)
            if entry is not None:
                files[self._place(Path(match))] = entry
        return {"glob": self._place(path), "files": files}
