"""Any yadage workflow spec as a Prefect flow: the one adapter between the loader and Prefect.

Run it like ``yadage-run``::

    python -m flows.spec_workflow WORKDIR WORKFLOW [INPUTS] --toplevel DIR [-p key=value ...]
                                  [--image-map IMAGE=local] [--visualize]

The pure loader (``mltoolkit.yadage``) reads and validates the spec and plans
stages; this module runs each planned stage as Prefect task runs (one per step,
named after the stage; a multistep stage is one ``.map``), applies a stage as soon
as its dependencies have published (independent branches run at the same time),
and records every step in ``WORKDIR/_mltoolkit/run.json``.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not {"-h", "--help"} & set(sys.argv[1:]):
    # Why here, before the imports below: see flows/startup.py.
    from flows.startup import prepare_cli_process

    prepare_cli_process()

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from prefect import flow, task, unmapped
from prefect.cache_policies import CachePolicy
from prefect.context import FlowRunContext
from prefect.logging import get_run_logger

from flows.caching import CacheSettings, cache_options, prune_stale_cache, record_step_outputs, step_cache_key
from flows.cli_support import check_workdir, one_line_errors, run_app, run_flow_from_cli
from flows.startup.compute_pool import active_pool, pool_for_flow
from flows.expected_errors import install_expected_error_filter
from flows.parameters import ClassifierName
from flows.run_guard import guarded_run
from flows.run_record import RUN_RECORD, now_iso, write_run_record
from flows.runners import RUNNERS, make_task_runner, runner_from_environment, uses_compute_pool
from flows.ui_artifacts import publish_output_files, publish_steps
from mltoolkit.errors import CommandLineError, SpecRunFailedError
from mltoolkit.workdir.artifacts import sha256_file
from mltoolkit.yadage import (
    StepOptions,
    WorkflowRun,
    init_dir,
    load_workflow,
    parse_image_map,
    read_inputs,
    run_planned_step,
    validate_workflow,
)
from mltoolkit.yadage.planner import CACHED, COMPLETED, PlannedStage, PlannedStep

install_expected_error_filter()

__all__ = [
    "RUN_RECORD",
    "SpecRunOptions",
    "SpecRunResult",
    "app",
    "main",
    "run_spec",
    "run_spec_step",
    "seed_spec_workflow",
    "spec_workflow",
]


#: Default spec of the deployment: the seed's parallel workflow, shipped with the package.
BUNDLED_SEED_SPEC = str(Path(__file__).resolve().parents[1] / "mltoolkit" / "specs" / "seed_parallel" / "workflow.yml")


@dataclass(frozen=True)
class StepOutcome:
    """What a step task returns: its published values and the files it left behind."""

    published: Any
    files: dict[str, str] = field(default_factory=dict)
    #: The run's folder when the step ran: published paths under it are moved to
    #: the current folder when the outcome is reused from a copied or moved workdir.
    root: str = ""
    #: When the step ran and in which attempt (kept with a cached outcome: that is
    #: when its outputs were made).
    started: str | None = None
    ended: str | None = None
    attempts: int = 1


def _relocated(value: Any, old_root: str, new_root: str) -> Any:
    """``value`` with every path string under ``old_root`` moved under ``new_root``."""
    if isinstance(value, str):
        if value == old_root or value.startswith(old_root + os.sep):
            return new_root + value[len(old_root) :]
        return value
    if isinstance(value, dict):
        return {key: _relocated(item, old_root, new_root) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_relocated(item, old_root, new_root) for item in value]
    return value


def _leaf_paths(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [path for item in value.values() for path in _leaf_paths(item)]
    if isinstance(value, (list, tuple)):
        return [path for item in value for path in _leaf_paths(item)]
    return []


def _produced_files(planned: PlannedStep, published: Any, run_root: Path) -> dict[str, str]:
    """Files the step wrote (its folder) or published, as workdir-relative path -> sha256."""
    files: dict[str, str] = {}
    candidates = [path for path in planned.workdir.rglob("*") if path.is_file()] if planned.workdir.is_dir() else []
    for text in _leaf_paths(published):
        if len(text) < 4096 and os.path.isabs(text):
            candidates.append(Path(text))
    for path in candidates:
        try:
            if not path.is_file():
                continue
            resolved = path.resolve()
            relative = resolved.relative_to(run_root).as_posix() if resolved.is_relative_to(run_root) else str(resolved)
            files[relative] = sha256_file(resolved)
        except OSError:
            continue
    return files


def step_identity(planned: PlannedStep, options: StepOptions) -> dict[str, Any]:
    """What a step's cache key covers besides input file contents: spec, parameters, placement."""
    return {
        "scope": planned.scope,
        "stage": planned.stage,
        "index": planned.index,
        "name": planned.name,
        "workdir": str(planned.workdir),
        "parameters": planned.parameters,
        "step": planned.step.model_dump(mode="json"),
        "quote": options.quote,
        "image_map": {
            image: [mapping.kind, list(map(list, mapping.mounts))]
            for image, mapping in sorted(options.image_map.items())
        },
    }


