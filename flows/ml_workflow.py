"""The seed's analysis as a Prefect flow: ``data_prep`` -> ``classify.map`` -> ``merge_and_plot``.

Run it::

    python -m flows.ml_workflow --inputs inputs.yml [--workdir DIR] [-p key=value ...]

(the same as ``mltoolkit run``; the command line is :mod:`flows.cli.run`). Outputs
follow yadage's layout: ``WORKDIR/data_prep/prepped_data.pkl``,
``WORKDIR/classification_<i>/<name>.pkl``, ``WORKDIR/merge_and_visualize/ml_results.png``
and ``WORKDIR/scores.json``. Steps are cached in the work directory
(``flows.caching``), so a second run, or a run after a crash, only redoes what changed.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Delegated before the imports below: the API server and the warm worker
    # processes each need 1-3 s of imports; started first, they boot on the other
    # core while this process imports Prefect (see flows/startup/__init__.py). This module
    # is then imported once, under its own name.
    from flows.cli import run_module_command

    run_module_command("run", prog_name="python -m flows.ml_workflow")

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task, unmapped
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import UnfinishedRun

from flows.cache_keys import remember_stored_key, take_key_note
from flows.cache_records import result_files
from flows.caching import CacheSettings, StepCachePolicy, begin_cached_run, cache_options, step_cache_record
from flows.environment_runner import EnvironmentTaskRunner
from flows.expected_errors import install_expected_error_filter
from flows.json_flow import json_flow
from flows.parameters import ClassifierName, CustomClassifier, to_parameter, to_specs
from flows.progress import StageReporter, current_progress
from flows.run_guard import guarded_run
from flows.run_record import note_task_run, now_iso, task_run_details, write_run_record
from flows.runners import uses_compute_pool
from flows.startup.compute_pool import pool_for_flow, run_in_pool
from flows.ui_artifacts import publish_figure, publish_output_files, publish_scores
from mltoolkit.analysis.classifiers import SEED_CLASSIFIERS, ClassifierSpec
from mltoolkit.analysis.pipeline import (
    ClassificationOutput,
    FileRef,
    MergeOutput,
    classification_step,
    merge_step,
    prepare_data_step,
)
from mltoolkit.errors import MLToolkitError
from mltoolkit.preservation.submitted import Submission, keep_native_submission

__all__ = ["classify", "data_prep", "merge_and_plot", "ml_workflow"]


def _run_step(function: Callable[..., Any], workdir: str, timeout: float | None, **inputs: Any) -> Any:
    """Run a pipeline step (in the warm pool when active); keep its cache key's parts when it is stored."""
    # Here too, not only where the flow starts: with the process and Dask runners
    # this runs in a worker process whose loggers the flow never configured.
    install_expected_error_filter()
    try:
        note = take_key_note()
        result = run_in_pool(function, workdir=workdir, timeout=timeout, **inputs)
    except MLToolkitError as error:
        # the message names a function or a classifier; users know the step by its task run name
        hint = "; raise --step-timeout or check the step" if timeout and "did not finish within" in str(error) else ""
        raise type(error)(f"step {_task_run_name()}: {error}{hint}") from None
    remember_stored_key(workdir, note)
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


#: The registry's file, as the toolkit's code digest names it.
CLASSIFIER_REGISTRY = "mltoolkit/analysis/classifiers.py"


def _builders_not_run(inputs: dict[str, Any]) -> dict[str, frozenset[str]]:
    """The classifier registry's builder functions a step cannot run: all but its own classifier's.

    So a change to one registered classifier re-runs that classifier's step (and
    the merge, whose input changes), not every step.
    """
    builders = {name: function.__name__ for name, function in SEED_CLASSIFIERS.items()}
    spec = inputs.get("classifier")
    used = builders.get(spec.name) if isinstance(spec, ClassifierSpec) and spec.estimator is None else None
    return {CLASSIFIER_REGISTRY: frozenset(name for name in builders.values() if name != used)}


#: Each task's step id in ``run.json`` (formatted with its inputs), its pipeline function, its named inputs.
_STEPS: dict[str, tuple[str, Callable[..., Any], tuple[str, ...]]] = {
    "data_prep": ("/data_prep", prepare_data_step, ("dataset",)),
    "classify": ("/classification_{index}", classification_step, ()),
    "merge_and_plot": ("/merge_and_visualize", merge_step, ()),
}


