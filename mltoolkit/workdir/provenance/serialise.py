"""Writing a run crate: only its metadata file, streamed, atomically.

ro-crate-py's own writers would copy data entities (or warn about their missing
sources); the work directory already is the crate's payload, so the JSON-LD is
generated and written here, and nothing else is copied or fetched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltoolkit.workdir.artifacts import atomic_output
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.workdir.provenance.run import build_run_crate
from mltoolkit.workdir.record import RunRecord

__all__ = ["write_run_crate"]


def write_run_crate(workdir: str | os.PathLike[str], record: RunRecord | Mapping[str, Any]) -> Path:
    """Describe the run ``record`` as ``WORKDIR/ro-crate-metadata.json``; return its path.

    Only the metadata file is written (atomically: temp file + rename), so a
    crash never leaves a half-written crate and no data file is copied.

    Args:
        workdir: the run's work directory, which becomes the crate's root.
        record: the run record (a :class:`~mltoolkit.workdir.record.RunRecord`, or
            a mapping in ``run.json``'s format); fields it lacks are tolerated,
            so older records still get a crate.
    """
    layout = WorkdirLayout(workdir)
    document = build_run_crate(layout.root, record).metadata.generate()
    with atomic_output(layout.crate) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        # One entity per line, each through json's C encoder (indent= would
        # force the pure-Python one, several times slower on 10,000 steps);
        # streaming keeps the whole text out of memory.
        handle.write('{"@context": ' + json.dumps(document["@context"], ensure_ascii=False) + ',\n"@graph": [\n')
        for position, entity in enumerate(document["@graph"]):
            if position:
                handle.write(",\n")
            handle.write(json.dumps(_compact(entity), ensure_ascii=False, default=str))
        handle.write("\n]}\n")
        handle.flush()
        os.fsync(handle.fileno())
    return layout.crate


def _compact(entity: Mapping[str, Any]) -> dict[str, Any]:
    """RO-Crate's JSON-LD style: a single value rather than a one-element list (same RDF)."""
    return {key: value[0] if isinstance(value, list) and len(value) == 1 else value for key, value in entity.items()}