def spec_step_key(identity: dict[str, Any], run_root: Path) -> str:
    """A spec step's cache key: its identity, with input files by content (its own folder excluded)."""
    return step_cache_key(identity["stage"], "", {"identity": identity}, run_root, own_dir=identity["workdir"])


@dataclass
class SpecStepCachePolicy(CachePolicy):
    """Prefect cache policy of a spec step: :func:`spec_step_key` of its ``identity`` argument."""

    run_root: str = ""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        return spec_step_key(inputs["identity"], Path(self.run_root))


@task(name="spec-step", task_run_name="{label}")
def run_spec_step(
    label: str, identity: dict[str, Any], planned: PlannedStep, options: StepOptions, run_root: str
) -> StepOutcome:
    """Run one planned yadage step; its output lines go to Prefect's log and the step's log file."""
    from prefect.runtime import task_run as current_task_run

    logger = get_run_logger()
    started_at = now_iso()
    root = Path(run_root)
    # A step runs in a clean folder, as in yadage: files left by an earlier run of
    # it (another classifier's pickle, a killed attempt) would otherwise be
    # published by globs such as '{outdir}/*.pkl' and hashed into its outputs.
    if planned.workdir.is_dir():
        shutil.rmtree(planned.workdir)
    result = run_planned_step(planned, options, on_output=lambda line: logger.info("%s", line))
    files = _produced_files(planned, result.published, root)
    record_step_outputs(root, files)
    return StepOutcome(
        published=result.published,
        files=files,
        root=str(root),
        started=started_at,
        ended=now_iso(),
        attempts=max(1, int(current_task_run.run_count or 1)),
    )


def _label(planned: PlannedStep) -> str:
    label = planned.stage if planned.index is None else f"{planned.stage}[{planned.index}]"
    return f"{label} @{planned.scope}" if planned.scope else label


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


