"""The seed's analysis as a Prefect flow: ``data_prep`` -> ``classify.map`` -> ``merge_and_plot``.

Run it::

    python -m flows.ml_workflow --inputs inputs.yml [--workdir DIR] [-p key=value ...]

Outputs follow yadage's layout: ``WORKDIR/data_prep/prepped_data.pkl``,
``WORKDIR/classification_<i>/<name>.pkl``, ``WORKDIR/merge_and_visualize/ml_results.png``
and ``WORKDIR/scores.json``. Steps are cached in the work directory
(``flows.caching``), so a second run, or a run after a crash, only redoes what changed.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not {"-h", "--help"} & set(sys.argv[1:]):
    # Why here, before the imports below: the API server and the warm worker
    # processes each need 1-3 s of imports; started first, they boot on the
    # other core while this process imports Prefect.
    from flows.startup import prepare_cli_process

    prepare_cli_process()

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from prefect import flow, task, unmapped
from prefect.context import FlowRunContext, TaskRunContext

from flows.caching import CacheSettings, cache_options, definition_of, prune_stale_cache, record_step_outputs
from flows.cli_support import check_workdir, exit_with_error, one_line_errors, run_app, run_flow_from_cli
from flows.startup.compute_pool import pool_for_flow, run_in_pool
from flows.expected_errors import install_expected_error_filter
from flows.parameters import ClassifierParameter, to_parameter, to_spec
from flows.run_guard import guarded_run
from flows.run_record import now_iso, task_run_details, write_run_record
from flows.runners import RUNNERS, make_task_runner, runner_from_environment, uses_compute_pool
from flows.ui_artifacts import publish_figure, publish_output_files, publish_scores
from mltoolkit.analysis.classifiers import ClassifierSpec
from mltoolkit.analysis.pipeline import (
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
from mltoolkit.errors import MLToolkitError

install_expected_error_filter()

__all__ = ["app", "classify", "data_prep", "main", "merge_and_plot", "ml_workflow"]


def _files_of(value: Any) -> dict[str, str]:
    """Every :class:`FileRef` inside a step's result, as ``{path: sha256}``."""
    if isinstance(value, FileRef):
        return {value.path: value.sha256}
    found: dict[str, str] = {}
    for item in getattr(value, "__dataclass_fields__", {}):
        found.update(_files_of(getattr(value, item)))
    return found


def _run_step(function: Callable[..., Any], workdir: str, timeout: float | None, **inputs: Any) -> Any:
    """Run a pipeline step (in the warm pool when active) and write its cache manifest."""
    try:
        result = run_in_pool(function, workdir=workdir, timeout=timeout, **inputs)
    except MLToolkitError as error:
        # the message names a function or a classifier; users know the step by its task run name
        hint = "; raise --step-timeout or check the step" if timeout and "did not finish within" in str(error) else ""
        raise type(error)(f"step {_task_run_name()}: {error}{hint}") from None
    record_step_outputs(workdir, _files_of(result))
    return result


def _task_run_name() -> str:
    context = TaskRunContext.get()
    return context.task_run.name if context and context.task_run else "?"


def _timeout() -> float | None:
    context = FlowRunContext.get()
    value = context.flow_run.parameters.get("step_timeout") if context and context.flow_run else None
    return float(value) if value else None


@task(name="data_prep", task_run_name="data_prep")
def data_prep(dataset: str, workdir: str, dataset_sha256: str | None = None) -> FileRef:
    """Load, standardise and split the dataset; save ``WORKDIR/data_prep/prepped_data.pkl``."""
    return _run_step(prepare_data_step, workdir, _timeout(), dataset=dataset, dataset_sha256=dataset_sha256)


@task(name="classify", task_run_name="classify[{classifier.name}]")
def classify(prepped: FileRef, classifier: ClassifierSpec, workdir: str, index: int) -> ClassificationOutput:
    """Train and score one classifier; save ``WORKDIR/classification_<index>/<name>.pkl``."""
    return _run_step(classification_step, workdir, _timeout(), prepped=prepped, classifier=classifier, index=index)


@task(name="merge_and_plot", task_run_name="merge_and_plot")
def merge_and_plot(prepped: FileRef, classifications: list[ClassificationOutput], workdir: str) -> MergeOutput:
    """Draw the side-by-side figure and write ``scores.json``."""
    # Prefect hands mapped results over as a PrefectFutureList; a plain list
    # keeps Prefect out of the worker process that unpickles the arguments.
    return _run_step(merge_step, workdir, _timeout(), prepped=prepped, classifications=list(classifications))


