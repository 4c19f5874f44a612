"""Phase 1 of the spec loader: read YAML documents and resolve ``$ref``.

A yadage spec is spread over several YAML files glued together with JSON
References (``{$ref: 'steps.yml#/data_prep_step'}``). This module turns the
workflow file into one plain Python tree (dicts, lists, scalars) and remembers,
for every place where a reference was expanded, which file and JSON pointer the
content came from, so later phases can say *where* a problem is
(:meth:`LoadedSpec.where`).

Reference rules (those of JSON Reference, as yadage uses them):

* ``other.yml`` / ``dir/other.yml#/a/b``: in the workflow file itself, relative to
  ``toplevel`` (as yadage resolves them), else to the workflow file's folder; in
  any other file, relative to the folder of that file (for a document fetched
  over http(s), relative to its URL), else to ``toplevel``;
* the fragment is a JSON pointer whose leading ``/`` may be left out
  (``steps.yml#hello_world``); ``steps.yml#`` and ``steps.yml`` name the whole file;
* ``/abs/path.yml#/x`` and ``file:///abs/path.yml``: absolute paths;
* ``#/definitions/x``: a JSON pointer into the same file;
* ``http(s)://host/path.yml#/x``: fetched with ``urllib`` (short timeout).

References inside referenced content are resolved too; a reference that
(directly or through others) includes itself is reported as a cycle. Keys next
to ``$ref`` are an error (JSON Reference ignores them, which silently drops
content).

Modules: :mod:`~mltoolkit.yadage.load.documents` (reading files and URLs),
:mod:`~mltoolkit.yadage.load.pointers` (JSON pointers),
:mod:`~mltoolkit.yadage.load.refs` (locating and expanding ``$ref``),
:mod:`~mltoolkit.yadage.load.located` (where each part came from: file, pointer, line).
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.load.documents import URL_TIMEOUT, Documents, display_name, is_url
from mltoolkit.yadage.load.located import LoadedSpec, Location
from mltoolkit.yadage.load.pointers import format_pointer, parse_pointer, walk_pointer
from mltoolkit.yadage.load.refs import RefExpander

__all__ = [
    "URL_TIMEOUT",
    "LoadedSpec",
    "Location",
    "format_pointer",
    "load_document",
    "load_step_ref",
    "load_workflow",
    "parse_pointer",
    "resolve_refs",
]


def _absolute(source: str | os.PathLike[str]) -> str:
    text = os.fspath(source)
    if is_url(text):
        return text
    if text.startswith("file://"):
        text = urllib.parse.unquote(urllib.parse.urlparse(text).path)
    return os.path.abspath(text)


def _resolve_against(name: str | os.PathLike[str], toplevel: str | None) -> str:
    text = os.fspath(name)
    if is_url(text) or text.startswith("file://") or os.path.isabs(text) or toplevel is None:
        return _absolute(text)
    if is_url(toplevel):
        return urllib.parse.urljoin(toplevel.rstrip("/") + "/", text)
    return os.path.normpath(os.path.join(toplevel, text))


def load_document(
    source: str | os.PathLike[str],
    *,
    toplevel: str | os.PathLike[str] | None = None,
    pointer: str = "",
    what: str = "workflow",
) -> LoadedSpec:
    """Load a YAML document (or the part at ``pointer``) with every ``$ref`` resolved.

    ``source`` is a path, ``file://`` or http(s) URL; a relative path resolves
    against ``toplevel`` when given, else against the current directory.

    Raises:
        SpecError: a missing or unreadable file, an unreachable URL, invalid YAML,
            a reference to a missing file or pointer, or a circular reference.
    """
    top = _absolute(toplevel) if toplevel is not None else None
    document = _resolve_against(source, top)
    if top is None:
        top = document.rsplit("/", 1)[0] if is_url(document) else os.path.dirname(document)
    where = f"{what} {display_name(document)}"
    # phase 1a: read the document; 1b: expand every $ref in the part asked for
    documents = Documents()
    root = documents.read(document, where)
    parts = parse_pointer(pointer)
    target = walk_pointer(root, parts, document, where, f"#{pointer}")
    # yadage loads a workflow file with --toplevel as its base (its own references
    # resolve there first); any other document, such as a step file, with its own folder
    expander = RefExpander(documents, top, document if what == "workflow" else None)
    expander.origins[()] = (document, parts)
    data = expander.expand(target, document, parts, ())
    return LoadedSpec(
        data=data,
        source=document,
        toplevel=top,
        pointer=parts,
        origins=expander.origins,
        texts=documents.texts,
    )


def load_workflow(
    workflow: str | os.PathLike[str],
    toplevel: str | os.PathLike[str] | None = None,
) -> LoadedSpec:
    """Load a workflow file the way ``yadage-run`` does, with every ``$ref`` resolved.

    ``workflow`` resolves against ``toplevel`` (default: the workflow file's own
    folder, i.e. a relative path resolves against the current directory first).
    A ``#/pointer`` suffix selects part of the file.

    Raises:
        SpecError: see :func:`load_document`; also when the result is not a mapping.
    """
    name, _, fragment = os.fspath(workflow).partition("#")
    loaded = load_document(name, toplevel=toplevel, pointer=urllib.parse.unquote(fragment))
    if not isinstance(loaded.data, dict):
        raise SpecError(
            f"workflow {loaded.where()}: found {type(loaded.data).__name__}, expected a mapping with a 'stages' list"
        )
    return loaded


def load_step_ref(
    ref: str,
    toplevel: str | os.PathLike[str] | None = None,
) -> LoadedSpec:
    """Load one step definition such as ``"steps.yml#/data_prep_step"`` (packtivity-run style).

    The file part resolves against ``toplevel`` (default: current directory).

    Raises:
        SpecError: see :func:`load_document`; also when the result is not a mapping.
    """
    name, _, fragment = ref.partition("#")
    loaded = load_document(name, toplevel=toplevel, pointer=urllib.parse.unquote(fragment), what="step")
    if not isinstance(loaded.data, dict):
        raise SpecError(
            f"step {loaded.where()}: found {type(loaded.data).__name__}, expected a mapping with "
            "process, environment and publisher"
        )
    if not fragment and "process" not in loaded.data:
        names = ", ".join(f"{name}#/{key}" for key in list(loaded.data)[:5])
        raise SpecError(f"step {ref!r}: names a whole file, not one step; add the step's JSON pointer, e.g. {names}")
    return loaded


def resolve_refs(
    value: Any,
    *,
    base: str | os.PathLike[str],
    toplevel: str | os.PathLike[str] | None = None,
) -> Any:
    """Resolve every ``$ref`` in an in-memory tree as if it were the content of file ``base``.

    Useful for specs built in code: ``#/...`` pointers refer to ``value`` itself.
    """
    document = _absolute(base)
    top = _absolute(toplevel) if toplevel is not None else os.path.dirname(document)
    documents = Documents()
    documents.parsed[document] = value
    return RefExpander(documents, top).expand(value, document, (), ())
