"""Publishers: what a step hands to later stages once it has run.

``interpolated-pub`` (``glob`` -> sorted matches when any, ``relative_paths`` ->
joined to the workdir), ``frompar-pub``, ``fromglob-pub`` (sorted),
``fromyaml-pub``, ``constant-pub``, ``fromparjq-pub``, and
``manual-instructions-pub``, which publishes the values a person gave.

:func:`publisher_paths` lists the paths a publisher would look at (before any
glob is expanded): the files a step is expected to leave, which a stub step
creates empty.
"""

from __future__ import annotations

import glob as globbing
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mltoolkit.errors import SpecError
from mltoolkit.yadage.model import (
    ConstantPub,
    FromGlobPub,
    FromParJqPub,
    FromParPub,
    FromYamlPub,
    InterpolatedPub,
    ManualInstructionsPub,
)
from mltoolkit.yadage.selectors import run_jq

__all__ = ["publish", "publisher_paths"]


def _leaves(value: Any, transform: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return transform(value)
    if isinstance(value, list):
        return [_leaves(item, transform) for item in value]
    if isinstance(value, dict):
        return {key: _leaves(item, transform) for key, item in value.items()}
    return value


def _glob(pattern: str) -> list[str]:
    return sorted(globbing.glob(pattern, recursive=True))


def _in_folder(value: str, folder: str, *, relative: bool, where: str, what: str) -> str:
    """``value`` joined to the step's folder when ``relative`` and not absolute; never outside it."""
    if not relative or os.path.isabs(value):
        return value
    candidate = os.path.join(folder, value)
    normal = os.path.normpath(candidate)
    if normal != folder and not normal.startswith(folder + os.sep):
        raise SpecError(
            f"{where}: {what} {value!r} leads out of the step's folder {folder}; "
            "a relative path must stay inside it (write an absolute path to name a file elsewhere)"
        )
    return candidate


def _from_parameters(publisher: FromParPub, parameters: Mapping[str, Any], where: str) -> Any:
    def pick(key: str) -> Any:
        if key not in parameters:
            raise SpecError(
                f"{where}: frompar-pub outputmap names parameter {key!r}, which the step does not "
                f"have (parameters: {', '.join(parameters) or 'none'})"
            )
        return parameters[key]

    return _leaves(publisher.outputmap, pick)


def _interpolated(
    publisher: InterpolatedPub, parameters: Mapping[str, Any], folder: str, where: str, *, expand: bool = True
) -> Any:
    namespace = dict(parameters)
    namespace.setdefault("workdir", folder)

    def fill(template: str) -> Any:
        try:
            value = template.format(**namespace)
        except (KeyError, IndexError) as error:
            raise SpecError(
                f"{where}: interpolated-pub value {template!r} uses {{{error.args[0]}}}, which is not a "
                f"parameter (parameters: {', '.join(parameters) or 'none'})"
            ) from None
        except ValueError as error:
            raise SpecError(f"{where}: interpolated-pub value {template!r}: {error}") from None
        candidate = _in_folder(
            value, folder, relative=publisher.relative_paths, where=where, what="interpolated-pub path"
        )
        if publisher.glob and expand:
            # as packtivity: the matches, or the value as written when nothing matches
            return _glob(candidate) or value
        return candidate

    return _leaves(publisher.publish, fill)


def _from_jq(
    publisher: FromParJqPub, parameters: Mapping[str, Any], folder: str, where: str, *, expand: bool = True
) -> Any:
    try:
        result = run_jq(publisher.script, json.loads(json.dumps(dict(parameters))))
    except ValueError as error:
        raise SpecError(f"{where}: fromparjq-pub: {error}") from None

    def locate(value: str) -> Any:
        candidate = _in_folder(value, folder, relative=publisher.relative_paths, where=where, what="fromparjq-pub path")
        if not expand:
            return candidate
        if publisher.tryExact and os.path.exists(candidate):
            return candidate
        if publisher.glob:
            matches = _glob(candidate)
            if matches:
                return matches
        return value

    return _leaves(result, locate)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [text for item in value for text in _strings(item)] if isinstance(value, list) else []


def publisher_paths(
    publisher: Any, parameters: Mapping[str, Any], workdir: str | os.PathLike[str], *, where: str = "step"
) -> list[str]:
    """Every text a publisher would publish or look for as a file, relative ones joined, globs unexpanded.

    Not all are paths (``frompar-pub`` may publish a word); the caller decides which
    name files. ``fromyaml-pub`` gives its YAML file; ``constant-pub`` and
    ``manual-instructions-pub`` give nothing.

    Raises:
        SpecError: as :func:`publish`, for a template or jq program that cannot be evaluated.
    """
    folder = str(Path(workdir).resolve())
    if isinstance(publisher, FromParPub):
        return _strings(_from_parameters(publisher, parameters, where))
    if isinstance(publisher, InterpolatedPub):
        return _strings(_interpolated(publisher, parameters, folder, where, expand=False))
    if isinstance(publisher, FromGlobPub):
        return [_in_folder(publisher.globexpression, folder, relative=True, where=where, what="fromglob-pub pattern")]
    if isinstance(publisher, FromYamlPub):
        return [_in_folder(publisher.yamlfile, folder, relative=True, where=where, what="fromyaml-pub file")]
    if isinstance(publisher, FromParJqPub):
        return _strings(_from_jq(publisher, parameters, folder, where, expand=False))
    return []


def publish(
    publisher: Any,
    parameters: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    where: str = "step",
    given: Mapping[str, Any] | None = None,
) -> Any:
    """Evaluate a step's publisher after it ran in ``workdir``.

    Relative paths (``relative_paths``, ``fromglob-pub``, ``fromyaml-pub``) are
    joined to the step's folder and must stay inside it. ``given``: the values a
    person provided, which a ``manual-instructions-pub`` publishes.

    Raises:
        SpecError: a parameter or file the publisher needs is missing, a relative
            path leads out of the step's folder, or a ``manual-instructions-pub``
            has no ``given`` values.
    """
    folder = str(Path(workdir).resolve())
    if isinstance(publisher, ManualInstructionsPub):
        if given is None:
            raise SpecError(f"{where}: manual-instructions-pub publishes values a person provides, and none were given")
        return json.loads(json.dumps(dict(given)))
    if isinstance(publisher, ConstantPub):
        return json.loads(json.dumps(publisher.publish))
    if isinstance(publisher, FromParPub):
        return _from_parameters(publisher, parameters, where)
    if isinstance(publisher, InterpolatedPub):
        return _interpolated(publisher, parameters, folder, where)
    if isinstance(publisher, FromGlobPub):
        pattern = _in_folder(publisher.globexpression, folder, relative=True, where=where, what="fromglob-pub pattern")
        return {publisher.outputkey: _glob(pattern)}
    if isinstance(publisher, FromYamlPub):
        from mltoolkit.yamlfiles import read_yaml

        path = _in_folder(publisher.yamlfile, folder, relative=True, where=where, what="fromyaml-pub file")
        return read_yaml(path, what=f"{where}: fromyaml-pub file", error=SpecError)
    if isinstance(publisher, FromParJqPub):
        return _from_jq(publisher, parameters, folder, where)
    raise SpecError(f"{where}: unknown publisher {type(publisher).__name__}")  # pragma: no cover