@dataclass(frozen=True)
class _StepSettings:
    """How the flow runs each step: cache, retries and (outside the warm pool) Prefect's timeout."""

    root: str
    cache: CacheSettings
    retries: int
    retry_delay_seconds: float
    timeout_seconds: float | None

    def configured(self, step: Any) -> Any:
        """``step`` (a task) with these settings and its cache policy."""
        step_id, function, named = _STEPS[step.name]
        definition = f"{function.__module__}.{function.__qualname__}"
        policy = StepCachePolicy(
            workdir=self.root,
            step=step_id,
            definition=definition,
            named=named,
            unused_code=_builders_not_run,
            refresh=self.cache.refresh,
        )
        return step.with_options(
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
            timeout_seconds=self.timeout_seconds,
            on_completion=[note_task_run],
            on_failure=[note_task_run],
            **cache_options(self.root, self.cache, policy),
        )


@dataclass
class _Produced:
    """What the native flow's steps returned so far (for the run record, also after a failure)."""

    prepped: FileRef | None = None
    classify_futures: list[Any] = field(default_factory=list)
    merged: MergeOutput | None = None

    def task_run_names(self, specs: list[ClassifierSpec]) -> list[str]:
        """The task runs this flow run started, which the run record waits for."""
        names = ["data_prep"]
        if self.classify_futures:
            names += [f"classify[{spec.name}]" for spec in specs]
        if self.merged is not None:
            names.append("merge_and_plot")
        return names

    def classifications(self, count: int) -> list[ClassificationOutput | None]:
        """Each classify step's output, ``None`` where it did not complete (or never started)."""
        outcomes: list[ClassificationOutput | None] = [None] * count
        for index, future in enumerate(self.classify_futures[:count]):
            if future.state.is_completed():
                outcomes[index] = future.result()
        return outcomes


async def _run_steps(
    produced: _Produced, settings: _StepSettings, dataset: str, dataset_sha256: str | None, specs: list[ClassifierSpec]
) -> tuple[dict[str, float], MergeOutput]:
    """Run the three stages, noting each result in ``produced`` (and the progress); return scores and merge output."""
    root = settings.root
    progress = StageReporter(current_progress(), {"data_prep": 1, "classify": len(specs), "merge_and_plot": 1})
    produced.prepped = await progress.inline("data_prep", settings.configured(data_prep), dataset, root, dataset_sha256)
    futures = settings.configured(classify).map(
        unmapped(produced.prepped), specs, workdir=unmapped(root), index=range(len(specs))
    )
    produced.classify_futures = list(futures)
    progress.follow("classify", produced.classify_futures)
    try:
        merged = produced.merged = await progress.inline(
            "merge_and_plot", settings.configured(merge_and_plot), produced.prepped, futures, root
        )
    except UnfinishedRun:  # the merge never started: a classification failed, and its error is the run's
        futures.result()
        raise
    return {output.name: output.score for output in futures.result()}, merged


@json_flow(
    name="ml-workflow",
    description=(
        "The seed's ML analysis: prepare the dataset, train each classifier in parallel, "
        "draw the decision surfaces side by side."
    ),
    task_runner=EnvironmentTaskRunner(),
)
async def ml_workflow(
    dataset: str,
    classifiers: list[ClassifierName],
    custom_classifiers: list[CustomClassifier] | None = None,
    workdir: str = "workdir",
    dataset_sha256: str | None = None,
    use_cache: bool = True,
    refresh_cache: bool = False,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    step_timeout: float | None = None,
    submission: Submission | None = None,
) -> dict[str, float]:
    """Run the analysis and return ``{classifier name: test score}``.

    Args:
        dataset: path, file:// or http(s):// URL of a table of x, y and label.
        classifiers: registered classifiers to train, one task run each.
        custom_classifiers: other scikit-learn classifiers (name, import path, parameters),
            trained after the registered ones.
        workdir: folder for the outputs (yadage's layout).
        dataset_sha256: expected sha256 of the dataset file.
        use_cache: reuse steps whose inputs and code are unchanged (results kept in the workdir).
        refresh_cache: run every step again and store the new results.
        retries: how often a failed step is retried.
        retry_delay_seconds: pause before each retry.
        step_timeout: seconds after which a running step is killed and fails.
        submission: the inputs file and -p values a command line was given, kept with the
            run in WORKDIR/_mltoolkit/submitted/ (absent: the parameters alone are kept).
    """
    install_expected_error_filter()  # where the run starts: our errors are logged as their one line
    specs = to_specs(classifiers, custom_classifiers)
    root = str(Path(workdir).resolve())
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    in_pool = uses_compute_pool(context.task_runner) if context else True
    cache = CacheSettings(enabled=use_cache, refresh=refresh_cache)
    # in the warm pool a step's own timeout kills its processes; elsewhere Prefect's task timeout applies
    settings = _StepSettings(root, cache, retries, retry_delay_seconds, None if in_pool else step_timeout)
    run = _RecordedRun(root, dataset, dataset_sha256, specs, flow_run_id, cache)
    with guarded_run(root, "ml-workflow"), pool_for_flow(enabled=in_pool):
        keep_native_submission(root, inputs=run.inputs(), submission=submission)  # before any step runs
        begin_cached_run(root, cache)
        try:
            scores, merged = await _run_steps(run.produced, settings, dataset, dataset_sha256, specs)
            run.status = "completed"
        finally:
            await run.write()
        await publish_scores(scores)
        await publish_figure(root, merged.figure.resolve(root))
        await publish_output_files(root, key="ml-output-files", checksums_key="ml-checksums")
    return scores


