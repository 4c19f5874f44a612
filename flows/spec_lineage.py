"""Which files of this run a spec step reads: the lineage its pickles are checked against."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from flows.spec_tasks import text_leaves
from mltoolkit.yadage.planner import PlannedStep

__all__ = ["StepLineage"]

_GLOB = re.compile(r"[*?\[]")


class StepLineage:
    """The files the run's steps wrote so far, and which of them a step's parameters name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, str] = {}  # workdir-relative path -> sha256

    def add(self, files: dict[str, str]) -> None:
        """Note the files a finished step wrote."""
        self.files.update(files)

    def of(self, planned: PlannedStep) -> dict[str, str]:
        """The written files ``planned``'s parameters name: as files, as folders holding them, or by a glob."""
        found: dict[str, str] = {}
        for text in text_leaves(planned.parameters):
            if len(text) > 4096 or not os.path.isabs(text) or not Path(text).is_relative_to(self.root):
                continue
            relative = Path(text).relative_to(self.root).as_posix()
            if relative in self.files:
                found[relative] = self.files[relative]
            elif _GLOB.search(relative):
                pattern = f"/{relative}"
                found.update(
                    {path: sha for path, sha in self.files.items() if PurePosixPath(f"/{path}").match(pattern)}
                )
            elif os.path.isdir(text):
                found.update({path: sha for path, sha in self.files.items() if path.startswith(f"{relative}/")})
        return found
