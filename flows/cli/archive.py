"""``mltoolkit archive`` (also ``python -m flows.archive``): a run's work directory as one self-contained zip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["archive"]

RunDirectory = Annotated[
    Path, typer.Argument(metavar="WORKDIR", help="The run's work directory (holding _mltoolkit/run.json).")
]
ArchiveFile = Annotated[Path, typer.Argument(metavar="OUT.zip", help="The zip to write (replaced when it exists).")]


def archive(workdir: RunDirectory, out_zip: ArchiveFile) -> None:
    """Pack the run in WORKDIR into OUT_ZIP: its RO-Crate, the submitted spec, inputs and data, its outputs,
    and _mltoolkit/archive.json with every file's sha256 (the cache is left out). `mltoolkit reproduce OUT_ZIP`
    re-runs it anywhere.
    """
    from mltoolkit.preservation.archive import write_archive

    summary = write_archive(workdir, out_zip)
    for link in summary.skipped_links:
        typer.echo(f"warning: {link}: a symbolic link leading outside the work directory, left out", err=True)
    typer.echo(f"archive: {summary.path} ({len(summary.files)} files, {summary.bytes / 1e6:.1f} MB uncompressed)")