_STEP_FUNCTIONS = {"data_prep": prepare_data_step, "classify": classification_step, "merge_and_plot": merge_step}


@flow(
    name="ml-workflow",
    description=(
        "The seed's ML analysis: prepare the dataset, train each classifier in parallel, "
        "draw the decision surfaces side by side."
    ),
    task_runner=runner_from_environment(),
)
async def ml_workflow(
    dataset: str,
    classifiers: list[ClassifierParameter],
    workdir: str = "workdir",
    dataset_sha256: str | None = None,
    use_cache: bool = True,
    refresh_cache: bool = False,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    step_timeout: float | None = None,
) -> dict[str, float]:
    """Run the analysis and return ``{classifier name: test score}``.

    Args:
        dataset: path, ``file://`` or ``http(s)://`` URL of a table ``x y label``.
        classifiers: registered names or ``{name, estimator, params}`` entries.
        workdir: folder for the outputs (yadage's layout).
        dataset_sha256: expected sha256 of the dataset file.
        use_cache: reuse steps whose inputs and code are unchanged (results kept in the workdir).
        refresh_cache: run every step again and store the new results.
        retries: how often a failed step is retried.
        retry_delay_seconds: pause before each retry.
        step_timeout: seconds after which a running step is killed and fails.
    """
    specs = [to_spec(entry) for entry in classifiers]
    root = str(Path(workdir).resolve())
    settings = CacheSettings(enabled=use_cache, refresh=refresh_cache)
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    in_pool = uses_compute_pool(context.task_runner) if context else True
    started = now_iso()
    produced = _Produced()
    status = "failed"
    with guarded_run(root, "ml-workflow"), pool_for_flow(enabled=in_pool):
        if use_cache:
            prune_stale_cache(root)

        def configured(step: Any) -> Any:
            return step.with_options(
                retries=retries,
                retry_delay_seconds=retry_delay_seconds,
                timeout_seconds=step_timeout if not in_pool else None,
                **cache_options(root, definition_of(_STEP_FUNCTIONS[step.name]), settings),
            )

        try:
            produced.prepped = configured(data_prep)(dataset, root, dataset_sha256)
            futures = configured(classify).map(
                unmapped(produced.prepped), specs, workdir=unmapped(root), index=range(len(specs))
            )
            produced.classify_futures = list(futures)
            produced.merged = configured(merge_and_plot)(produced.prepped, futures, root)
            scores = {output.name: output.score for output in futures.result()}
            status = "completed"
        finally:
            details = await task_run_details(flow_run_id, expected=produced.task_run_names(specs))
            write_run_record(
                root,
                status=status,
                flow="ml-workflow",
                flow_run_id=flow_run_id,
                started=started,
                steps=_step_records(root, dataset, dataset_sha256, specs, produced, details),
                workflow={"flow": "flows/ml_workflow.py:ml_workflow", "file": str(Path(__file__).resolve())},
                inputs={
                    "dataset": dataset,
                    "dataset_sha256": dataset_sha256,
                    "classifiers": [to_parameter(spec) for spec in specs],
                },
            )
        await publish_scores(scores)
        await publish_figure(produced.merged.figure.resolve(root))
        await publish_output_files(root, key="ml-output-files")
    return scores


class _Produced:
    """What the native flow's steps returned so far (for the run record, also after a failure)."""

    def __init__(self) -> None:
        self.prepped: FileRef | None = None
        self.classify_futures: list[Any] = []
        self.merged: MergeOutput | None = None

    def task_run_names(self, specs: list[ClassifierSpec]) -> list[str]:
        """The task runs this flow run started, which the run record waits for."""
        names = ["data_prep"]
        if self.classify_futures:
            names += [f"classify[{spec.name}]" for spec in specs]
        if self.merged is not None:
            names.append("merge_and_plot")
        return names


