"""The adapter between the yadage planner and Prefect: planned stages in, task runs out, results back.

The pure planner (:class:`~mltoolkit.yadage.WorkflowRun`) says which stages can
be applied; :func:`run_spec` submits each applied stage as one ``.map`` of
:func:`~flows.spec_tasks.run_spec_step` (one task run per step, named after the
stage), and as each task run finishes feeds its outcome back to the planner,
which may then apply further stages. Independent branches therefore run at the
same time, and a stage starts as soon as the stages it depends on have published.
Each task run names the task runs of the steps its stage depends on (``wait_for``),
so Prefect's run graph draws the workflow's dependencies.

Before any step runs, the resources the steps need (``CVMFS``, credentials...)
are checked against what the run provides (``provided``, the image map): a run
that would meet an unmet requirement stops at once. Warnings of the spec
(dependencies a stage's references imply) and of the steps' resources (a memory
limit this platform cannot apply) go to the flow's log, once each.

Human steps (:mod:`flows.spec_human`) wait until nothing else is running or
ready, then pause the flow run for a person's answer, one at a time. With
``stub``, every step -- human ones included -- is a stub
(:mod:`mltoolkit.yadage.packtivity.stub`): no image, resource or person is
needed, nothing is cached, and the record marks each step ``stubbed``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prefect import unmapped
from prefect.context import FlowRunContext, SyncClientContext
from prefect.logging import get_run_logger
from prefect.utilities.annotations import opaque

from flows.caching import CacheSettings, begin_cached_run, cache_options, step_cache_record
from flows.progress import CACHED as CACHED_OUTCOME
from flows.progress import COMPLETED as COMPLETED_OUTCOME
from flows.progress import FAILED as FAILED_OUTCOME
from flows.progress import current_progress
from flows.run_record import now_iso
from flows.runners import uses_compute_pool
from flows.spec_human import ask_and_submit
from flows.spec_lineage import StepLineage
from flows.spec_tasks import (
    SpecStepCachePolicy,
    StepOutcome,
    relocated,
    run_spec_step,
    step_identity,
    task_run_label,
    text_leaves,
)
from flows.startup.compute_pool import active_pool, pool_for_flow
from mltoolkit.errors import HumanStepError, MLToolkitError
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage import (
    StepOptions,
    WorkflowRun,
    check_requirements,
    init_dir,
    load_workflow,
    outputs_read,
    parse_image_map,
    stub_plan,
    validate_workflow,
)
from mltoolkit.yadage.packtivity.manual import DEFAULT_HUMAN_TIMEOUT
from mltoolkit.yadage.planner import CACHED, COMPLETED, PlannedStage, PlannedStep

__all__ = ["MAX_GRAPH_EDGES", "SpecRunOptions", "SpecRunResult", "run_spec", "upstream_futures"]

#: Dependency edges recorded per stage, at most (a scatter after a scatter would need N x M).
MAX_GRAPH_EDGES = 10_000

T = TypeVar("T")

#: The ``cache`` reason of a stub run's steps.
STUB_REASON = "--stub: stubs are never cached"


@dataclass
class SpecRunOptions:
    """How to run a spec (everything but the spec and the inputs)."""

    quote: bool = True
    image_map: list[str] = field(default_factory=list)
    image_map_file: str | None = None
    cache: CacheSettings = field(default_factory=CacheSettings)
    retries: int = 0
    retry_delay_seconds: float = 0.0
    step_timeout: float | None = None
    visualize: bool = False
    step_retries: dict[str, int] = field(default_factory=dict)  # stage name -> retries
    provided: dict[str, str] = field(default_factory=dict)  # resource -> value (--provide)
    stub: bool = False  # every step a stub: wiring only (never cached)
    human_timeout: float = DEFAULT_HUMAN_TIMEOUT  # seconds a human step waits for its answer
    human_poll_interval: float = 2.0  # seconds between looks for the answer

    def retries_of(self, stage: str) -> int:
        """Retries of ``stage``'s steps: its own ``step_retries`` entry, else ``retries``."""
        return self.step_retries.get(stage, self.retries)


