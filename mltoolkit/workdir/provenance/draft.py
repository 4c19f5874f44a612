"""The crate being built: what every entity module shares, and parameters as entities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.rocrate import ROCrate

from mltoolkit.workdir.provenance.file_keys import FileKeys
from mltoolkit.workdir.provenance.files import FileEntities
from mltoolkit.workdir.provenance.ids import EntityIds
from mltoolkit.workdir.provenance.values import additional_type, property_value, scalars
from mltoolkit.workdir.provenance.vocabulary import RO_CRATE_VERSION

__all__ = ["CrateDraft"]


@dataclass
class CrateDraft:
    """An in-memory crate for the work directory ``root``, with its id, file-key and File bookkeeping."""

    root: Path
    crate: ROCrate
    ids: EntityIds
    keys: FileKeys
    files: FileEntities

    @classmethod
    def start(cls, root: Path) -> CrateDraft:
        """An empty crate for ``root`` (resolved)."""
        crate = ROCrate(version=RO_CRATE_VERSION)
        keys = FileKeys(root)
        return cls(root=root, crate=crate, ids=EntityIds(), keys=keys, files=FileEntities(crate, keys))

    def add(self, entity: Entity) -> Entity:
        """Add ``entity`` to the crate, claiming its id."""
        self.ids.claim(entity.id)
        self.crate.add(entity)
        return entity

    def formal_parameter(self, identifier: str, name: str, value: Any, is_file: bool) -> Entity:
        """A FormalParameter typed after the (first) value seen for it."""
        formal = self.crate.add_formal_parameter(name, additional_type(value, is_file), identifier=identifier)
        # ro-crate-py always writes valueRequired=False; the record cannot tell
        # whether a slot was optional, so claim nothing.
        del formal["valueRequired"]
        if isinstance(value, list) and (is_file or scalars(value)):
            # Lists are written as multiple values, and a one-element list as a
            # single one (RO-Crate's JSON-LD style): this keeps them lists.
            formal["multipleValues"] = True
        self.ids.claim(identifier)
        return formal

    def realise(self, name: str, value: Any, keys: list[str] | None, value_id: str, formal: Entity) -> list[Entity]:
        """What realised a parameter in this run: its File entities, or one PropertyValue."""
        if keys is not None:
            return [self.files.realised(key, formal) for key in keys]
        properties: dict[str, Any] = {"@type": "PropertyValue", "name": name, "exampleOfWork": formal}
        if value is not None:
            properties["value"] = property_value(value)
        return [self.add(ContextEntity(self.crate, self.ids.unique(value_id, 0), properties=properties))]
