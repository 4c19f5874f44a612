"""Reading YAML files and ``key=value`` overrides with one-line, located errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mltoolkit.errors import CommandLineError, InputsError, MLToolkitError

__all__ = ["parse_assignment", "parse_assignments", "parse_yaml_text", "read_yaml"]

_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TEMPLATE_FIELD = re.compile(r"\{[A-Za-z_]\w*\}")


def parse_yaml_text(text: str, source: str, error: type[MLToolkitError] = InputsError) -> Any:
    """Parse YAML text; a syntax error names ``source``, line and column."""
    import yaml

    try:
        return yaml.safe_load(text)
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
        value = yaml.safe_load(raw_value)
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
