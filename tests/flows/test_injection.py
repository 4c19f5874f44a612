"""Shell-injection payloads through every way a value reaches a spec step.

``tests/specs/injection`` runs one step per payload; the step's script hands the
value to ``python -c`` unquoted, in double quotes and in single quotes, and writes
it into a here-document. Yadage would paste each value into the shell as it is; we
quote it for where it lands, so no payload runs anything (its canary file is never
created) and each arrives as exactly one argument, unchanged.
"""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.constants import SPECS

#: ``{canary}`` is where a payload that got executed would create a file.
PAYLOADS = [
    "x; touch {canary}",
    "x && touch {canary}",
    "x | touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "x\ntouch {canary}",
    'it\'s "quoted"; touch {canary}',
    "two  spaces\tand a tab",
    "x > {canary}",
    "-rf",
    "--version",
    "*; touch {canary}",
    "?[a-z]*$(touch {canary})",
    "$HOME ${{PATH}}",
    "back\\slash \\n",
    "ünï cødé ✓",
]


def _payloads(canary: str) -> list[str]:
    return [template.format(canary=canary) for template in PAYLOADS]


@pytest.fixture
def run_injection_spec(run_cli, run_records, cli_env):
    """``run_injection_spec(workdir, *extra)``: run the injection spec (``extra``: an INPUTS file
    and/or options) through the command line; return its run record."""

    def run(workdir: Path, *extra: str) -> dict:
        command = ["-m", "flows.spec_workflow", str(workdir), "workflow.yml", *extra]
        result = run_cli([*command, "--toplevel", str(SPECS / "injection")], cli_env)
        assert result.returncode == 0, result.stderr[-3000:]
        return run_records.read(workdir)

    return run


def _received(record: dict) -> list[tuple[list[str], str]]:
    """Per step, in payload order: the arguments the command got and the here-document's text."""
    steps = sorted(record["steps"], key=lambda step: step["index"])
    return [
        (json.loads(Path(step["published"]["argv"]).read_text()), Path(step["published"]["heredoc"]).read_text())
        for step in steps
    ]


def _assert_nothing_ran(tmp_path: Path, canary: Path) -> None:
    assert not canary.exists(), "a payload was executed"
    assert not [path for path in tmp_path.rglob("*") if path.name == "PWNED"], "a payload was executed"


def test_payloads_given_with_p(run_injection_spec, tmp_path):
    canary = tmp_path / "CANARY"
    payloads = _payloads(str(canary)) + ["", "_packtiv*"]
    record = run_injection_spec(tmp_path / "work", "-p", f"payloads={json.dumps(payloads)}")

    _assert_nothing_ran(tmp_path, canary)
    received = _received(record)
    assert len(received) == len(payloads)
    for value, (argv, heredoc) in zip(payloads[:-1], received):
        assert argv == [value, value, value], value
        assert heredoc == value + "\n", value
    # By design (DESIGN.md, Quoting) glob wildcards stay active outside quotes, as the
    # seed's '{outdir}/*.pkl' needs: a pattern that matches files in the step's folder
    # expands there; in quotes it stays literal. The payloads above match nothing.
    argv, heredoc = received[-1]
    assert argv == ["_packtivity", "_packtiv*", "_packtiv*"]
    assert heredoc == "_packtiv*\n"


def test_payloads_given_in_an_inputs_file(run_injection_spec, tmp_path):
    canary = tmp_path / "CANARY"
    payloads = _payloads(str(canary))
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(yaml.safe_dump({"payloads": payloads}, allow_unicode=True), encoding="utf-8")
    record = run_injection_spec(tmp_path / "work", str(inputs))

    _assert_nothing_ran(tmp_path, canary)
    for value, (argv, heredoc) in zip(payloads, _received(record), strict=True):
        assert argv == [value, value, value], value
        assert heredoc == value + "\n", value


