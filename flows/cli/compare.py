"""``mltoolkit compare`` (also ``python -m flows.compare``): two runs side by side, in this process."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.options import AbsoluteTolerance, ImageTolerance, RelativeTolerance

__all__ = ["compare"]

RunA = Annotated[str, typer.Argument(help="The first run: work directory, crate folder or archive zip.")]
RunB = Annotated[str, typer.Argument(help="The second run, compared against the first.")]


def compare(
    run_a: RunA,
    run_b: RunB,
    rtol: RelativeTolerance = 1e-6,
    atol: AbsoluteTolerance = 1e-9,
    image_tolerance: ImageTolerance = 0.001,
) -> None:
    """Compare two runs: inputs that differ, metrics side by side, files, steps ran vs reused, environment.
    Exit code 0 when every output is identical or within tolerance, 1 otherwise."""
    from mltoolkit.preservation.numeric import Tolerance
    from mltoolkit.preservation.run_diff import compare_two_runs, render_comparison
    from mltoolkit.preservation.sources import open_run

    tolerance = Tolerance(rtol=rtol, atol=atol, image=image_tolerance)
    with open_run(run_a) as first, open_run(run_b) as second:
        comparison = compare_two_runs(first, second, tolerance)
    typer.echo(render_comparison(comparison))
    raise typer.Exit(comparison.exit_code)
