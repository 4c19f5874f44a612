"""Phase 1 of the spec loader: read YAML documents and resolve ``$ref``.

A yadage spec is spread over several YAML files glued together with JSON
References (``{$ref: 'steps.yml#/data_prep_step'}``). This module turns the
workflow file into one plain Python tree (dicts, lists, scalars) and remembers,
for every place where a reference was expanded, which file and JSON pointer the
content came from, so later phases can say *where* a problem is
(:meth:`LoadedSpec.where`).

Reference rules (those of JSON Reference, as yadage uses them):

* ``other.yml`` / ``dir/other.yml#/a/b``: relative to the folder of the file that
  contains the reference (for a document fetched over http(s), relative to its
  URL); if no such file exists there, relative to ``toplevel`` (where yadage's
  loader looks);
* ``/abs/path.yml#/x`` and ``file:///abs/path.yml``: absolute paths;
* ``#/definitions/x``: a JSON pointer into the same file;
* ``http(s)://host/path.yml#/x``: fetched with ``urllib`` (short timeout).

References inside referenced content are resolved too; a reference that
(directly or through others) includes itself is reported as a cycle. Keys next
to ``$ref`` are an error (JSON Reference ignores them, which silently drops
content).
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yamlfiles import parse_yaml_text

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

#: Seconds to wait for an http(s) document before giving up.
URL_TIMEOUT = 10.0

_MAX_REF_DEPTH = 64

PathParts = tuple[Any, ...]


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def format_pointer(parts: Iterable[Any]) -> str:
    """A JSON pointer (``/stages/0/scheduler``) from path parts; ``""`` for the root."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def parse_pointer(pointer: str, *, where: str = "") -> tuple[str, ...]:
    """Split a JSON pointer (``/a/b~1c``) into its unescaped parts.

    Raises:
        SpecError: the pointer is not empty and does not start with ``/``.
    """
    if pointer in ("", "/"):
        return ()
    if not pointer.startswith("/"):
        raise SpecError(
            f"{where or 'JSON pointer'}: fragment {pointer!r} is not a JSON pointer; "
            "expected '#/key/subkey' (e.g. steps.yml#/data_prep_step)"
        )
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/"))


def _display(document: str) -> str:
    if _is_url(document):
        return document
    try:
        relative = os.path.relpath(document)
    except ValueError:
        return document
    return document if relative.startswith("..") else relative


@functools.lru_cache(maxsize=32)
def _composed(text: str) -> Any:
    import yaml

    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def _line_of(text: str, parts: PathParts) -> int | None:
    """1-based line of the YAML node at ``parts`` in ``text``, or the closest ancestor's."""
    import yaml

    node = _composed(text)
    line = node.start_mark.line + 1 if node is not None else None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    # the key's line is where a reader looks for "stages:" etc.
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode):
            try:
                node = node.value[int(part)]
            except (ValueError, IndexError):
                return line
            line = node.start_mark.line + 1
        else:
            return line
    return line


@dataclass(frozen=True)
class Location:
    """Where a piece of a loaded spec came from: a document and a JSON pointer in it."""

    document: str
    pointer: tuple[Any, ...]
    line: int | None = None

    def __str__(self) -> str:
        where = _display(self.document)
        if self.line is not None:
            where += f" line {self.line}"
        return f"{where} (#{format_pointer(self.pointer)})"


