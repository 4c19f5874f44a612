"""Any yadage workflow spec as a Prefect flow, and the seed's spec with its inputs as a form.

Run it like ``yadage-run``::

    python -m flows.spec_workflow WORKDIR WORKFLOW [INPUTS] --toplevel DIR [-p key=value ...]
                                  [--image-map IMAGE=local] [--visualize]

(the same as ``mltoolkit spec``; the command line is :mod:`flows.cli.spec`). The
pure loader (``mltoolkit.yadage``) reads and validates the spec and plans stages;
:mod:`flows.spec_scheduler` runs each planned stage as Prefect task runs
(:mod:`flows.spec_tasks`); the flows here hold the work directory's lock, write
``WORKDIR/_mltoolkit/run.json`` and publish the UI's tables.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Delegated before the imports below, so that the command starts the API server
    # and the warm workers before Prefect is imported (see flows/startup/__init__.py), and
    # this module is imported once, under its own name.
    from flows.cli import run_module_command

    run_module_command("spec", prog_name="python -m flows.spec_workflow")

from pathlib import Path
from typing import Any

from prefect.context import FlowRunContext

from flows.caching import CacheSettings
from flows.environment_runner import EnvironmentTaskRunner
from flows.expected_errors import install_expected_error_filter
from flows.json_flow import json_flow
from flows.parameters import ClassifierName
from flows.run_guard import guarded_run
from flows.run_record import now_iso, write_run_record
from flows.spec_scheduler import SpecRunOptions, SpecRunResult, run_spec
from flows.ui_artifacts import publish_output_files, publish_spec_results, publish_steps
from mltoolkit.errors import SpecRunFailedError
from mltoolkit.preservation.submitted import Submission, keep_spec_submission
from mltoolkit.workdir.layout import WorkdirLayout
from mltoolkit.yadage import load_workflow, read_inputs
from mltoolkit.yadage.packtivity.manual import DEFAULT_HUMAN_TIMEOUT

__all__ = ["BUNDLED_SEED_SPEC", "seed_spec_workflow", "spec_workflow"]


#: Default spec of the deployment: the seed's parallel workflow, shipped with the package.
BUNDLED_SEED_SPEC = str(Path(__file__).resolve().parents[1] / "mltoolkit" / "specs" / "seed_parallel" / "workflow.yml")


def _step_records(result: SpecRunResult) -> list[dict[str, Any]]:
    """The run record's steps: the planner's records plus each step's files, times, task run and cache reason."""
    records = []
    for record in result.run.records():
        entry = record.to_dict()
        entry["outputs"] = result.outputs.get(record.id, {})
        timing = result.details.get(record.id, {})
        entry.update({key: timing.get(key) for key in ("started", "ended", "attempts", "task_run_id")})
        if timing.get("resources") is not None:
            entry["resources"] = timing["resources"]
        if timing.get("environment"):  # where it ran (absent for a step that did not finish)
            entry["environment"] = timing["environment"]
        if record.id in result.cache:
            entry["cache"] = result.cache[record.id]
        entry.update(result.annotations.get(record.id, {}))  # stubbed, human
        records.append(entry)
    return records


async def _run_and_report(
    workflow: str,
    workdir: str,
    init: dict[str, Any],
    toplevel: str | None,
    options: SpecRunOptions,
    submitted: tuple[str | None, Submission | None] = (None, None),
) -> dict[str, Any]:
    """The body both spec flows share: lock, keep what was submitted, run, record, artifacts, outcome.

    ``submitted`` is the flow's inputs file and what a command line was given.

    Raises:
        SpecRunFailedError: a step failed (after its retries); the record names it.
    """
    install_expected_error_filter()  # where the run starts: our errors are logged as their one line
    layout = WorkdirLayout(workdir)
    root = str(layout.root)
    started = now_iso()
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    with guarded_run(root, "spec-workflow"):
        inputs_file, submission = submitted
        keep_spec_submission(  # before any step runs
            root, loaded=load_workflow(workflow, toplevel), init=init, inputs_file=inputs_file, submission=submission
        )
        result = await run_spec(workflow, init, root, toplevel, options)
        run = result.run
        records = _step_records(result)
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
        await publish_steps(records, root)
        await publish_spec_results(records, root)
        await publish_output_files(root, key="spec-output-files", checksums_key="spec-checksums")
    problems = run.problems()
    if run.failed:
        failed = sum(1 for record in records if record["state"] == "FAILED")
        raise SpecRunFailedError(
            f"{failed} of {len(records)} step(s) failed; first problem: "
            f"{problems[0] if problems else 'unknown'}; record: {layout.run_record}"
        )
    return {"status": run.status, "steps": len(records), "record": str(layout.run_record)}


@json_flow(
    name="spec-workflow",
    description="Run a preserved yadage workflow spec (workflow.yml, steps.yml, inputs) as Prefect tasks.",
    task_runner=EnvironmentTaskRunner(),
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
    provide: dict[str, str] | None = None,
    submission: Submission | None = None,
    stub: bool = False,
    human_timeout: float = DEFAULT_HUMAN_TIMEOUT,
) -> dict[str, Any]:
    """Run a yadage spec; return ``{"status", "steps", "record"}``.

    Args:
        workflow: the workflow file (workflow.yml), resolved against toplevel.
        workdir: the run's folder (yadage's layout; init files in WORKDIR/init).
        inputs: init values (override those of inputs_file).
        inputs_file: YAML file of init values (the seed's inputs.yml).
        toplevel: folder the workflow and its $ref's resolve against (default: the workflow's folder).
        image_map: IMAGE=local entries: these images' steps run here, engine or not (the seed's built-in: without one).
        image_map_file: YAML file of image-map entries (same rule).
        quote: shell-quote parameter values (off: yadage's unsafe pasting).
        use_cache: reuse steps whose spec, parameters and input files are unchanged.
        refresh_cache: run every step again and store the new results.
        retries: retries of a failed step.
        retry_delay_seconds: pause before each retry.
        step_timeout: seconds after which a step's processes are killed.
        visualize: also draw WORKDIR/_mltoolkit/workflow.png, .svg and .dot.
        step_retries: retries per stage name, overriding retries for that stage's steps.
        provide: resources this machine provides to steps, name -> value (e.g. {"CVMFS": "/cvmfs"}; "" for none).
        submission: the inputs file and -p values of a command line, kept in WORKDIR/_mltoolkit/submitted/.
        stub: run every step as a stub that writes its declared outputs empty (wiring only; never cached).
        human_timeout: seconds a human step (manual-instructions-*) waits for its answer, then fails.
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
        provided=dict(provide or {}),
        stub=stub,
        human_timeout=human_timeout,
    )
    init = read_inputs(inputs_file, overrides=inputs or {})
    return await _run_and_report(workflow, workdir, init, toplevel, options, (inputs_file, submission))


@json_flow(
    name="seed-spec-workflow",
    description=(
        "The seed's preserved yadage workflow, unmodified (shipped with the toolkit), with its "
        "inputs as a form: dataset and classifiers."
    ),
    task_runner=EnvironmentTaskRunner(),
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