@dataclass
class SpecRunResult:
    """A finished spec run: the planner's state plus what the adapter learnt about each step."""

    run: WorkflowRun
    outputs: dict[str, dict[str, str]]  # step id -> files it produced (workdir-relative -> sha256)
    labels: dict[str, str]  # step id -> task run name
    source: dict[str, str]  # where the spec came from
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> times, attempts, task run
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> why it ran or was reused
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> record fields (stubbed, human)


def _as_is(value: Any) -> Any:
    return value


def upstream_futures(futures: Mapping[str, T], upstream: Sequence[str], steps: int) -> list[T]:
    """The futures a stage of ``steps`` steps waits for: those of its ``upstream`` step ids.

    Prefect records them in each task run's inputs, and its run graph draws them
    as edges. They have all finished (a stage is applied once its dependencies
    have published), so nothing waits. A stage of many steps after a stage of
    many steps would need steps x upstream edges; beyond :data:`MAX_GRAPH_EDGES`
    each step names only the first few of its upstream steps.
    """
    found = [futures[step_id] for step_id in upstream if step_id in futures]
    return found[: max(1, MAX_GRAPH_EDGES // max(1, steps))]


class _StageSubmitter:
    """Submits applied stages as task runs and records their outcomes in the planner."""

    def __init__(
        self,
        run: WorkflowRun,
        root: Path,
        options: SpecRunOptions,
        step_options: StepOptions,
        result: SpecRunResult,
        in_process: bool,
    ) -> None:
        self.run = run
        self.root = root
        self.options = options
        self.step_options = step_options
        self.result = result
        self.outstanding: dict[Any, PlannedStep] = {}
        self.lineage = StepLineage(root)
        # the run's own inputs, which the cache may read outside the work directory
        self.named = tuple(text for text in text_leaves(run.init) if os.path.isabs(text))
        self.futures: dict[str, Any] = {}  # step id -> its task run's future (the graph's edges)
        self.finished: asyncio.Queue[Any] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.warned: set[tuple[str, str]] = set()  # (stage, warning) already logged
        self.humans: deque[PlannedStep] = deque()  # human steps waiting for their turn to ask
        self.reads = outputs_read(run.workflow)  # what later stages read: a human step's form
        self.expired: str | None = None  # why no further person can be asked in this run
        self.progress = current_progress()  # the command line's display, if any (counts only)
        # `opaque`: plain data, never futures; Prefect would otherwise walk every field of
        # each step and its options looking for some, twice per task run. Only for task
        # runs in this process: other runners (Dask) may ship the wrapper as a bare tuple.
        self.plain: Callable[[Any], Any] = opaque if in_process else _as_is

    def submit_ready_stages(self) -> None:
        """Submit every stage the planner can apply now; human steps wait for their turn."""
        for stage in self.run.advance():
            human = {step.id for step in stage.steps if step.step.human and self.step_options.stub is None}
            for planned in stage.steps:
                if self.expired is not None:  # the flow run cannot start task runs any more
                    self.run.mark_running(planned.id)
                    self.run.record_failure(planned.id, f"not run: {self.expired}")
                elif planned.id in human:
                    self.run.mark_running(planned.id)
                    self.humans.append(planned)
            rest = [step for step in stage.steps if step.id not in human]
            if rest and self.expired is None:
                self._submit(dataclasses.replace(stage, steps=rest) if human else stage)

    def _submit(self, stage: PlannedStage) -> None:
        identities = [step_identity(planned, self.step_options) for planned in stage.steps]
        policy = SpecStepCachePolicy(
            run_root=str(self.root),
            timeout=self.options.step_timeout,
            named=self.named,
            refresh=self.options.cache.refresh,
        )
        step_task = run_spec_step.with_options(
            name=stage.stage,
            retries=self.options.retries_of(stage.stage),
            retry_delay_seconds=self.options.retry_delay_seconds,
            **cache_options(self.root, self.options.cache, policy),
        )
        futures = step_task.map(
            [task_run_label(planned) for planned in stage.steps],
            [self.plain(identity) for identity in identities],
            [self.plain(planned) for planned in stage.steps],
            unmapped(self.plain(self.step_options)),
            unmapped(str(self.root)),
            [self.plain(self.lineage.of(planned)) for planned in stage.steps],
            wait_for=upstream_futures(self.futures, stage.upstream, len(stage.steps)),
        )
        if self.progress is not None:
            self.progress.plan(stage.stage, len(stage.steps))
            self.progress.start(stage.stage, len(stage.steps))
        for planned, future in zip(stage.steps, futures):
            self.futures[planned.id] = future
            self.result.labels[planned.id] = task_run_label(planned)
            self.run.mark_running(planned.id)
            self.outstanding[future] = planned
            future.add_done_callback(self._on_done)

    def _on_done(self, future: Any) -> None:
        # called in the task runner's thread: hand the future to the event loop
        self.loop.call_soon_threadsafe(self.finished.put_nowait, future)

    async def run_to_completion(self) -> None:
        """Feed finished task runs back to the planner, submitting what becomes ready, until none is left."""
        self.submit_ready_stages()
        while self.outstanding or self.humans:
            if not self.outstanding:  # nothing else runs: the pause holds nobody up
                await self._ask_next_person()
                self.submit_ready_stages()
                continue
            batch = [await self.finished.get()]
            while not self.finished.empty():
                batch.append(self.finished.get_nowait())
            for future in batch:
                await self._collect(future, self.outstanding.pop(future))
            self.submit_ready_stages()

    async def _collect(self, future: Any, planned: PlannedStep) -> None:
        future.wait()
        state = future.state
        # `aresult`, not `future.result()`: called on this event loop, the sync form
        # blocks the loop for a thread round trip (~6 ms per step, most of the
        # adapter's per-step cost in a 10,000-step scatter).
        if state.is_completed():
            outcome: StepOutcome = await state.aresult()
            published = outcome.published
            if outcome.root and outcome.root != str(self.root):  # reused from a moved workdir
                published = relocated(published, outcome.root, str(self.root))
            self.result.outputs[planned.id] = outcome.files
            self.lineage.add(outcome.files)
            self.result.details[planned.id] = {
                "started": outcome.started,
                "ended": outcome.ended,
                "attempts": outcome.attempts,
                "task_run_id": str(future.task_run_id),
                "resources": outcome.resources,
                "environment": outcome.environment,
            }
            self._log_resource_warnings(planned.stage, outcome.resources)
            cached = state.name == "Cached"
            self.run.record_success(planned.id, published, state=CACHED if cached else COMPLETED)
            self._report(planned.stage, CACHED_OUTCOME if cached else COMPLETED_OUTCOME)
            return
        try:
            await state.aresult(raise_on_failure=True)
            message = f"ended in state {state.name}"
        except Exception as error:  # the step's own error, already logged by Prefect
            message = " ".join(str(error).split()) or type(error).__name__
        self.result.details[planned.id] = {
            "started": None,
            "ended": now_iso(),
            "task_run_id": str(future.task_run_id),
            # a step fails for good only once its retries are used up
            "attempts": 1 + self.options.retries_of(planned.stage),
        }
        self.run.record_failure(planned.id, message)
        self._report(planned.stage, FAILED_OUTCOME)

    def _report(self, stage: str, outcome: str) -> None:
        if self.progress is not None:
            self.progress.finish(stage, outcome)

    async def _ask_next_person(self) -> None:
        """Pause the run for the next human step's answer, then submit the task run that publishes it."""
        planned = self.humans.popleft()
        asked = now_iso()
        if self.expired is not None:
            self.run.record_failure(planned.id, f"not asked: {self.expired}")
            return
        timeout, interval = self.options.human_timeout, self.options.human_poll_interval
        try:
            future = await ask_and_submit(
                planned, self.reads, str(self.root), timeout, interval, self.result.annotations
            )
        except MLToolkitError as error:
            if isinstance(error, HumanStepError):  # the pause expired: the flow run cannot go on
                self.expired = f"the run's pause for {planned.stage!r} expired"
            self.result.details[planned.id] = {"started": asked, "ended": now_iso(), "attempts": 1}
            self.run.record_failure(planned.id, str(error))
            return
        self.futures[planned.id] = future
        self.result.labels[planned.id] = task_run_label(planned)
        self.outstanding[future] = planned
        future.add_done_callback(self._on_done)

    def _log_resource_warnings(self, stage: str, resources: dict[str, Any] | None) -> None:
        """Log what a stage's resources could not honour, once per stage (not once per step)."""
        for warning in (resources or {}).get("warnings", []):
            if (stage, warning) not in self.warned:
                self.warned.add((stage, warning))
                get_run_logger().warning("stage %r: %s", stage, warning)


async def run_spec(
    workflow: str,
    init: dict[str, Any],
    workdir: str,
    toplevel: str | None,
    options: SpecRunOptions,
) -> SpecRunResult:
    """Load, validate and run a spec inside the current flow run."""
    logger = get_run_logger()
    root = Path(workdir).resolve()
    loaded = load_workflow(workflow, toplevel)
    spec = validate_workflow(loaded)
    for warning in spec.warnings:
        logger.warning("%s", warning)
    image_map = parse_image_map(options.image_map, Path(options.image_map_file) if options.image_map_file else None)
    if options.stub:
        # a stub neither reads nor leaves cached results, so stubs never stand in for a real step
        options = dataclasses.replace(options, cache=CacheSettings(enabled=False))
        logger.warning("stub run: every step is a stub that writes its declared outputs empty; nothing runs")
    else:
        check_requirements(spec, options.provided, image_map)  # before any step runs
    if not options.quote:
        logger.warning(
            "quoting is OFF: parameter values are pasted into shell commands as they are, "
            "like yadage does; a value such as 'a; rm x' runs 'rm x'"
        )
    run = WorkflowRun(spec, init, root, init_dir=init_dir(root))
    # Times and attempts come from the steps themselves (their outcomes), not from the
    # API: Prefect records task runs asynchronously, and for a 10,000-step run the
    # server can lag the flow by tens of seconds.
    result = SpecRunResult(run, {}, {}, {"workflow": loaded.source, "toplevel": loaded.toplevel})
    context = FlowRunContext.get()
    # the thread runner: task runs in this process, their work in the warm pool
    in_process = uses_compute_pool(context.task_runner) if context else True
    with pool_for_flow(enabled=in_process):
        pool = active_pool()
        step_options = StepOptions(
            quote=options.quote,
            image_map=image_map,
            zygote_socket=pool.socket_path if pool else None,
            timeout=options.step_timeout,
            shared_dirs=(str(root),),
            provided=dict(options.provided),
            stub=stub_plan(spec) if options.stub else None,
        )
        removed = begin_cached_run(root, options.cache)
        if removed:
            logger.info("%d stored result(s) dropped (missing or changed outputs); their steps run again", len(removed))
        # One API client for the run's task runs: each would otherwise build its own
        # (an HTTP client, its TLS context and proxy settings) in its worker thread.
        with SyncClientContext.get_or_create():
            await _StageSubmitter(run, root, options, step_options, result, in_process).run_to_completion()
        _note_cache(result, root, context.flow_run.id if context and context.flow_run else None, options)
        if options.visualize:
            _visualize(run, root, logger)
    return result


def _note_cache(result: SpecRunResult, root: Path, flow_run_id: Any, options: SpecRunOptions) -> None:
    """Each step's ``cache`` field of the run record: reused or why it ran (stubs: never cached)."""
    cache_record = step_cache_record(root, flow_run_id, options.cache)
    for record in result.run.records():
        cache = cache_record(record.id, record.state)
        if cache is not None:
            result.cache[record.id] = cache
    if options.stub:  # ran as stubs, never cached (not because of --no-cache)
        for record in result.run.records():
            result.annotations[record.id] = {"stubbed": True, "cache": {"reused": False, "reason": STUB_REASON}}


def _visualize(run: WorkflowRun, root: Path, logger: Any) -> None:
    try:
        from mltoolkit.yadage.visualize import write_workflow_pictures
    except ImportError:
        logger.warning("--visualize: the workflow picture module is not available")
        return
    pictures = write_workflow_pictures(run, WorkdirLayout(root).records)
    logger.info("workflow picture: %s", ", ".join(str(path) for path in pictures.values()))
