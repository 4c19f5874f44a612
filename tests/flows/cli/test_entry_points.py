"""How the command line is started: the ``mltoolkit`` console script, ``python -m flows.cli``
and the three documented ``python -m flows.*`` entry points.

Each is the same command function; a command that runs a flow starts the API
server and the warm workers (``prepare_cli_process``) before Prefect is imported,
and never for ``--help``.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.constants import FLOW_MODULES, REPO_ROOT


def test_console_script_is_declared():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"mltoolkit": "flows.cli:main"}


def _help_body(text: str) -> list[str]:
    """The help without its usage line (the one line that names the program)."""
    lines = [line.rstrip() for line in text.splitlines()]
    [usage] = [index for index, line in enumerate(lines) if "Usage:" in line]
    return lines[:usage] + lines[usage + 1 :]


@pytest.mark.parametrize("subcommand", sorted(FLOW_MODULES))
def test_python_m_entry_point_is_the_subcommand(subcommand, run_cli, offline_env):
    env = {**offline_env, "COLUMNS": "200"}
    module = FLOW_MODULES[subcommand]
    as_module = run_cli(["-m", module, "--help"], env)
    as_subcommand = run_cli(["-m", "flows.cli", subcommand, "--help"], env)
    assert as_module.returncode == 0 == as_subcommand.returncode, as_module.stderr + as_subcommand.stderr
    assert f"Usage: python -m {module} [OPTIONS]" in as_module.stdout
    assert f"Usage: mltoolkit {subcommand} [OPTIONS]" in as_subcommand.stdout
    assert _help_body(as_module.stdout) == _help_body(as_subcommand.stdout)
    assert as_module.stderr == as_subcommand.stderr == ""


#: Runs an entry point with ``prepare_cli_process`` replaced by a recorder: whether it
#: was called, whether Prefect had been imported by then, and its options (not a warm command).
_RECORDER = """
import json, sys
import flows.startup

calls = []
flows.startup.prepare_cli_process = lambda **options: calls.append(["prefect" in sys.modules, options])
import flows.cli

entry, args = sys.argv[1], sys.argv[2:]
try:
    if entry == "mltoolkit":
        flows.cli.main(args)
    else:
        flows.cli.run_module_command(entry, prog_name="python -m " + entry, args=args)
except SystemExit as exit_:
    print(json.dumps({"calls": calls, "code": exit_.code}))
"""


@pytest.mark.parametrize(
    ("entry", "args", "prepared"),
    [
        ("mltoolkit", ["run", "--bogus"], True),
        ("mltoolkit", ["spec", "wd", "workflow.yml", "--bogus"], True),
        ("mltoolkit", ["step", "steps.yml#/a", "wd", "--bogus"], True),
        ("mltoolkit", ["run", "--help"], False),
        ("mltoolkit", ["--help"], False),
        ("mltoolkit", ["bogus"], False),
        ("run", ["--bogus"], True),
        ("spec", ["--help"], False),
        ("step", ["steps.yml#/a", "wd", "--bogus"], True),
    ],
)
def test_flow_commands_start_the_helpers_before_importing_prefect(entry, args, prepared, run_cli, offline_env):
    result = run_cli(["-c", _RECORDER, entry, *args], offline_env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    # once, before Prefect was imported, as a cold command (warm commands are off: no idle time)
    assert outcome["calls"] == ([[False, {"warm": False}]] if prepared else [])
    assert outcome["code"] == (0 if "--help" in args else 1)


def test_importing_the_app_imports_neither_prefect_nor_the_flows(run_cli, offline_env):
    code = "import json, sys, flows.cli.app; print(json.dumps(sorted(sys.modules)))"
    result = run_cli(["-c", code], offline_env)
    assert result.returncode == 0, result.stderr
    imported = set(json.loads(result.stdout))
    assert "flows.cli.app" in imported
    assert not {name for name in imported if name == "prefect" or name.startswith("prefect.")}
    assert not {"flows.ml_workflow", "flows.spec_workflow", "flows.spec_step"} & imported
