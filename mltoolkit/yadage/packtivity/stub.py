"""Stub steps: check a workflow's wiring end to end without running its steps (like Nextflow's ``-stub-run``).

A stub step runs nothing -- no process, no image, no resource, no person -- and
leaves what the step is declared to leave, so every later stage finds its
inputs and the run goes on exactly as a real one would schedule it:

* each file the publisher names inside the step's folder is created empty
  (:func:`~mltoolkit.yadage.packtivity.publishers.publisher_paths`): an
  ``interpolated-pub`` value ``{outfile}``, a ``frompar-pub`` parameter naming a
  file in the folder, a ``fromparjq-pub`` result, the ``fromglob-pub`` pattern;
* a glob pattern (``{outdir}/*.pkl``) gets one empty file that matches it, named
  after the pattern with ``stub`` for each ``*`` (``stub.pkl``), ``s`` for each
  ``?`` and the first matching character of each ``[...]`` class;
* a ``fromyaml-pub`` file, whose keys only the real step knows, is written with
  one entry per output later stages read from the stage
  (:mod:`~mltoolkit.yadage.readers`): a one-element list holding an empty file
  ``stub_<key>`` of the step's folder (a list, so a scatter over it schedules
  one step); with no reader the file holds an empty mapping;
* a ``manual-instructions-pub`` (a human step) publishes that same mapping, without asking anyone;

then the step's real publisher runs on what is there, so what it publishes has
the shape the real step's publication would have. Paths outside the step's
folder (an input passed on) are left alone. ``_packtivity/<name>.stub`` lists
the files the stub made.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mltoolkit.errors import SpecError
from mltoolkit.workdir.layout import inside_workdir, step_private_dir
from mltoolkit.yadage.model import FromYamlPub, ManualInstructionsPub, StepSpec
from mltoolkit.yadage.packtivity.publishers import publish, publisher_paths
from mltoolkit.yadage.packtivity.step_options import StepResult
from mltoolkit.yadage.readers import ReadOutputs

__all__ = ["STUB_ENVIRONMENT", "StubPlan", "run_stub_step", "stub_match", "stub_publication"]

#: The ``environment`` a stub step reports (where it "ran").
STUB_ENVIRONMENT = "stub"

_MAGIC = re.compile(r"\*+|\?|\[[^\]]+\]")
_CLASS_CANDIDATES = "s0abcdefghijklmnopqrtuvwxyz123456789_"


@dataclass
class StubPlan:
    """Makes a run a stub run: what later stages read from each stage (stage name -> outputs read)."""

    reads: dict[str, ReadOutputs] = field(default_factory=dict)


def _class_char(token: str) -> str:
    for candidate in _CLASS_CANDIDATES:
        if fnmatch.fnmatchcase(candidate, token):
            return candidate
    raise SpecError(f"glob class {token!r} matches none of the characters {_CLASS_CANDIDATES!r}; cannot stub a match")


def stub_match(pattern: str) -> str:
    """A path that the glob ``pattern`` matches: ``stub`` for ``*``, ``s`` for ``?``, a member for ``[...]``."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("*"):
            return "stub"
        return "s" if token == "?" else _class_char(token)

    return _MAGIC.sub(replace, pattern)


def _strictly_inside(path: str, folder: str) -> bool:
    normal = os.path.normpath(path)
    return os.path.isabs(path) and normal != folder and normal.startswith(folder + os.sep)


def _touch(folder: Path, path: str, label: str) -> str:
    """Create ``path`` (an empty file, its folders too) unless something is there; the path made."""
    target = inside_workdir(folder, path, what=f"{label}: stub output")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    return str(target)


def _stub_file(folder: Path, text: str, label: str) -> str:
    """Create the file ``text`` names, or one match of it when it is a glob pattern."""
    if not glob.has_magic(text):
        return _touch(folder, text, label)
    made = _touch(folder, stub_match(text), label)
    if made not in {str(Path(match).resolve()) for match in glob.glob(text, recursive=True)}:
        raise SpecError(f"{label}: could not make a file that matches the glob {text!r} for the stub run")
    return made


def stub_publication(reads: ReadOutputs | None, folder: Path, label: str) -> dict[str, list[str]]:
    """The stand-in for values only the real step (or a person) knows: key -> [empty file ``stub_<key>``]."""
    keys = reads.sorted_keys() if reads is not None else []
    return {key: [_touch(folder, str(folder / f"stub_{key}"), label)] for key in keys}


def run_stub_step(
    step: StepSpec,
    parameters: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    name: str,
    stage: str | None = None,
    reads: ReadOutputs | None = None,
) -> StepResult:
    """Stand in for a step: make its declared outputs empty, then publish what its publisher finds.

    The result's ``environment`` is :data:`STUB_ENVIRONMENT`, its ``log_path`` the
    listing of the files made.

    Raises:
        SpecError: the publisher cannot be evaluated (a template names an unknown
            parameter...), the same errors the real step would meet.
        WorkdirError: a declared output leads out of the step's folder through a link.
    """
    started = time.monotonic()
    folder = Path(workdir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    label = f"stage {stage!r} step {name}" if stage else f"step {name}"
    publisher = step.publisher
    made: list[str] = []
    given: dict[str, list[str]] | None = None
    if isinstance(publisher, (FromYamlPub, ManualInstructionsPub)):
        given = stub_publication(reads, folder, label)
        made += [path for paths in given.values() for path in paths]
    if isinstance(publisher, FromYamlPub):
        (yaml_file,) = publisher_paths(publisher, parameters, folder, where=label)
        target = inside_workdir(folder, yaml_file, what=f"{label}: fromyaml-pub file")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(given, default_flow_style=False), encoding="utf-8")
        made.append(str(target))
    else:
        for text in publisher_paths(publisher, parameters, folder, where=label):
            if _strictly_inside(text, str(folder)):
                made.append(_stub_file(folder, text, label))
    published = publish(publisher, parameters, folder, where=label, given=given)
    private = inside_workdir(folder, step_private_dir(folder), what=f"{label}: private folder")
    private.mkdir(exist_ok=True)
    listing = inside_workdir(private, private / f"{name}.stub", what=f"{label}: stub listing")
    listing.write_text("".join(f"{path}\n" for path in made), encoding="utf-8")
    duration = time.monotonic() - started
    return StepResult(published, None, listing, "", STUB_ENVIRONMENT, duration, where={"kind": STUB_ENVIRONMENT})
