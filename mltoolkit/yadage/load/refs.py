"""Resolving ``$ref``: which document and pointer a reference names, and expanding it in place.

References inside referenced content are resolved too, relative to the document
they appear in; a reference that (directly or through others) includes itself is
reported as circular. Keys next to ``$ref`` are an error (JSON Reference ignores
them, which would silently drop content). Every expanded reference is a copy, so
references to references fan out; the nodes of the result count against
:data:`~mltoolkit.limits.YAML_NODES`.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.limits import YAML_NODES
from mltoolkit.yadage.load.documents import Documents, display_name, is_url
from mltoolkit.yadage.load.located import Origins, PathParts, locate
from mltoolkit.yadage.load.pointers import format_pointer, parse_pointer, walk_pointer

__all__ = ["RefExpander", "locate_ref"]

_MAX_REF_DEPTH = 64

#: (document, pointer) of each reference being expanded, outermost first.
Chain = tuple[tuple[str, PathParts], ...]


def _relative_target(target: str, base_document: str, toplevel: str, *, toplevel_first: bool) -> str | None:
    """The document a relative ``target`` names, or ``None`` when it exists in neither place.

    Looked up beside ``base_document`` first, then in ``toplevel``; with
    ``toplevel_first`` (a reference in the workflow file itself, which yadage
    resolves against ``--toplevel``) the other way round.
    """
    beside = os.path.normpath(os.path.join(os.path.dirname(base_document), target))
    if is_url(toplevel):
        in_toplevel = urllib.parse.urljoin(toplevel.rstrip("/") + "/", target)
        return in_toplevel if toplevel_first or not os.path.exists(beside) else beside
    in_toplevel = os.path.normpath(os.path.join(toplevel, target))
    places = (in_toplevel, beside) if toplevel_first else (beside, in_toplevel)
    return next((place for place in places if os.path.exists(place)), None)


def locate_ref(
    ref: str, base_document: str, toplevel: str, where: str, *, toplevel_first: bool = False
) -> tuple[str, tuple[str, ...]]:
    """The document and pointer that ``ref`` (found in ``base_document``) names.

    ``toplevel_first``: ``base_document`` is the workflow file, whose relative
    references resolve against ``toplevel`` before its own folder (as in yadage).

    Raises:
        SpecError: a relative file exists in neither place.
    """
    target, _, fragment = ref.partition("#")
    pointer = parse_pointer(urllib.parse.unquote(fragment))
    if not target:
        return base_document, pointer
    if is_url(target):
        return target, pointer
    if target.startswith("file://"):
        return os.path.normpath(urllib.parse.unquote(urllib.parse.urlparse(target).path)), pointer
    if is_url(base_document):
        return urllib.parse.urljoin(base_document, target), pointer
    if os.path.isabs(target):
        return os.path.normpath(target), pointer
    document = _relative_target(target, base_document, toplevel, toplevel_first=toplevel_first)
    if document is None:
        raise SpecError(
            f"{where}: $ref {ref!r}: no file {target!r} next to {display_name(base_document)} "
            f"nor in the toplevel folder {display_name(toplevel)}; fix the path or pass --toplevel"
        )
    return document, pointer


def _check_ref_mapping(value: dict, where: str) -> str:
    """The reference of a ``{$ref: ...}`` mapping that has nothing else in it."""
    ref = value["$ref"]
    if not isinstance(ref, str):
        raise SpecError(f"{where}: $ref must be a string such as 'steps.yml#/step', found {ref!r}")
    extra = sorted(str(key) for key in value if key != "$ref")
    if extra:
        raise SpecError(
            f"{where}: keys {', '.join(extra)} next to $ref {ref!r} would be ignored "
            "(JSON Reference replaces the whole mapping); move them into the referenced document"
        )
    return ref


def _check_not_circular(chain: Chain, document: str, pointer: tuple[str, ...], where: str, ref: str) -> None:
    """Refuse a reference to content that contains one of the references being expanded."""
    if len(chain) > _MAX_REF_DEPTH:
        raise SpecError(f"{where}: $ref {ref!r} nests more than {_MAX_REF_DEPTH} references deep; is it recursive?")
    for seen_document, seen_path in chain:
        if seen_document == document and seen_path[: len(pointer)] == pointer:
            cycle = " -> ".join(f"{display_name(d)}#{format_pointer(p)}" for d, p in chain)
            raise SpecError(
                f"{where}: $ref {ref!r} is circular ({cycle} -> "
                f"{display_name(document)}#{format_pointer(pointer)}); break the cycle"
            )


class RefExpander:
    """Expands every ``$ref`` in a tree, recording where each expanded part came from."""

    def __init__(self, documents: Documents, toplevel: str, workflow_document: str | None = None) -> None:
        self.documents = documents
        self.toplevel = toplevel
        #: The document loaded first: its references resolve against ``toplevel`` first.
        self.workflow_document = workflow_document
        self.origins: Origins = {}
        self.nodes = 0
        self.max_nodes = YAML_NODES.value()

    def expand(self, value: Any, document: str, doc_path: PathParts, out_path: PathParts, chain: Chain = ()) -> Any:
        """A copy of ``value`` (at ``doc_path`` in ``document``; at ``out_path`` in the result) with refs expanded.

        Raises:
            LimitExceededError: the result grows past :data:`~mltoolkit.limits.YAML_NODES` nodes.
        """
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise YAML_NODES.exceeded(
                f"{display_name(document)}: expanding $ref",
                None,
                "each $ref counts as a copy of what it names",
                self.max_nodes,
            )
        if isinstance(value, dict):
            if "$ref" in value:
                return self._expand_ref(value, document, doc_path, out_path, chain)
            return {
                key: self.expand(item, document, doc_path + (key,), out_path + (key,), chain)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [
                self.expand(item, document, doc_path + (index,), out_path + (index,), chain)
                for index, item in enumerate(value)
            ]
        return value

    def _expand_ref(self, value: dict, document: str, doc_path: PathParts, out_path: PathParts, chain: Chain) -> Any:
        where = str(locate(document, doc_path, self.documents.texts))
        ref = _check_ref_mapping(value, where)
        target_document, pointer = locate_ref(
            ref, document, self.toplevel, where, toplevel_first=document == self.workflow_document
        )
        chain = chain + ((document, tuple(str(part) for part in doc_path)),)
        _check_not_circular(chain, target_document, pointer, where, ref)
        root = self.documents.read(target_document, where)
        target = walk_pointer(root, pointer, target_document, where, ref)
        self.origins[out_path] = (target_document, pointer)
        return self.expand(target, target_document, pointer, out_path, chain)
