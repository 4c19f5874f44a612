"""The parts of a step's cache key, why a step ran instead of being reused, and a run's summary line.

A key is the sha256 of its parts (:class:`KeyComponents`). The parts of the key
a step last stored are kept beside the cache, so when the key changes
:func:`explain` can say which part changed, in the words ``run.json`` records::

    first run
    code changed: mltoolkit/analysis/classifiers.py
    library changed: scikit-learn 1.9.1 -> 1.9.2
    parameter changed: classifier
    input changed: classification_0/nearest_neighbours.pkl

:func:`summary_line` turns a run's steps into the line the commands print::

    5 reused, 2 ran: classification_0 (code changed: mltoolkit/analysis/classifiers.py), merge_and_visualize (...)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REUSED", "KeyComponents", "explain", "summary_line"]

#: The reason recorded for a step whose stored result was reused.
REUSED = "reused"
#: How many names a reason lists before it says how many more there are.
_NAMES_SHOWN = 3
#: How many steps a summary line names per reason.
_STEPS_SHOWN = 5


@dataclass
class KeyComponents:
    """Everything a step's cache key covers.

    ``code`` digests the code the step can run; ``toolkit`` all of the toolkit's
    code, and ``inputs`` names the files behind each parameter (place -> sha256):
    those two explain a changed key but are not part of it (a file's content is
    already in ``parameters``, and a step need not run again for code it cannot run).
    """

    step: str
    definition: Any
    parameters: dict[str, Any]
    code: str
    libraries: dict[str, str]
    image: str | None = None
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    toolkit: str = ""

    def key(self, label: str) -> str:
        """The cache key: ``<label>-<40 hex digits>`` (label: the step's stage or task name)."""
        payload = self.to_json()
        del payload["inputs"], payload["toolkit"]
        encoded = json.dumps(payload, sort_keys=True, default=repr).encode()
        return f"{label.replace('/', '_')}-{hashlib.sha256(encoded).hexdigest()[:40]}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what is kept beside the cache); its values are shared, not copied.

        The fields hold plain JSON values already (fingerprints, versions), so the
        deep copy of :func:`dataclasses.asdict` -- a tenth of a step's own work in a
        large scatter -- would change nothing in the JSON.
        """
        return {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> KeyComponents | None:
        """The components in ``data``; ``None`` when it is not such a dict (an older or damaged file)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{item.name: data[item.name] for item in dataclasses.fields(cls) if item.name in data})
        except TypeError:
            return None


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown if len(names) <= _NAMES_SHOWN else f"{shown} and {len(names) - _NAMES_SHOWN} more"


def _short(identifier: str | None) -> str:
    if identifier is None:
        return "none"
    return identifier.removeprefix("sha256:")[:12]


def _changed(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    return sorted(name for name in set(before) | set(now) if before.get(name) != now.get(name))


def _definition_change(before: Any, now: Any) -> str:
    if isinstance(before, dict) and isinstance(now, dict):
        return f"step definition changed: {_some(_changed(before, now))}"
    return "step definition changed"


def _parameter_changes(previous: KeyComponents, current: KeyComponents) -> list[str]:
    """``input changed: <files>`` for parameters whose files changed, ``parameter changed: <names>`` for the rest."""
    files: list[str] = []
    names: list[str] = []
    for name in _changed(previous.parameters, current.parameters):
        before, now = previous.inputs.get(name, {}), current.inputs.get(name, {})
        # the files it reads now that are new or differ; only when there are none, the ones it no longer reads
        changed_files = [place for place in sorted(now) if before.get(place) != now[place]]
        changed_files = changed_files or [place for place in sorted(before) if place not in now]
        # an upstream output that changed explains the new value (a new score comes with a new pickle)
        if changed_files:
            files.extend(place for place in changed_files if place not in files)
        else:
            names.append(name)
    reasons = [f"input changed: {_some(files)}"] if files else []
    return reasons + ([f"parameter changed: {_some(names)}"] if names else [])


def explain(
    previous: KeyComponents | None,
    current: KeyComponents,
    code_files: tuple[Mapping[str, str] | None, Mapping[str, str]] = (None, {}),
) -> str:
    """Why ``current`` differs from the ``previous`` stored components, one line.

    ``code_files`` holds the per-file digests of the previous and the current
    code (the previous may be unknown), so a code change names its files.
    """
    if previous is None:
        return "first run"
    reasons: list[str] = []
    libraries = [
        f"{name} {previous.libraries.get(name, 'none')} -> {current.libraries.get(name, 'none')}"
        for name in _changed(previous.libraries, current.libraries)
    ]
    if libraries:
        reasons.append(f"library changed: {', '.join(libraries)}")
    # the same toolkit, other code: the step runs another part of it (explained by its parameters)
    if previous.code != current.code and not (previous.toolkit and previous.toolkit == current.toolkit):
        before, now = code_files
        files = _changed(before, now) if before is not None else []
        reasons.append(f"code changed: {_some(files)}" if files else "code changed")
    if previous.image != current.image:
        reasons.append(f"image changed: {_short(previous.image)} -> {_short(current.image)}")
    if previous.definition != current.definition:
        reasons.append(_definition_change(previous.definition, current.definition))
    reasons += _parameter_changes(previous, current)
    if previous.step != current.step:
        reasons.append(f"step renamed: {previous.step} -> {current.step}")
    return "; ".join(reasons) or "key changed"


def _field(step: Any, name: str) -> Any:
    return step.get(name) if isinstance(step, Mapping) else getattr(step, name, None)


def _cache_of(step: Any) -> tuple[bool, str | None]:
    cache = _field(step, "cache")
    if cache is None:
        return False, None
    return bool(_field(cache, "reused")), _field(cache, "reason")


def _groups(steps: list[tuple[str, str]]) -> str:
    """``name, name (reason); name (reason)``: steps grouped by reason, in order of first appearance."""
    grouped: dict[str, list[str]] = {}
    for name, reason in steps:
        grouped.setdefault(reason, []).append(name)
    parts = []
    for reason, names in grouped.items():
        shown = ", ".join(names[:_STEPS_SHOWN])
        more = f" and {len(names) - _STEPS_SHOWN} more" if len(names) > _STEPS_SHOWN else ""
        parts.append(f"{shown}{more} ({reason})")
    separator = "; " if any(len(names) > 1 for names in grouped.values()) else ", "
    return separator.join(parts)


def summary_line(steps: Iterable[Any]) -> str:
    """One line: how many steps were reused and which ran, each with its reason.

    ``steps`` are ``run.json`` steps (dicts or :class:`~mltoolkit.workdir.record.RunStep`).
    """
    reused = 0
    ran: list[tuple[str, str]] = []
    failed = not_run = 0
    for step in steps:
        was_reused, reason = _cache_of(step)
        state = str(_field(step, "state") or "PENDING")
        if was_reused or state == "CACHED":
            reused += 1
        elif state == "COMPLETED":
            ran.append((str(_field(step, "name")), reason or "reason not recorded"))
        elif state == "FAILED":
            failed += 1
            ran.append((str(_field(step, "name")), f"failed; {reason or 'reason not recorded'}"))
        else:
            not_run += 1
    counts = [f"{reused} reused", f"{len(ran) - failed} ran"]
    counts += [f"{failed} failed"] if failed else []
    counts += [f"{not_run} not run"] if not_run else []
    line = ", ".join(counts)
    return f"{line}: {_groups(ran)}" if ran else line
