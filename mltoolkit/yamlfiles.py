"""Reading YAML files and ``key=value`` overrides with one-line, located errors.

Every YAML text is checked against the limits of :mod:`mltoolkit.limits` before
it is turned into Python values: its size, its nesting depth (PyYAML's reader
recurses, so a document nested ~300 deep would end in a ``RecursionError``) and
its node count *with aliases expanded* (PyYAML shares an alias's value instead of
copying it, so a bomb of nested aliases loads fast and then explodes in whoever
walks or serialises it). The check reads the parser's events once, counting
what each anchor expands to, and stops at the first limit crossed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mltoolkit.errors import CommandLineError, InputsError, MLToolkitError
from mltoolkit.limits import YAML_BYTES, YAML_DEPTH, YAML_NODES

__all__ = ["check_yaml_limits", "parse_assignment", "parse_assignments", "parse_yaml_text", "read_yaml"]

_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TEMPLATE_FIELD = re.compile(r"\{[A-Za-z_]\w*\}")


_ALIASES_COUNT = "each YAML alias *name counts as a copy of what it names"


def check_yaml_limits(text: str, source: str) -> None:
    """Check ``text``'s size, nesting depth and node count (aliases expanded) against the limits.

    Raises:
        LimitExceededError: one of them is over its limit; names ``source``.
        yaml.YAMLError: the text is not valid YAML.
    """
    import yaml

    YAML_BYTES.check(len(text.encode("utf-8", errors="surrogatepass")), source, "split the document or pass a file")
    max_depth, max_nodes = YAML_DEPTH.value(), YAML_NODES.value()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sizes: dict[str, int] = {}  # anchor -> nodes its value expands to
    open_nodes: list[list[Any]] = []  # [nodes so far, anchor] of each collection being read
    total = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append([1, event.anchor])
            total += 1
            if len(open_nodes) > max_depth:
                raise YAML_DEPTH.exceeded(source, None, "flatten the document", max_depth)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            count, anchor = open_nodes.pop()
        elif isinstance(event, yaml.ScalarEvent):
            count, anchor = 1, event.anchor
            total += 1
        elif isinstance(event, yaml.AliasEvent):
            count, anchor = sizes.get(event.anchor, 1), None
            total += count
        else:
            continue
        if anchor is not None:
            sizes[anchor] = count
        if open_nodes:
            open_nodes[-1][0] += count
        if total > max_nodes:
            raise YAML_NODES.exceeded(source, None, _ALIASES_COUNT, max_nodes)


def _safe_load(text: str, source: str) -> Any:
    import yaml

    check_yaml_limits(text, source)
    try:
        return yaml.safe_load(text)
    except RecursionError:  # only when MLTOOLKIT_MAX_YAML_DEPTH was raised past what PyYAML can read
        raise YAML_DEPTH.exceeded(source, None, "PyYAML cannot read it this deep; flatten the document") from None


def parse_yaml_text(text: str, source: str, error: type[MLToolkitError] = InputsError) -> Any:
    """Parse YAML text; a syntax error names ``source``, line and column.

    Raises:
        ``error``: the text is not valid YAML.
        LimitExceededError: the text is over a limit of :mod:`mltoolkit.limits`.
    """
    import yaml

    try:
        return _safe_load(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise error(f"{where}: not valid YAML ({problem}); fix the syntax there") from None


def read_yaml(
    path: str | os.PathLike[str],
    *,
    what: str = "inputs file",
    error: type[MLToolkitError] = InputsError,
) -> Any:
    """Read and parse a YAML file.

    Raises:
        ``error`` (default :class:`InputsError`): the file is missing, is a
            folder, is unreadable, is not UTF-8 or is not valid YAML.
    """
    path = Path(path)
    try:
        YAML_BYTES.check(path.stat().st_size, f"{what} {path}", "split the document or pass a file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path}: file does not exist; check the path") from None
    except IsADirectoryError:
        raise error(f"{what} {path}: is a directory, expected a YAML file") from None
    except PermissionError:
        raise error(f"{what} {path}: permission denied; make the file readable") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path}: not UTF-8 text, expected a YAML file") from None
    except OSError as exc:
        raise error(f"{what} {path}: cannot read ({exc.strerror})") from None
    return parse_yaml_text(text, f"{what} {path}", error)


def parse_assignment(text: str, *, option: str = "-p") -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is YAML (``-p n=3``, ``-p xs=[1,2]``).

    Raises:
        CommandLineError: no ``=``, an empty or malformed key, or a value that is
            not valid YAML.
    """
    key, separator, raw_value = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise CommandLineError(f"{option} {text!r}: expected key=value, e.g. {option} dataset=data/moon.txt")
    if not _KEY_PATTERN.match(key):
        raise CommandLineError(
            f"{option} {text!r}: key {key!r} must start with a letter or '_' and contain "
            "only letters, digits, '_', '-' or '.'"
        )
    if raw_value.strip() == "":
        return key, ""
    import yaml

    try:
        value = _safe_load(raw_value, f"{option} {key}")
    except yaml.YAMLError:
        # Not YAML on its own: a template such as '{workdir}/out.pkl' is meant as
        # text; a broken list or mapping such as '[1,' is a typo worth reporting.
        if _TEMPLATE_FIELD.search(raw_value):
            return key, raw_value
        if any(char in raw_value for char in "[]{}"):
            raise CommandLineError(
                f"{option} {text!r}: value is not valid YAML; quote it to pass it as a string, "
                f"e.g. {option} {key}=\"'...'\""
            ) from None
        value = raw_value
    return key, value


def parse_assignments(items: Iterable[str], *, option: str = "-p") -> dict[str, Any]:
    """Parse several ``key=value`` overrides into a dict (later ones win)."""
    values: dict[str, Any] = {}
    for item in items:
        key, value = parse_assignment(item, option=option)
        values[key] = value
    return values
