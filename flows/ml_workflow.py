"""The seed's analysis as a Prefect flow: ``data_prep`` -> ``classify.map`` -> ``merge_and_plot``.

Run it::

    python -m flows.ml_workflow --inputs inputs.yml [--workdir DIR] [-p key=value ...]

Outputs follow yadage's layout: ``WORKDIR/data_prep/prepped_data.pkl``,
``WORKDIR/classification_<i>/<name>.pkl``, ``WORKDIR/merge_and_visualize/ml_results.png``
and ``WORKDIR/scores.json``.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not {"-h", "--help"} & set(sys.argv[1:]):
    # Why here, before the imports below: the API server and the warm worker
    # processes each need 1-3 s of imports; started first, they boot on the
    # other core while this process imports Prefect.
    from flows.startup import prepare_cli_process

    prepare_cli_process()

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from prefect import flow, task, unmapped

from flows.cli_support import exit_with_error, one_line_errors, run_app
from flows.compute_pool import pool_for_flow, run_in_pool
from flows.parameters import ClassifierParameter, to_parameter, to_spec
from mltoolkit.classifiers import ClassifierSpec
from mltoolkit.pipeline import (
    FIGURE_FILE,
    MERGE_DIR,
    SCORES_FILE,
    ClassificationOutput,
    FileRef,
    MergeOutput,
    check_inputs,
    classification_step,
    merge_step,
    prepare_data_step,
)

__all__ = ["data_prep", "classify", "merge_and_plot", "ml_workflow", "app", "main"]


@task(name="data_prep", task_run_name="data_prep")
def data_prep(
    dataset: str,
    workdir: str,
    dataset_sha256: Optional[str] = None,
) -> FileRef:
    """Load, standardise and split the dataset; save ``WORKDIR/data_prep/prepped_data.pkl``."""
    return run_in_pool(prepare_data_step, dataset, workdir, dataset_sha256=dataset_sha256)


@task(name="classify", task_run_name="classify[{classifier.name}]")
def classify(
    prepped: FileRef,
    classifier: ClassifierSpec,
    workdir: str,
    index: int,
) -> ClassificationOutput:
    """Train and score one classifier; save ``WORKDIR/classification_<index>/<name>.pkl``."""
    return run_in_pool(classification_step, prepped, classifier, workdir, index)


@task(name="merge_and_plot", task_run_name="merge_and_plot")
def merge_and_plot(
    prepped: FileRef,
    classifications: list[ClassificationOutput],
    workdir: str,
) -> MergeOutput:
    """Draw the side-by-side figure and write ``scores.json``."""
    # Prefect hands mapped results over as a PrefectFutureList; a plain list
    # keeps Prefect out of the worker process that unpickles the arguments.
    return run_in_pool(merge_step, prepped, list(classifications), workdir)


@flow(
    name="ml-workflow",
    description=(
        "The seed's ML analysis: prepare the dataset, train each classifier in parallel, "
        "draw the decision surfaces side by side."
    ),
)
async def ml_workflow(
    dataset: str,
    classifiers: list[ClassifierParameter],
    workdir: str = "workdir",
    dataset_sha256: Optional[str] = None,
) -> dict[str, float]:
    """Run the analysis and return ``{classifier name: test score}``.

    Args:
        dataset: path, ``file://`` or ``http(s)://`` URL of a table ``x y label``.
        classifiers: registered names or ``{name, estimator, params}`` entries.
        workdir: folder for the outputs (yadage's layout).
        dataset_sha256: expected sha256 of the dataset file.
    """
    specs = [to_spec(entry) for entry in classifiers]
    workdir = str(Path(workdir).resolve())
    with pool_for_flow():
        prepped = data_prep(dataset, workdir, dataset_sha256)
        classifications = classify.map(
            unmapped(prepped), specs, workdir=unmapped(workdir), index=range(len(specs))
        )
        merge_and_plot(prepped, classifications, workdir)
        outputs = classifications.result()
    return {output.name: output.score for output in outputs}


# --- command line -------------------------------------------------------------------

app = typer.Typer(
    add_completion=False,
    help="Run the seed's ML analysis as a Prefect flow.",
    pretty_exceptions_enable=False,
)


def check_workdir(workdir: Path) -> Path:
    """Create ``workdir`` if needed and make sure it is a writable folder."""
    from mltoolkit.errors import WorkdirError

    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir}: is a file, expected a folder; pick another path")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkdirError(f"--workdir {workdir}: cannot create folder ({exc.strerror})") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise WorkdirError(f"--workdir {workdir}: folder is not writable; pick another path")
    return workdir.resolve()


def format_scores(scores: dict[str, float], figure: Path) -> str:
    """The table the command prints at the end."""
    width = max([len("classifier")] + [len(name) for name in scores])
    lines = [f"{'classifier':<{width}}  score", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {score:.2f}" for name, score in scores.items()]
    lines.append(f"figure: {figure}")
    return "\n".join(lines)


@app.command()
@one_line_errors
def main(
    inputs: Annotated[
        Optional[Path],
        typer.Option("--inputs", "-i", help="YAML file with 'dataset' and 'classifiers'.",
                     dir_okay=False),
    ] = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", "-w", help="Folder for the outputs.", file_okay=False)
    ] = Path("workdir"),
    parameter: Annotated[
        Optional[list[str]],
        typer.Option("--parameter", "-p", help="Override an input: key=value (value is YAML)."),
    ] = None,
) -> None:
    """Run data_prep -> classify (one task per classifier) -> merge_and_plot."""
    from flows import temporary_server
    from mltoolkit.inputs import load_inputs
    from mltoolkit.yamlfiles import parse_assignments

    overrides = parse_assignments(parameter or [])
    if inputs is None and not overrides:
        exit_with_error("no inputs: pass --inputs inputs.yml or -p dataset=... -p classifiers=[...]")
    run_inputs = load_inputs(inputs, overrides)
    workdir = check_workdir(workdir)
    run_in_pool(check_inputs, run_inputs)
    try:
        temporary_server.wait_until_ready()
    except RuntimeError as exc:
        exit_with_error(exc)
    parameters = run_inputs.as_parameters()
    try:
        scores = asyncio.run(
            ml_workflow(
                dataset=parameters["dataset"],
                classifiers=[to_parameter(spec) for spec in run_inputs.classifiers],
                workdir=str(workdir),
                dataset_sha256=parameters["dataset_sha256"],
            )
        )
    except Exception as exc:  # the flow's own failure, already logged by Prefect
        from mltoolkit.errors import MLToolkitError

        if isinstance(exc, MLToolkitError):
            raise
        exit_with_error(f"flow run failed: {type(exc).__name__}: {exc}")
    typer.echo(format_scores(scores, workdir / MERGE_DIR / FIGURE_FILE))
    typer.echo(f"scores: {workdir / SCORES_FILE}")


if __name__ == "__main__":
    run_app(app, prog_name="python -m flows.ml_workflow")