@dataclass
class SpecRunResult:
    """A finished spec run: the planner's state plus what the adapter learnt about each step."""

    run: WorkflowRun
    outputs: dict[str, dict[str, str]]  # step id -> files it produced (workdir-relative -> sha256)
    labels: dict[str, str]  # step id -> task run name
    source: dict[str, str]  # where the spec came from
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> times, attempts, task run


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
    image_map = parse_image_map(options.image_map, Path(options.image_map_file) if options.image_map_file else None)
    if not options.quote:
        logger.warning(
            "quoting is OFF: parameter values are pasted into shell commands as they are, "
            "like yadage does; a value such as 'a; rm x' runs 'rm x'"
        )
    run = WorkflowRun(spec, init, root, init_dir=init_dir(root))
    context = FlowRunContext.get()
    in_pool = uses_compute_pool(context.task_runner) if context else True
    loop = asyncio.get_running_loop()
    outputs: dict[str, dict[str, str]] = {}
    labels: dict[str, str] = {}
    # Times and attempts come from the steps themselves (their outcomes), not from the
    # API: Prefect records task runs asynchronously, and for a 10,000-step run the
    # server can lag the flow by tens of seconds.
    details: dict[str, dict[str, Any]] = {}
    finished: asyncio.Queue = asyncio.Queue()

    with pool_for_flow(enabled=in_pool):
        pool = active_pool()
        step_options = StepOptions(
            quote=options.quote,
            image_map=image_map,
            zygote_socket=pool.socket_path if pool else None,
            timeout=options.step_timeout,
            shared_dirs=(str(root),),
        )
        if options.cache.enabled:
            removed = prune_stale_cache(root)
            if removed:
                logger.info("%d cached step(s) had missing or changed outputs and will run again", len(removed))
        outstanding: dict[Any, PlannedStep] = {}

        def submit(stage: PlannedStage) -> None:
            identities = [step_identity(planned, step_options) for planned in stage.steps]
            step_task = run_spec_step.with_options(
                name=stage.stage,
                retries=options.step_retries.get(stage.stage, options.retries),
                retry_delay_seconds=options.retry_delay_seconds,
                **cache_options(root, "", options.cache, policy=SpecStepCachePolicy(run_root=str(root))),
            )
            futures = step_task.map(
                [_label(planned) for planned in stage.steps],
                identities,
                stage.steps,
                unmapped(step_options),
                unmapped(str(root)),
            )
            for planned, future in zip(stage.steps, futures):
                labels[planned.id] = _label(planned)
                run.mark_running(planned.id)
                outstanding[future] = planned
                future.add_done_callback(lambda done: loop.call_soon_threadsafe(finished.put_nowait, done))

        for stage in run.advance():
            submit(stage)
        while outstanding:
            done = await finished.get()
            batch = [done]
            while not finished.empty():
                batch.append(finished.get_nowait())
            for future in batch:
                planned = outstanding.pop(future)
                future.wait()
                state = future.state
                # `aresult`, not `future.result()`: called on this event loop, the sync form
                # blocks the loop for a thread round trip (~6 ms per step, most of the
                # adapter's per-step cost in a 10,000-step scatter).
                if state.is_completed():
                    outcome: StepOutcome = await state.aresult()
                    published = outcome.published
                    if outcome.root and outcome.root != str(root):  # reused from a moved workdir
                        published = _relocated(published, outcome.root, str(root))
                    outputs[planned.id] = outcome.files
                    details[planned.id] = {
                        "started": outcome.started,
                        "ended": outcome.ended,
                        "attempts": outcome.attempts,
                        "task_run_id": str(future.task_run_id),
                    }
                    run.record_success(planned.id, published, state=CACHED if state.name == "Cached" else COMPLETED)
                else:
                    try:
                        await state.aresult(raise_on_failure=True)
                        message = f"ended in state {state.name}"
                    except Exception as error:  # the step's own error, already logged by Prefect
                        message = " ".join(str(error).split()) or type(error).__name__
                    details[planned.id] = {
                        "started": None,
                        "ended": now_iso(),
                        "task_run_id": str(future.task_run_id),
                        # a step fails for good only once its retries are used up
                        "attempts": 1 + options.step_retries.get(planned.stage, options.retries),
                    }
                    run.record_failure(planned.id, message)
            for stage in run.advance():
                submit(stage)
        if options.visualize:
            _visualize(run, root, logger)
    return SpecRunResult(run, outputs, labels, {"workflow": loaded.source, "toplevel": loaded.toplevel}, details)


def _visualize(run: WorkflowRun, root: Path, logger: Any) -> None:
    try:
        from mltoolkit.yadage.visualize import write_workflow_pictures
    except ImportError:
        logger.warning("--visualize: the workflow picture module is not available")
        return
    pictures = write_workflow_pictures(run, root / "_mltoolkit")
    logger.info("workflow picture: %s", ", ".join(str(path) for path in pictures.values()))


async def _run_and_report(
    workflow: str, workdir: str, init: dict[str, Any], toplevel: str | None, options: SpecRunOptions
) -> dict[str, Any]:
    """The body both spec flows share: lock, run, artifacts, outcome."""
    root = str(Path(workdir).resolve())
    started = now_iso()
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    with guarded_run(root, "spec-workflow"):
        result = await run_spec(workflow, init, root, toplevel, options)
        run = result.run
        records = []
        for record in run.records():
            entry = record.to_dict()
            entry["outputs"] = result.outputs.get(record.id, {})
            timing = result.details.get(record.id, {})
            entry.update({key: timing.get(key) for key in ("started", "ended", "attempts", "task_run_id")})
            records.append(entry)
        write_run_record(
            root,
            status=run.status,
            flow="spec-workflow",
            flow_run_id=flow_run_id,
            started=started,
            steps=records,
            workflow=result.source,
            inputs=run.init,
        )
        await publish_steps(records)
        await publish_output_files(root, key="spec-output-files")
    problems = run.problems()
    if run.failed:
        failed = sum(1 for record in records if record["state"] == "FAILED")
        raise SpecRunFailedError(
            f"{failed} of {len(records)} step(s) failed; first problem: "
            f"{problems[0] if problems else 'unknown'}; record: {Path(root) / RUN_RECORD}"
        )
    return {"status": run.status, "steps": len(records), "record": str(Path(root) / RUN_RECORD)}


