"""Importing any ``flows`` module has no side effects: no environment is read, no logging is changed.

One subprocess imports every module in turn with a bogus ``MLTOOLKIT_TASK_RUNNER``
(an import that chose the task runner would fail) and records, per module,
whether the import succeeded and whether any logger gained or lost one of our
logging filters (such as the one that drops tracebacks of expected errors).
"""

from __future__ import annotations

import json
import os
import pkgutil

import pytest

import flows
from tests.constants import REPO_ROOT

#: Every module of the package, ``flows.cli.__main__`` included: the process runner's
#: spawned workers import it (as ``__mp_main__``) when the command is ``python -m flows.cli``.
MODULES = sorted(info.name for info in pkgutil.walk_packages(flows.__path__, prefix="flows."))

_PROBE = """
import importlib, json, logging, sys
import prefect  # Prefect's own filters are installed here, not by our modules

for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):  # where a run's errors are logged
    logging.getLogger(name)


def filters():
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return {logger.name: list(logger.filters) for logger in loggers}


def ours(items):
    return [item for item in items if type(item).__module__.startswith(("flows", "mltoolkit"))]


report = {}
for name in sys.argv[1:]:
    before = filters()
    try:
        importlib.import_module(name)
    except Exception as error:
        report[name] = {"error": f"{type(error).__name__}: {error}"}
        continue
    after = filters()
    # Prefect gives its loggers its own filter when it first hands them out (on import of
    # its modules): what must not change is the filters of ours.
    changed = [key for key in after if ours(after[key]) != ours(before.get(key, []))]
    report[name] = {"changed": sorted(changed)}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def import_report(run_cli, tmp_path_factory) -> dict[str, dict]:
    env = {**os.environ, "MLTOOLKIT_TASK_RUNNER": "bogus", "MLTOOLKIT_DASK_ADDRESS": "nowhere"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = run_cli(["-c", _PROBE, *MODULES], env, cwd=tmp_path_factory.mktemp("imports"))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_flows_module_is_probed():
    expected = {"flows.ml_workflow", "flows.spec_workflow", "flows.spec_step", "flows.cli.app", "flows.cli.__main__"}
    assert expected <= set(MODULES)


def test_the_probe_sees_a_filter_installed_at_import(run_cli, offline_env, tmp_path):
    """The probe is able to fail: a module that installs the filter when imported is reported."""
    (tmp_path / "installs_at_import.py").write_text(
        "from flows.expected_errors import install_expected_error_filter\ninstall_expected_error_filter()\n"
    )
    env = {**offline_env, "PYTHONPATH": f"{tmp_path}:{offline_env['PYTHONPATH']}"}
    result = run_cli(["-c", _PROBE, "installs_at_import"], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    changed = json.loads(result.stdout.strip().splitlines()[-1])["installs_at_import"]["changed"]
    assert changed == ["prefect.engine", "prefect.flow_runs", "prefect.task_runs"]


@pytest.mark.parametrize("module", MODULES)
def test_import_has_no_side_effects(module, import_report):
    assert import_report[module] == {"changed": []}
