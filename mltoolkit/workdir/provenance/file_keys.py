"""Which files a record value names, as crate keys (the ids of their ``File`` entities).

A key is the workdir-relative POSIX path of a file inside the work directory
(the crate's root), a ``file://`` URI for a local file outside it, or the URL
itself for a remote file. A parameter names files when it is a path, a URL, a
glob (yadage publishes ``{outdir}/*.pkl``) or a list of them; paths count when
the file exists or a step recorded it among its outputs, so a record still
describes files a later cleanup removed. Every lookup is a dict, so describing
a run is linear in the size of its record.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.workdir.provenance.ids import is_uri

__all__ = ["FileKeys"]

# Longer strings are payloads, not paths: don't stat them.
_PATH_LIMIT = 4096
_GLOB_CHARACTERS = frozenset("*?[")
_REMOTE_SCHEMES = ("http", "https", "ftp")


class FileKeys:
    """Crate keys of the files that record values name, for one work directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_prefix = str(root).rstrip(os.sep) + os.sep
        # Relative init values resolve against WORKDIR/init (yadage's init step), then WORKDIR.
        self._relative_bases = (str(WorkdirLayout(root).init), str(root))
        self._outputs: set[str] = set()
        self._outputs_by_folder: dict[str, dict[str, str]] = {}  # folder key -> {file name: key}
        self._by_text: dict[str, list[str] | None] = {}  # parameter string -> keys, None: not files

    def register_outputs(self, outputs: Iterable[str]) -> None:
        """Note files steps wrote: a value naming one is that file even if it is gone now."""
        for relative in outputs:
            key = self.output_key(str(relative))
            self._outputs.add(key)
            folder, name = posixpath.split(key)
            self._outputs_by_folder.setdefault(folder, {})[name] = key

    def of_value(self, value: Any) -> list[str] | None:
        """Crate keys when ``value`` names files (a path, a URL, a glob, or a list of them), else ``None``."""
        if isinstance(value, str):
            return self._of_text(value)
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            keys: list[str] = []
            for item in value:
                found = self._of_text(item)
                if found is None:
                    return None
                keys.extend(found)
            return keys
        return None

    def _of_text(self, text: str) -> list[str] | None:
        """The keys of the file(s) a parameter string names, or ``None``; remembered per string."""
        if text not in self._by_text:
            self._by_text[text] = self._look_up(text) if text and len(text) < _PATH_LIMIT and "\n" not in text else None
        return self._by_text[text]

    def _look_up(self, text: str) -> list[str] | None:
        try:
            scheme = urlsplit(text).scheme.lower()
        except ValueError:  # not a URL (e.g. an unbalanced "[" of a glob): maybe a path
            scheme = ""
        if scheme in _REMOTE_SCHEMES:
            return [text]
        if scheme == "file":
            return self._existing(url2pathname(urlsplit(text).path))
        if len(scheme) > 1:
            return None
        # No scheme (or a Windows drive letter).
        if os.path.isabs(text):
            return self._existing(text)
        for base in self._relative_bases:
            keys = self._existing(os.path.join(base, text))
            if keys is not None:
                return keys
        return None

    def _existing(self, path: str) -> list[str] | None:
        path = os.path.normpath(path)
        folder, name = os.path.split(path)
        if _GLOB_CHARACTERS.intersection(name):
            return self._glob(folder, name)
        key = self.path_key(path)
        return [key] if key in self._outputs or os.path.isfile(path) else None

    def _glob(self, folder: str, pattern: str) -> list[str] | None:
        """The recorded outputs a glob names, as the shell would expand it.

        Only the last path component may be a pattern: looking it up among the
        outputs of one folder keeps this linear.
        """
        if _GLOB_CHARACTERS.intersection(folder):
            return None
        folder_key = "" if folder == str(self.root) else self.path_key(folder)
        names = self._outputs_by_folder.get(folder_key, {})
        hidden_ok = pattern.startswith(".")
        matches = [
            key
            for name, key in sorted(names.items())
            if (hidden_ok or not name.startswith(".")) and fnmatchcase(name, pattern)
        ]
        return matches or None

    def path_key(self, absolute: str) -> str:
        """Workdir-relative POSIX path for files in the crate, a ``file://`` URI otherwise."""
        if absolute.startswith(self._root_prefix):
            return Path(absolute[len(self._root_prefix) :]).as_posix()
        return Path(absolute).as_uri()

    def output_key(self, relative: str) -> str:
        """The key of a step's output, recorded relative to the work directory (or absolute)."""
        if os.path.isabs(relative):
            return self.path_key(os.path.normpath(relative))
        normal = posixpath.normpath(relative.replace(os.sep, "/"))
        if normal == ".." or normal.startswith("../"):
            return self.path_key(os.path.normpath(os.path.join(str(self.root), normal)))
        return normal

    def location_key(self, location: str) -> tuple[str, str | None]:
        """Key and local path (``None`` for a remote one) of the workflow file."""
        try:
            scheme = urlsplit(location).scheme.lower()
        except ValueError:
            scheme = ""
        if scheme == "file":
            local = os.path.normpath(url2pathname(urlsplit(location).path))
            return self.path_key(local), local
        if len(scheme) > 1:
            return location, None
        local = os.path.normpath(os.path.abspath(location))
        return self.path_key(local), local

    def local_path(self, key: str) -> str | None:
        """Where the file a key names is on this machine (``None`` for a remote one)."""
        if not is_uri(key):
            return os.path.join(str(self.root), key)
        if key.startswith("file:"):
            return url2pathname(urlsplit(key).path)
        return None