@flow(
    name="spec-workflow",
    description="Run a preserved yadage workflow spec (workflow.yml, steps.yml, inputs) as Prefect tasks.",
    task_runner=runner_from_environment(),
)
async def spec_workflow(
    workflow: str = BUNDLED_SEED_SPEC,
    workdir: str = "workdir",
    inputs: dict[str, Any] | None = None,
    inputs_file: str | None = None,
    toplevel: str | None = None,
    image_map: list[str] | None = None,
    image_map_file: str | None = None,
    quote: bool = True,
    use_cache: bool = True,
    refresh_cache: bool = False,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    step_timeout: float | None = None,
    visualize: bool = False,
    step_retries: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Run a yadage spec; return ``{"status", "steps", "record"}``.

    Args:
        workflow: the workflow file (``workflow.yml``), resolved against ``toplevel``.
        workdir: the run's folder (yadage's layout; init files in ``WORKDIR/init``).
        inputs: init values (override ``inputs_file``).
        inputs_file: YAML file of init values (the seed's ``inputs.yml``).
        toplevel: folder ``workflow`` and ``$ref`` s resolve against (default: the workflow's folder).
        image_map: extra ``IMAGE=local`` entries for Docker images when no engine answers.
        image_map_file: YAML file of image-map entries.
        quote: shell-quote parameter values (``False``: yadage's unsafe pasting).
        use_cache: reuse steps whose spec, parameters and input files are unchanged.
        refresh_cache: run every step again and store the new results.
        retries: retries of a failed step.
        retry_delay_seconds: pause before each retry.
        step_timeout: seconds after which a step's processes are killed.
        visualize: also draw ``WORKDIR/_mltoolkit/workflow.{png,svg,dot}``.
        step_retries: retries per stage name, overriding ``retries`` for that stage's steps.
    """
    options = SpecRunOptions(
        quote=quote,
        image_map=list(image_map or []),
        image_map_file=image_map_file,
        cache=CacheSettings(enabled=use_cache, refresh=refresh_cache),
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        step_timeout=step_timeout,
        visualize=visualize,
        step_retries=dict(step_retries or {}),
    )
    init = read_inputs(inputs_file, overrides=inputs or {})
    return await _run_and_report(workflow, workdir, init, toplevel, options)


@flow(
    name="seed-spec-workflow",
    description=(
        "The seed's preserved yadage workflow, unmodified (shipped with the toolkit), with its "
        "inputs as a form: dataset and classifiers."
    ),
    task_runner=runner_from_environment(),
)
async def seed_spec_workflow(
    dataset: str,
    classifiers: list[ClassifierName],
    workdir: str = "workdir",
    use_cache: bool = True,
    refresh_cache: bool = False,
    retries: int = 0,
    step_timeout: float | None = None,
    visualize: bool = False,
) -> dict[str, Any]:
    """Run the bundled seed spec on ``dataset`` with ``classifiers`` (the seed's ``inputs.yml`` keys).

    Args:
        dataset: path or URL of the data table (the seed uses its Dropbox URL, served offline).
        classifiers: registered classifier names, one classification step each.
        workdir: the run's folder (yadage's layout).
        use_cache: reuse unchanged steps.
        refresh_cache: run every step again.
        retries: retries of a failed step.
        step_timeout: seconds after which a step's processes are killed.
        visualize: also draw the workflow picture.
    """
    options = SpecRunOptions(
        cache=CacheSettings(enabled=use_cache, refresh=refresh_cache),
        retries=retries,
        step_timeout=step_timeout,
        visualize=visualize,
    )
    init = {"dataset": dataset, "classifiers": list(classifiers)}
    return await _run_and_report(BUNDLED_SEED_SPEC, workdir, init, None, options)


# --- command line -------------------------------------------------------------------

app = typer.Typer(
    add_completion=False,
    help="Run a yadage workflow spec as a Prefect flow (like yadage-run).",
    pretty_exceptions_enable=False,
)


@app.command()
@one_line_errors
def main(
    workdir: Annotated[Path, typer.Argument(help="The run's folder (created if missing).")],
    workflow: Annotated[str, typer.Argument(help="Workflow file, relative to --toplevel.")],
    inputs: Annotated[Path | None, typer.Argument(help="YAML file of init values.", dir_okay=False)] = None,
    toplevel: Annotated[
        str | None, typer.Option("--toplevel", "-t", help="Folder the workflow and $refs resolve against.")
    ] = None,
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Init value key=value (YAML); overrides INPUTS.")
    ] = None,
    image_map: Annotated[
        list[str] | None, typer.Option("--image-map", help="Run a Docker image's steps locally: IMAGE=local.")
    ] = None,
    image_map_file: Annotated[
        Path | None, typer.Option("--image-map-file", help="YAML file of image-map entries.", dir_okay=False)
    ] = None,
    unsafe_no_quoting: Annotated[
        bool,
        typer.Option(
            "--unsafe-no-quoting", help="Paste parameter values into shell commands unquoted, like yadage (unsafe)."
        ),
    ] = False,
    visualize: Annotated[
        bool, typer.Option("--visualize", help="Draw WORKDIR/_mltoolkit/workflow.{png,svg,dot}.")
    ] = False,
    runner: Annotated[str, typer.Option("--runner", help=f"Task runner: {', '.join(RUNNERS)}.")] = "thread",
    dask_address: Annotated[
        str | None, typer.Option("--dask-address", help="Existing Dask scheduler (with --runner dask).")
    ] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Re-run every step, then cache the new results.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither reuse nor store cached steps.")] = False,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a failed step.")] = 0,
    retry_delay: Annotated[float, typer.Option("--retry-delay", min=0, help="Seconds before a retry.")] = 0.0,
    step_retries: Annotated[
        list[str] | None, typer.Option("--step-retries", help="Retries for one stage's steps: STAGE=N (repeatable).")
    ] = None,
    step_timeout: Annotated[
        float | None, typer.Option("--step-timeout", min=0.001, help="Kill a step after this many seconds.")
    ] = None,
) -> None:
    """Run WORKFLOW (with INPUTS and -p values) in WORKDIR; write WORKDIR/_mltoolkit/run.json."""
    from mltoolkit.yamlfiles import parse_assignments

    task_runner = make_task_runner(runner, dask_address)
    retries_by_stage = _parse_step_retries(step_retries or [])
    overrides = parse_assignments(parameter or [])
    if inputs is not None and not inputs.is_absolute() and toplevel and (Path(toplevel) / inputs).is_file():
        inputs = Path(toplevel) / inputs  # like WORKFLOW, INPUTS is looked up in --toplevel first
    init = read_inputs(inputs, overrides=overrides)
    # validate everything before the first write: spec, image map, stage names
    spec = validate_workflow(load_workflow(workflow, toplevel))
    unknown = sorted(set(retries_by_stage) - _stage_names(spec))
    if unknown:
        raise CommandLineError(
            f"--step-retries: no stage named {', '.join(map(repr, unknown))} in {workflow}; "
            f"stages: {', '.join(sorted(_stage_names(spec)))}"
        )
    parse_image_map(list(image_map or []), image_map_file)
    workdir = check_workdir(workdir)
    if unsafe_no_quoting:
        typer.echo(
            "warning: --unsafe-no-quoting: parameter values go into shell commands unquoted, "
            "as yadage does; only use it with inputs you trust",
            err=True,
        )
    summary = run_flow_from_cli(
        workdir,
        "python -m flows.spec_workflow",
        lambda: spec_workflow.with_options(task_runner=task_runner)(
            workflow=workflow,
            workdir=str(workdir),
            inputs=init,
            inputs_file=None,
            toplevel=toplevel,
            image_map=list(image_map or []),
            image_map_file=str(image_map_file.resolve()) if image_map_file else None,
            quote=not unsafe_no_quoting,
            use_cache=not no_cache,
            refresh_cache=refresh,
            retries=retries,
            retry_delay_seconds=retry_delay,
            step_timeout=step_timeout,
            visualize=visualize,
            step_retries=retries_by_stage,
        ),
    )
    typer.echo(f"{summary['status']}: {summary['steps']} steps; record: {summary['record']}")


def _parse_step_retries(items: list[str]) -> dict[str, int]:
    retries: dict[str, int] = {}
    for item in items:
        stage, separator, count = item.partition("=")
        if not separator or not stage.strip() or not count.strip().isdigit():
            raise CommandLineError(
                f"--step-retries {item!r}: expected STAGE=N with N a whole number, e.g. classification=2"
            )
        retries[stage.strip()] = int(count)
    return retries


def _stage_names(workflow: Any) -> set[str]:
    """Every stage name in a workflow, nested workflows included."""
    names: set[str] = set()
    pending = [workflow]
    while pending:
        current = pending.pop()
        for stage in current.stages:
            names.add(stage.name)
            nested = getattr(stage.scheduler, "workflow", None)
            if nested is not None:
                pending.append(nested)
            for case in getattr(stage.scheduler, "cases", None) or []:
                if getattr(case, "workflow", None) is not None:
                    pending.append(case.workflow)
    return names


if __name__ == "__main__":
    run_app(app, prog_name="python -m flows.spec_workflow")