def test_payloads_as_names_of_init_files(run_injection_spec, tmp_path):
    """Files in WORKDIR/init/ named by the payloads: the init values name them, the steps get their paths."""
    workdir = tmp_path / "work"
    init = workdir / "init"
    init.mkdir(parents=True)
    names = _payloads("PWNED")  # a file name has no '/': a payload that ran would touch PWNED in its folder
    for name in names:
        (init / name).write_text("an init file\n")
    inputs = tmp_path / "inputs.yml"
    inputs.write_text(yaml.safe_dump({"payloads": names}, allow_unicode=True), encoding="utf-8")
    record = run_injection_spec(workdir, str(inputs))

    _assert_nothing_ran(tmp_path, tmp_path / "PWNED")
    for name, (argv, heredoc) in zip(names, _received(record), strict=True):
        path = str(init / name)
        assert argv[-2:] == [path, path], name  # in quotes
        assert heredoc == path + "\n", name
        # A value naming an existing file is that file, not a pattern: even '*; touch PWNED',
        # which as a pattern would match several of these files, arrives as one argument.
        assert argv[:-2] == [path], name
    assert [name for name in names if len(glob.glob(str(init / name))) > 1] == ["*; touch PWNED"]
    assert sorted(path.name for path in init.iterdir()) == sorted(names)  # init files untouched


# --- values published by an upstream step -----------------------------------------------------

#: Payloads an upstream step publishes (fromyaml-pub); ``{c}`` is the canary file.
PUBLISHED = [
    "x; touch {c}",
    "$(touch {c})",
    "`touch {c}`",
    "x\ntouch {c}",
    "# x\ntouch {c}\n#",
    "'; touch {c}; '",
    '"; touch {c}; "',
    "${{x:-$(touch {c})}}",
    "x\nEOF\ntouch {c}\ncat <<EOF",
    '"""; __import__(\'os\').system(\'touch {c}\'); """',
    "{{__import__('os').system('touch {c}')}}",
    "back\\slash\\",
    "ünï cødé ✓ \u2028",
    "plain/path-1.txt",
    "plain_name",
]


def _plain(value: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9_./:+,-]*", value) is not None and not value.startswith("-")


def _refused(step: dict) -> bool:
    return step["state"] == "FAILED" and "parameter 'payload'" in (step.get("error") or "")


def test_values_published_upstream_never_run(spec_in_process, tmp_path):
    canary = tmp_path / "CANARY"
    payloads = [template.format(c=canary) for template in PUBLISHED]
    workdir = tmp_path / "work"
    (workdir / "init").mkdir(parents=True)
    (workdir / "init" / "payloads.yml").write_text(yaml.safe_dump({"payloads": payloads}), encoding="utf-8")
    case = SPECS / "injection_published"
    state, record = spec_in_process.run(workdir, "workflow.yml", toplevel=case, inputs_file=case / "inputs.yml")

    _assert_nothing_ran(tmp_path, canary)
    steps = {(step["stage"], step["index"]): step for step in record["steps"]}
    assert len(steps) == 1 + 4 * len(payloads)
    for index, value in enumerate(payloads):
        for stage in ("sh_data", "bash_data"):
            step = steps[stage, index]
            if "EOF" in value.split("\n"):
                assert _refused(step), step
                continue
            assert step["state"] == "COMPLETED", step
            published = step["published"]
            assert json.loads(Path(published["argv"]).read_text()) == [value, value, value, f"x={value}"]
            assert Path(published["heredoc"]).read_text() == value + "\n"
            assert Path(published["quoted"]).read_text() == value + "\n"
        values = json.loads(Path(steps["python_data", index]["published"]["values"]).read_text())
        assert values == [value] * 6
        code = steps["sh_code", index]
        if _plain(value):
            assert Path(code["published"]["code"]).read_text() == f"{value}\n" * 3
        else:
            assert _refused(code), code
    assert not state.is_completed()  # the refused steps fail the run, each with its one line
