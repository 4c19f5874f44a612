"""Where steps and subworkflow instances run: the one place that makes their folders' paths.

A step or instance of stage ``x`` runs in ``<scope folder>/x`` (one step) or
``<scope folder>/x_<i>``. Stage names are checked when the spec is validated
(:mod:`~mltoolkit.yadage.model.names`); this check is the second line of
defence: whatever the name, the folder must lie strictly inside the run's work
directory, because the step runner empties it before the step runs.
"""

from __future__ import annotations

from pathlib import Path

from mltoolkit.errors import SpecError, WorkdirError
from mltoolkit.workdir.layout import inside_workdir

__all__ = ["folder_name", "step_folder"]


def folder_name(stage: str, index: int | None) -> str:
    """``stage`` for a stage's single step or instance, ``stage_<index>`` for one of several."""
    return stage if index is None else f"{stage}_{index}"


def step_folder(workdir: Path, scope_directory: Path, name: str, *, where: str) -> Path:
    """The folder of step (or instance) ``name`` in a scope, checked to lie inside ``workdir`` (resolved).

    Raises:
        SpecError: ``name`` is not a single folder name, or the folder would be the work
            directory itself or outside it (also through a symbolic link).
    """
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise SpecError(f"{where}: step folder name {name!r} is not a single folder name; rename the stage")
    folder = scope_directory / name
    try:
        inside_workdir(workdir, folder, what="step folder", root_resolved=True)
    except WorkdirError as error:
        raise SpecError(f"{where}: {error}; rename the stage") from None
    return folder
