"""``mltoolkit run`` (also ``python -m flows.ml_workflow``): the seed's analysis as a Prefect flow."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.cli.flow_run import check_workdir, echo_cache_summary, run_flow_from_cli
from flows.cli.options import (
    DaskAddress,
    InputsFile,
    NoCache,
    Parameters,
    Quiet,
    Refresh,
    Retries,
    RetryDelay,
    Runner,
    StepTimeout,
    WorkdirOption,
)
from mltoolkit.errors import CommandLineError

__all__ = ["format_scores", "run"]


def format_scores(scores: dict[str, float], figure: Path) -> str:
    """The table the command prints at the end."""
    width = max([len("classifier")] + [len(name) for name in scores])
    lines = [f"{'classifier':<{width}}  score", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {score:.2f}" for name, score in scores.items()]
    lines.append(f"figure: {figure}")
    return "\n".join(lines)


def run(
    context: typer.Context,
    inputs: InputsFile = None,
    workdir: WorkdirOption = Path("workdir"),
    parameter: Parameters = None,
    runner: Runner = "thread",
    dask_address: DaskAddress = None,
    refresh: Refresh = False,
    no_cache: NoCache = False,
    retries: Retries = 0,
    retry_delay: RetryDelay = 0.0,
    step_timeout: StepTimeout = None,
    quiet: Quiet = False,
) -> None:
    """Run the seed's analysis: data_prep -> classify (one task per classifier) -> merge_and_plot."""
    # Imported here, not above: importing Prefect must wait for the start-up helpers (flows.cli).
    from flows.environment_runner import chosen_task_runner
    from flows.ml_workflow import ml_workflow
    from flows.parameters import CustomClassifier, split_classifiers
    from flows.runners import make_task_runner
    from flows.startup.compute_pool import run_in_pool
    from mltoolkit.analysis.inputs import load_inputs
    from mltoolkit.analysis.pipeline import FIGURE_FILE, MERGE_DIR, SCORES_FILE, check_inputs
    from mltoolkit.preservation.submitted import Submission
    from mltoolkit.yamlfiles import parse_assignments

    task_runner = make_task_runner(runner, dask_address)
    overrides = parse_assignments(parameter or [])
    if inputs is None and not overrides:
        raise CommandLineError("no inputs: pass --inputs inputs.yml or -p dataset=... -p classifiers=[...]")
    run_inputs = load_inputs(inputs, overrides)
    workdir = check_workdir(workdir)
    run_in_pool(check_inputs, run_inputs)
    # registered names and {name, estimator, params} mappings: the flow takes them as two parameters
    names, custom = split_classifiers(run_inputs.classifiers)
    with chosen_task_runner(task_runner):
        scores = run_flow_from_cli(
            context,
            workdir,
            lambda: ml_workflow(
                dataset=run_inputs.dataset,
                classifiers=names,
                custom_classifiers=[CustomClassifier.model_validate(entry) for entry in custom] or None,
                workdir=str(workdir),
                dataset_sha256=run_inputs.dataset_sha256,
                use_cache=not no_cache,
                refresh_cache=refresh,
                retries=retries,
                retry_delay_seconds=retry_delay,
                step_timeout=step_timeout,
                submission=Submission.from_command_line(inputs, parameter or []),
            ),
            quiet=quiet,
        )
    typer.echo(format_scores(scores, workdir / MERGE_DIR / FIGURE_FILE))
    typer.echo(f"scores: {workdir / SCORES_FILE}")
    echo_cache_summary(workdir)