@dataclass
class LoadedSpec:
    """A spec with every ``$ref`` resolved, plus where each part came from.

    Attributes:
        data: the resolved tree (plain dicts, lists and scalars).
        source: the document the tree was loaded from (absolute path or URL).
        toplevel: the folder (or base URL) relative references fall back to.
        pointer: JSON pointer of ``data`` inside ``source`` (``()`` for the whole file).
        origins: resolved path -> (document, pointer) at every expanded reference.
        texts: the text of every document read, for line numbers in messages.
    """

    data: Any
    source: str
    toplevel: str
    pointer: tuple[Any, ...] = ()
    origins: dict[PathParts, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def location(self, path: Iterable[Any] = ()) -> Location:
        """The document, pointer and line that a path in :attr:`data` came from."""
        parts = tuple(path)
        for cut in range(len(parts), -1, -1):
            origin = self.origins.get(parts[:cut])
            if origin is not None:
                document, base = origin
                pointer = tuple(base) + parts[cut:]
                text = self.texts.get(document)
                line = _line_of(text, pointer) if text is not None else None
                return Location(document, pointer, line)
        return Location(self.source, tuple(self.pointer) + parts, None)

    def where(self, path: Iterable[Any] = ()) -> str:
        """``"steps.yml line 4 (#/classification_step/process)"`` for a path in :attr:`data`."""
        return str(self.location(path))


class _Resolver:
    """Reads documents (cached) and expands references recursively."""

    def __init__(self, toplevel: str) -> None:
        self.toplevel = toplevel
        self.texts: dict[str, str] = {}
        self.parsed: dict[str, Any] = {}
        self.origins: dict[PathParts, tuple[str, tuple[Any, ...]]] = {}

    # -- documents ------------------------------------------------------------------------

    def read(self, document: str, referrer: str) -> Any:
        if document in self.parsed:
            return self.parsed[document]
        if _is_url(document):
            text = self._fetch(document, referrer)
        else:
            text = self._read_file(document, referrer)
        self.texts[document] = text
        value = parse_yaml_text(text, _display(document), SpecError)
        self.parsed[document] = value
        return value

    @staticmethod
    def _read_file(document: str, referrer: str) -> str:
        try:
            return Path(document).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(
                f"{referrer}: file {_display(document)} does not exist; check the path "
                "(relative references resolve against the referring file's folder, then --toplevel)"
            ) from None
        except IsADirectoryError:
            raise SpecError(f"{referrer}: {_display(document)} is a directory, expected a YAML file") from None
        except UnicodeDecodeError:
            raise SpecError(f"{referrer}: {_display(document)} is not UTF-8 text, expected a YAML file") from None
        except OSError as error:
            raise SpecError(f"{referrer}: cannot read {_display(document)} ({error.strerror})") from None

    @staticmethod
    def _fetch(url: str, referrer: str) -> str:
        try:
            with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response:
                data = response.read()
        except urllib.error.HTTPError as error:
            raise SpecError(
                f"{referrer}: fetching {url} failed with HTTP {error.code}; check the URL "
                "or copy the file next to the workflow and use a relative $ref"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise SpecError(
                f"{referrer}: {url} is unreachable ({reason}); check the network, or copy the "
                "file next to the workflow and use a relative $ref"
            ) from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError(f"{referrer}: {url} is not UTF-8 text, expected a YAML document") from None

    # -- references -----------------------------------------------------------------------

    def locate_ref(self, ref: str, base_document: str, where: str) -> tuple[str, tuple[str, ...]]:
        """The document and pointer that ``ref`` (found in ``base_document``) names."""
        target, _, fragment = ref.partition("#")
        fragment = urllib.parse.unquote(fragment)
        pointer = parse_pointer(fragment, where=f"{where}: $ref {ref!r}")
        if not target:
            return base_document, pointer
        if _is_url(target):
            return target, pointer
        if target.startswith("file://"):
            return os.path.normpath(urllib.parse.unquote(urllib.parse.urlparse(target).path)), pointer
        if _is_url(base_document):
            return urllib.parse.urljoin(base_document, target), pointer
        if os.path.isabs(target):
            return os.path.normpath(target), pointer
        beside = os.path.normpath(os.path.join(os.path.dirname(base_document), target))
        if os.path.exists(beside):
            return beside, pointer
        if _is_url(self.toplevel):
            return urllib.parse.urljoin(self.toplevel.rstrip("/") + "/", target), pointer
        in_toplevel = os.path.normpath(os.path.join(self.toplevel, target))
        if os.path.exists(in_toplevel):
            return in_toplevel, pointer
        raise SpecError(
            f"{where}: $ref {ref!r}: no file {target!r} next to {_display(base_document)} "
            f"nor in the toplevel folder {_display(self.toplevel)}; fix the path or pass --toplevel"
        )

    def walk_pointer(self, value: Any, pointer: tuple[str, ...], document: str, where: str, ref: str) -> Any:
        node = value
        for depth, part in enumerate(pointer):
            if isinstance(node, dict) and part in node:
                node = node[part]
                continue
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            here = format_pointer(pointer[:depth]) or "/"
            if isinstance(node, dict):
                keys = ", ".join(map(str, list(node)[:12])) or "none"
                found = f"keys there: {keys}"
            else:
                found = f"found {type(node).__name__}"
            raise SpecError(
                f"{where}: $ref {ref!r}: {_display(document)} has no {part!r} at #{here} ({found}); "
                "fix the JSON pointer after '#'"
            )
        return node

    def expand(
        self,
        value: Any,
        document: str,
        doc_path: tuple[Any, ...],
        out_path: tuple[Any, ...],
        chain: tuple[tuple[str, tuple[Any, ...]], ...],
    ) -> Any:
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

    def _where(self, document: str, doc_path: tuple[Any, ...]) -> str:
        text = self.texts.get(document)
        line = _line_of(text, doc_path) if text is not None else None
        return str(Location(document, doc_path, line))

    def _expand_ref(
        self,
        value: dict,
        document: str,
        doc_path: tuple[Any, ...],
        out_path: tuple[Any, ...],
        chain: tuple[tuple[str, tuple[Any, ...]], ...],
    ) -> Any:
        where = self._where(document, doc_path)
        ref = value["$ref"]
        if not isinstance(ref, str):
            raise SpecError(f"{where}: $ref must be a string such as 'steps.yml#/step', found {ref!r}")
        extra = sorted(str(key) for key in value if key != "$ref")
        if extra:
            raise SpecError(
                f"{where}: keys {', '.join(extra)} next to $ref {ref!r} would be ignored "
                "(JSON Reference replaces the whole mapping); move them into the referenced document"
            )
        if len(chain) >= _MAX_REF_DEPTH:
            raise SpecError(f"{where}: $ref {ref!r} nests more than {_MAX_REF_DEPTH} references deep; is it recursive?")
        target_document, pointer = self.locate_ref(ref, document, where)
        here = (document, tuple(str(part) for part in doc_path))
        for seen_document, seen_path in chain + (here,):
            if seen_document == target_document and seen_path[: len(pointer)] == pointer:
                cycle = " -> ".join(f"{_display(d)}#{format_pointer(p)}" for d, p in chain + (here,))
                raise SpecError(
                    f"{where}: $ref {ref!r} is circular ({cycle} -> "
                    f"{_display(target_document)}#{format_pointer(pointer)}); break the cycle"
                )
        root = self.read(target_document, where)
        target = self.walk_pointer(root, pointer, target_document, where, ref)
        self.origins[out_path] = (target_document, pointer)
        return self.expand(target, target_document, pointer, out_path, chain + (here,))


def _absolute(source: str | os.PathLike[str]) -> str:
    text = os.fspath(source)
    if _is_url(text):
        return text
    if text.startswith("file://"):
        text = urllib.parse.unquote(urllib.parse.urlparse(text).path)
    return os.path.abspath(text)


def _resolve_against(name: str | os.PathLike[str], toplevel: str | None) -> str:
    text = os.fspath(name)
    if _is_url(text) or text.startswith("file://") or os.path.isabs(text) or toplevel is None:
        return _absolute(text)
    if _is_url(toplevel):
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
        top = document.rsplit("/", 1)[0] if _is_url(document) else os.path.dirname(document)
    resolver = _Resolver(top)
    root = resolver.read(document, f"{what} {_display(document)}")
    parts = parse_pointer(pointer, where=f"{what} {_display(document)}")
    target = resolver.walk_pointer(root, parts, document, f"{what} {_display(document)}", f"#{pointer}")
    resolver.origins[()] = (document, parts)
    data = resolver.expand(target, document, parts, (), ())
    return LoadedSpec(
        data=data,
        source=document,
        toplevel=top,
        pointer=parts,
        origins=resolver.origins,
        texts=resolver.texts,
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
    resolver = _Resolver(top)
    resolver.parsed[document] = value
    return resolver.expand(value, document, (), (), ())
