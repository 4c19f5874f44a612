"""``File`` entities of a run crate: one per file, with what is known about it without copying it.

Files inside the work directory get workdir-relative ids and no source, so
ro-crate-py has nothing it could copy; files elsewhere keep their absolute URI
as id and are never fetched. Output files are not re-hashed (the record has
their sha256); only the small workflow and spec files are.
"""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from rocrate.model.entity import Entity
from rocrate.model.file import File
from rocrate.rocrate import ROCrate

from mltoolkit.workdir.artifacts import FileHasher
from mltoolkit.workdir.provenance.file_keys import FileKeys
from mltoolkit.workdir.provenance.ids import is_uri

__all__ = ["SPEC_SUFFIXES", "FileEntities", "file_facts"]

#: Suffixes of yadage spec files.
SPEC_SUFFIXES = (".yml", ".yaml")
# Specs and flow files are small; the cap only guards against hashing something
# huge that happens to sit next to a workflow file.
HASH_LIMIT = 16 * 1024 * 1024


def file_facts(path: str, *, with_hash: bool) -> dict[str, Any]:
    """``contentSize``, ``encodingFormat`` and (for small files, if asked) ``sha256``."""
    facts: dict[str, Any] = {}
    try:
        size = os.stat(path).st_size
    except OSError:
        return facts
    facts["contentSize"] = str(size)
    # never through a link (its target may be a file the run has no business
    # describing) and only regular files (a FIFO blocks, a device never ends)
    if with_hash and size <= HASH_LIMIT and not os.path.islink(path):
        digest = FileHasher().digest(path)
        if digest is not None:  # unreadable: the size still says something
            facts["sha256"] = digest
    media_type = mimetypes.guess_type(path)[0] or ("application/yaml" if path.endswith(SPEC_SUFFIXES) else None)
    if media_type:
        facts["encodingFormat"] = media_type
    return facts


class FileEntities:
    """The crate's ``File`` entities by key, each created once, and the parameters each one realised."""

    def __init__(self, crate: ROCrate, keys: FileKeys) -> None:
        self._crate = crate
        self._keys = keys
        self._by_key: dict[str, File] = {}
        self._examples: dict[str, dict[str, None]] = {}  # key -> FormalParameter ids (an ordered set)

    def __getitem__(self, key: str) -> File:
        return self._by_key[key]

    def get(self, key: str, properties: dict[str, Any] | None = None) -> File:
        """The File entity for ``key``, created on first use (``properties`` only apply then)."""
        entity = self._by_key.get(key)
        if entity is None:
            if is_uri(key):
                entity = File(self._crate, source=key, properties=properties)
            else:
                entity = File(self._crate, dest_path=key, properties=properties)
            self._crate.add(entity)
            self._by_key[key] = entity
        return entity

    def register(self, key: str, entity: File) -> None:
        """Make ``entity`` (created elsewhere, e.g. the workflow) the File of ``key``."""
        self._by_key[key] = entity

    def described(self, path: str, properties: dict[str, Any]) -> File:
        """The File of a local ``path``, with its size, media type and sha256."""
        return self.get(self._keys.path_key(path), {**properties, **file_facts(path, with_hash=True)})

    def add_facts(self, key: str, *, with_hash: bool) -> None:
        """Add size and media type (and sha256) of a file on this machine to its entity."""
        local = self._keys.local_path(key)
        if local is not None:
            entity = self.get(key)
            for prop, value in file_facts(local, with_hash=with_hash).items():
                entity[prop] = value

    def realised(self, key: str, formal: Entity) -> File:
        """The File of ``key``, noted as a value of the parameter ``formal``."""
        self._examples.setdefault(key, {})[formal.id] = None
        return self.get(key)

    def link_examples(self) -> None:
        """Point every File at the parameters it was a value of (``exampleOfWork``)."""
        for key, formal_ids in self._examples.items():
            self._by_key[key]["exampleOfWork"] = [{"@id": formal_id} for formal_id in formal_ids]
