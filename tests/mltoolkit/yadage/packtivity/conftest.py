"""Fixtures for the step-runner tests: validated steps from a few fields, a fake ``docker`` command."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mltoolkit.yadage import StepSpec, validate_step


def _make_step(
    cmd: str | None = None,
    *,
    script: str | None = None,
    interpreter: str | None = None,
    environment: dict[str, Any] | None = None,
    publisher: dict[str, Any] | None = None,
) -> StepSpec:
    if script is not None:
        process: dict[str, Any] = {"process_type": "interpolated-script-cmd", "script": script}
        if interpreter:
            process["interpreter"] = interpreter
    else:
        process = {"process_type": "string-interpolated-cmd", "cmd": cmd}
    return validate_step(
        {
            "process": process,
            "environment": environment or {"environment_type": "localproc-env"},
            "publisher": publisher or {"publisher_type": "constant-pub", "publish": {}},
        }
    )


@pytest.fixture(scope="session")
def make_step() -> Callable[..., StepSpec]:
    """``make_step(cmd)`` or ``make_step(script=..., interpreter=...)``: a localproc step (constant-pub)."""
    return _make_step


@pytest.fixture(scope="session")
def docker_step() -> Callable[..., StepSpec]:
    """``docker_step(cmd, image, **environment fields)``: a docker-encapsulated step."""

    def build(cmd: str, image: str = "some/image", **extra: Any) -> StepSpec:
        return _make_step(cmd, environment={"environment_type": "docker-encapsulated", "image": image, **extra})

    return build


#: A stand-in for the ``docker`` command: it records each call as a JSON line and
#: answers like an engine would (image ids from FAKE_IMAGE_ID, pulls refused with
#: FAKE_PULL_ERROR, ``run`` writes its --cidfile and sleeps FAKE_RUN_SECONDS).
FAKE_DOCKER = """\
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[0] == "info":
    sys.exit(int(os.environ.get("FAKE_INFO_EXIT", "0")))
if args[:2] == ["image", "inspect"]:
    if os.environ.get("FAKE_IMAGE_ID"):
        print(os.environ["FAKE_IMAGE_ID"])
        sys.exit(0)
    print("Error response from daemon: No such image: " + args[-1], file=sys.stderr)
    sys.exit(1)
if args[0] == "pull":
    print("Error response from daemon:\\n  " + os.environ.get("FAKE_PULL_ERROR", "pull access denied"), file=sys.stderr)
    sys.exit(1)
if args[0] == "run":
    with open(args[args.index("--cidfile") + 1], "w") as cid:
        cid.write("c0ffee" * 8)
    print("ran in the fake engine")
    time.sleep(float(os.environ.get("FAKE_RUN_SECONDS", "0")))
"""


@dataclass
class FakeDocker:
    """The fake ``docker`` on PATH: set what it answers, read the calls it got."""

    calls_file: Path
    monkeypatch: pytest.MonkeyPatch

    def answer(self, **variables: str) -> None:
        """Set ``FAKE_*`` answers (``image_id``, ``pull_error``, ``run_seconds``, ``info_exit``)."""
        for key, value in variables.items():
            self.monkeypatch.setenv(f"FAKE_{key.upper()}", value)

    def calls(self, subcommand: str | None = None) -> list[list[str]]:
        """Every call's arguments (only those starting with ``subcommand`` when given)."""
        if not self.calls_file.exists():
            return []
        found = [json.loads(line) for line in self.calls_file.read_text().splitlines()]
        return [args for args in found if subcommand is None or args[0] == subcommand]


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """A fake ``docker`` first on PATH, at a DOCKER_HOST of its own (so the probe cache is its own)."""
    folder = tmp_path / "fake-docker-bin"
    folder.mkdir()
    script = folder / "docker"
    script.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/fake.sock")
    monkeypatch.setenv("FAKE_DOCKER_CALLS", str(tmp_path / "docker-calls.jsonl"))
    return FakeDocker(tmp_path / "docker-calls.jsonl", monkeypatch)
