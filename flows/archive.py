"""Archive a run: ``python -m flows.archive WORKDIR OUT.zip`` (the same as ``mltoolkit archive``).

Writes a self-contained RO-Crate zip of the run in ``WORKDIR``: the crate's
metadata at the zip's root, the run record, exact copies of what was submitted
(``_mltoolkit/submitted/``), the outputs, and ``_mltoolkit/archive.json`` with
the sha256 of every file. The work is :func:`mltoolkit.preservation.archive.write_archive`;
the command line is :mod:`flows.cli.archive`. Archiving runs no flow, so it
needs no Prefect server.
"""

from __future__ import annotations

__all__: list[str] = []

if __name__ == "__main__":
    from flows.cli import run_module_command

    run_module_command("archive", prog_name="python -m flows.archive")
