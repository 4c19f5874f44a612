"""Phase 4 of the spec loader: the workflow state machine, without running anything.

:class:`WorkflowRun` is what an executor (the Prefect adapter, or
:func:`mltoolkit.yadage.runner.run_workflow`) drives::

    run = WorkflowRun(workflow, init, workdir)
    while not run.finished:
        for stage in run.advance():            # stages whose dependencies have published
            for step in stage.steps:           # ...each with its resolved parameters
                result = run_step(step.step, step.parameters, step.workdir, ...)
                run.record_success(step.id, result.published)   # or record_failure
    run.records()                              # every step, in scheduling order

Semantics follow yadage:

* The inputs are the published values of a virtual stage ``init`` (relative values
  naming files that exist in ``WORKDIR/init/`` become absolute paths there).
* A stage is applied once every dependency expression is ready: a stage name (or
  JSONPath over the scope, such as ``'map.[*].stage1'``) is ready when the stages
  it selects have been applied and all their steps -- recursively, all steps of
  selected subworkflow instances -- have published.
* ``singlestep-stage`` adds one step named after the stage (workdir
  ``<scope dir>/<stage>``); ``multistep-stage`` and ``jq-stage`` add ``<stage>_<i>``
  (workdir ``<scope dir>/<stage>_<i>``). A stage that runs a ``workflow`` adds a
  *scope* per instance instead, with pointer ``<parent>/<stage>/<n>`` (``/map/0``),
  its own ``init`` (the instance's parameters) and folder (``WORKDIR/map_0``).
* ``{workdir}`` in any string parameter becomes the step's (or instance's) folder.
* ``register_values`` stores expressions in the scope; ``{expression_type:
  fromvalue, key: K}`` reads them, and a selection that matches subworkflow
  instances (``{stages: 'map[*]', output: K}``) reads the value ``K`` registered
  inside each instance.

Deliberate differences from yadage: a stage that was applied but scheduled no
step (empty scatter, no matching case) counts as done, so its dependants still
run instead of waiting forever; a JSONPath dependency is never ready while the
stage it starts from is unapplied (yadage may start too early); a problem found
while planning a stage (zip of unequal lists, missing output...) fails that
stage with a one-line message in :attr:`WorkflowRun.errors` instead of crashing
the executor, and the run ends as failed.

Bookkeeping is incremental (counters, per-scope dirty flags, cached selections),
so 10,000 steps in one stage cost linear time overall.

The planner's *state* (:mod:`~mltoolkit.yadage.planner.state`: scopes, stage
entries, step records, what has published; built from
:mod:`~mltoolkit.yadage.planner.scopes` and :mod:`~mltoolkit.yadage.planner.records`)
is apart from its *scheduling*: :mod:`~mltoolkit.yadage.planner.readiness` (when a
stage may be applied), :mod:`~mltoolkit.yadage.planner.selection` and
:mod:`~mltoolkit.yadage.planner.resolve` (what references read),
:mod:`~mltoolkit.yadage.planner.apply` (a stage -> :class:`PlannedStage`, folders
from :mod:`~mltoolkit.yadage.planner.folders`), tied together by
:class:`~mltoolkit.yadage.planner.run.WorkflowRun`.
"""

from __future__ import annotations

from mltoolkit.yadage.planner.records import (
    CACHED,
    COMPLETED,
    DONE_STATES,
    FAILED,
    PENDING,
    RUNNING,
    PlannedStage,
    PlannedStep,
    StepRecord,
)
from mltoolkit.yadage.planner.run import WorkflowRun
from mltoolkit.yadage.planner.values import fill_workdir, resolve_init_files

__all__ = [
    "CACHED",
    "COMPLETED",
    "DONE_STATES",
    "FAILED",
    "PENDING",
    "RUNNING",
    "PlannedStage",
    "PlannedStep",
    "StepRecord",
    "WorkflowRun",
    "fill_workdir",
    "resolve_init_files",
]
