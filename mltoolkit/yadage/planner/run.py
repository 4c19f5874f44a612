"""The workflow state machine an executor drives: the run's state plus its scheduling."""

from __future__ import annotations

from mltoolkit.errors import SpecError
from mltoolkit.yadage.planner.apply import apply_stage
from mltoolkit.yadage.planner.readiness import ready
from mltoolkit.yadage.planner.records import PlannedStage
from mltoolkit.yadage.planner.scopes import Scope, StageEntry
from mltoolkit.yadage.planner.state import RunState

__all__ = ["WorkflowRun"]


class WorkflowRun(RunState):
    """The state of one workflow run, and :meth:`advance`, which applies the stages that are ready.

    Args:
        workflow: the validated spec.
        init: the inputs (a mapping), i.e. the published values of stage ``init``.
        workdir: the run's folder; step folders are created under it by the executor.
        init_dir: folder of init files (default ``WORKDIR/init``).

    Not thread-safe: call it from one thread (e.g. the flow's), and hand steps to
    workers from there.
    """

    def advance(self) -> list[PlannedStage]:
        """Apply every stage whose dependencies are ready; return the stages that added steps.

        Stages of subworkflows started here are applied in the same call when
        ready. Problems found while planning a stage are appended to
        :attr:`errors` (the stage stays unapplied and the run fails).
        """
        planned: list[PlannedStage] = []
        while scopes := self.take_dirty():
            for scope in scopes:
                for entry in list(scope.unapplied):
                    stage_plan = self._try_apply(scope, entry)
                    if stage_plan is not None:
                        planned.append(stage_plan)
        return planned

    def _try_apply(self, scope: Scope, entry: StageEntry) -> PlannedStage | None:
        """Apply ``entry``'s stage if it is ready; a stage that cannot be planned fails with one line."""
        if entry.applied or entry.failed:
            return None
        try:
            if not ready(self, scope, entry):
                return None
            scope.unapplied.remove(entry)
            return apply_stage(self, scope, entry)
        except SpecError as error:
            self.fail_entry(entry, str(error))
            return None