@dataclass
class _RecordedRun:
    """One native flow run as the run record describes it (steps named as in the seed's spec)."""

    root: str
    dataset: str
    dataset_sha256: str | None
    specs: list[ClassifierSpec]
    flow_run_id: Any
    cache: CacheSettings
    started: str = field(default_factory=now_iso)
    status: str = "failed"
    produced: _Produced = field(default_factory=_Produced)

    async def write(self) -> None:
        """Write ``run.json`` once Prefect has recorded the task runs this flow run started."""
        details = await task_run_details(self.flow_run_id, expected=self.produced.task_run_names(self.specs))
        steps = self.step_records(details)
        cache_record = step_cache_record(self.root, self.flow_run_id, self.cache)
        for step in steps:
            cache = cache_record(step["id"], step["state"])
            if cache is not None:
                step["cache"] = cache
        write_run_record(
            self.root,
            status=self.status,
            flow="ml-workflow",
            flow_run_id=self.flow_run_id,
            started=self.started,
            steps=steps,
            workflow={"flow": "flows/ml_workflow.py:ml_workflow", "file": str(Path(__file__).resolve())},
            inputs=self.inputs(),
        )

    def inputs(self) -> dict[str, Any]:
        """The run's resolved parameters, as the run record and the submitted copies keep them."""
        return {
            "dataset": self.dataset,
            "dataset_sha256": self.dataset_sha256,
            "classifiers": [to_parameter(spec) for spec in self.specs],
        }

    def _absolute(self, ref: FileRef | None) -> str | None:
        return str(ref.resolve(self.root)) if ref is not None else None

    def _entry(
        self,
        details: dict[str, dict[str, Any]],
        task_name: str,
        step: tuple[str, int | None, str],
        parameters: dict[str, Any],
        result: Any,
        published: dict[str, Any],
    ) -> dict[str, Any]:
        """One step's record; ``step`` is its (stage, index, name), ``published`` is kept if ``result`` exists."""
        stage, index, name = step
        timing = details.get(task_name, {})
        return {
            "id": f"/{name}",
            "scope": "",
            "stage": stage,
            "index": index,
            "name": name,
            "workdir": str(Path(self.root) / name),
            "parameters": parameters,
            "published": published if result is not None else None,
            "state": timing.get("state", "PENDING"),
            "outputs": result_files(result) if result is not None else {},
            **{key: timing.get(key) for key in ("started", "ended", "attempts", "task_run_id")},
            "error": timing.get("error"),
        }

    def step_records(self, details: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The run record's steps: data_prep, one classification per classifier, merge_and_visualize."""
        prepped, merged = self.produced.prepped, self.produced.merged
        prepped_path = self._absolute(prepped)
        steps = [
            self._entry(
                details,
                "data_prep",
                ("data_prep", None, "data_prep"),
                {"dataset": self.dataset, "dataset_sha256": self.dataset_sha256},
                prepped,
                {"prepped_data": prepped_path},
            )
        ]
        outcomes = self.produced.classifications(len(self.specs))
        for index, (spec, outcome) in enumerate(zip(self.specs, outcomes)):
            steps.append(
                self._entry(
                    details,
                    f"classify[{spec.name}]",
                    ("classification", index, f"classification_{index}"),
                    {"input_data": prepped_path, "classifier": to_parameter(spec)},
                    outcome,
                    {"ml_output": self._absolute(outcome.result) if outcome else None},
                )
            )
        steps.append(
            self._entry(
                details,
                "merge_and_plot",
                ("merge_and_visualize", None, "merge_and_visualize"),
                {
                    "input_data": prepped_path,
                    "ml_inputs": [self._absolute(outcome.result) if outcome else None for outcome in outcomes],
                },
                merged,
                {
                    "ml_result": self._absolute(merged.figure) if merged else None,
                    "scores": self._absolute(merged.scores) if merged else None,
                },
            )
        )
        return steps