def _step_records(
    root: str,
    dataset: str,
    dataset_sha256: str | None,
    specs: list[ClassifierSpec],
    produced: _Produced,
    details: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """The native flow's steps in the run record's format, named as in the seed's spec."""

    def record(
        stage: str,
        index: int | None,
        name: str,
        task_name: str,
        parameters: dict[str, Any],
        result: Any,
        published: Any,
    ) -> dict[str, Any]:
        timing = details.get(task_name, {})
        return {
            "id": f"/{name}",
            "scope": "",
            "stage": stage,
            "index": index,
            "name": name,
            "workdir": str(Path(root) / name),
            "parameters": parameters,
            "published": published if result is not None else None,
            "state": timing.get("state", "PENDING"),
            "outputs": _files_of(result) if result is not None else {},
            **{key: timing.get(key) for key in ("started", "ended", "attempts", "task_run_id")},
            "error": timing.get("error"),
        }

    def absolute(ref: FileRef | None) -> str | None:
        return str(ref.resolve(root)) if ref is not None else None

    prepped_path = absolute(produced.prepped)
    steps = [
        record(
            "data_prep",
            None,
            "data_prep",
            "data_prep",
            {"dataset": dataset, "dataset_sha256": dataset_sha256},
            produced.prepped,
            {"prepped_data": prepped_path},
        )
    ]
    outcomes: list[ClassificationOutput | None] = []
    for index, spec in enumerate(specs):
        future = produced.classify_futures[index] if index < len(produced.classify_futures) else None
        outcome = future.result() if future is not None and future.state.is_completed() else None
        outcomes.append(outcome)
        steps.append(
            record(
                "classification",
                index,
                f"classification_{index}",
                f"classify[{spec.name}]",
                {"input_data": prepped_path, "classifier": to_parameter(spec)},
                outcome,
                {"ml_output": absolute(outcome.result) if outcome else None},
            )
        )
    merged = produced.merged
    steps.append(
        record(
            "merge_and_visualize",
            None,
            "merge_and_visualize",
            "merge_and_plot",
            {
                "input_data": prepped_path,
                "ml_inputs": [absolute(outcome.result) if outcome else None for outcome in outcomes],
            },
            merged,
            {
                "ml_result": absolute(merged.figure) if merged else None,
                "scores": absolute(merged.scores) if merged else None,
            },
        )
    )
    return steps


# --- command line -------------------------------------------------------------------

app = typer.Typer(
    add_completion=False,
    help="Run the seed's ML analysis as a Prefect flow.",
    pretty_exceptions_enable=False,
)


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
        Path | None,
        typer.Option("--inputs", "-i", help="YAML file with 'dataset' and 'classifiers'.", dir_okay=False),
    ] = None,
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="Folder for the outputs.")] = Path("workdir"),
    parameter: Annotated[
        list[str] | None,
        typer.Option("--parameter", "-p", help="Override an input: key=value (value is YAML)."),
    ] = None,
    runner: Annotated[str, typer.Option("--runner", help=f"Task runner: {', '.join(RUNNERS)}.")] = "thread",
    dask_address: Annotated[
        str | None, typer.Option("--dask-address", help="Use an existing Dask scheduler (with --runner dask).")
    ] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Re-run every step, then cache the new results.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither reuse nor store cached steps.")] = False,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a failed step.")] = 0,
    retry_delay: Annotated[float, typer.Option("--retry-delay", min=0, help="Seconds before a retry.")] = 0.0,
    step_timeout: Annotated[
        float | None, typer.Option("--step-timeout", min=0.001, help="Kill a step after this many seconds.")
    ] = None,
) -> None:
    """Run data_prep -> classify (one task per classifier) -> merge_and_plot."""
    from mltoolkit.analysis.inputs import load_inputs
    from mltoolkit.yamlfiles import parse_assignments

    task_runner = make_task_runner(runner, dask_address)
    overrides = parse_assignments(parameter or [])
    if inputs is None and not overrides:
        exit_with_error("no inputs: pass --inputs inputs.yml or -p dataset=... -p classifiers=[...]")
    run_inputs = load_inputs(inputs, overrides)
    workdir = check_workdir(workdir)
    run_in_pool(check_inputs, run_inputs)
    scores = run_flow_from_cli(
        workdir,
        "python -m flows.ml_workflow",
        lambda: ml_workflow.with_options(task_runner=task_runner)(
            dataset=run_inputs.dataset,
            classifiers=[to_parameter(spec) for spec in run_inputs.classifiers],
            workdir=str(workdir),
            dataset_sha256=run_inputs.dataset_sha256,
            use_cache=not no_cache,
            refresh_cache=refresh,
            retries=retries,
            retry_delay_seconds=retry_delay,
            step_timeout=step_timeout,
        ),
    )
    typer.echo(format_scores(scores, workdir / MERGE_DIR / FIGURE_FILE))
    typer.echo(f"scores: {workdir / SCORES_FILE}")


if __name__ == "__main__":
    run_app(app, prog_name="python -m flows.ml_workflow")
