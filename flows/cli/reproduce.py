"""``mltoolkit reproduce`` (also ``python -m flows.reproduce``): re-run an archived run and compare its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.flow_run import check_workdir, run_flow_from_cli
from flows.cli.options import (
    AbsoluteTolerance,
    ImageTolerance,
    OptionalWorkdirOption,
    RelativeTolerance,
    TrustArchive,
)
from mltoolkit.errors import CommandLineError

__all__ = ["reproduce"]

Source = Annotated[str, typer.Argument(help="The archived run: its work directory, crate folder or archive zip.")]


def _fresh_workdir(workdir: Path | None, source: str) -> Path:
    """The new run's folder: must be missing or empty, so nothing of another run is compared."""
    chosen = workdir or Path(f"{Path(source).resolve().stem or 'run'}-reproduced")
    if chosen.is_dir() and any(chosen.iterdir()):
        raise CommandLineError(
            f"--workdir {chosen}: not empty; reproduce runs in a fresh work directory: pass a new --workdir"
        )
    return check_workdir(chosen)


def reproduce(
    context: typer.Context,
    source: Source,
    workdir: OptionalWorkdirOption = None,
    rtol: RelativeTolerance = 1e-6,
    atol: AbsoluteTolerance = 1e-9,
    image_tolerance: ImageTolerance = 0.001,
    trust_archive: TrustArchive = False,
) -> None:
    """Re-run an archived run (as it was submitted, without the cache) in a fresh --workdir (missing or empty;
    default ./<source name>-reproduced) and compare every output with the archived one.
    Exit code 0 when every output is identical or within tolerance, 1 otherwise."""
    # Imported here, not above: importing Prefect must wait for the start-up helpers (flows.cli).
    from flows.reproduce import reproduce as reproduce_flow
    from mltoolkit.preservation.report import render_text
    from mltoolkit.preservation.rerun import plan_rerun
    from mltoolkit.preservation.sources import open_run
    from mltoolkit.workdir.layout import WorkdirLayout

    with open_run(source) as archived:  # bad input ends here, as one line, before any flow run starts
        plan_rerun(archived)
    root = _fresh_workdir(workdir, source)
    report = run_flow_from_cli(
        context,
        root,
        lambda: reproduce_flow(
            source=str(Path(source).resolve()),
            workdir=str(root),
            rtol=rtol,
            atol=atol,
            image_tolerance=image_tolerance,
            trust_archive=trust_archive,
        ),
    )
    typer.echo(render_text(report))
    layout = WorkdirLayout(root)
    typer.echo(f"report: {layout.reproduction('md')}")
    raise typer.Exit(report["exit_code"])
