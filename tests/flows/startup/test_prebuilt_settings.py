"""flows.startup.prebuilt_settings: a warm command takes the settings built ahead only when it would read the same.

One subprocess (it imports Prefect and changes its global settings) runs every case,
each in a folder of its own, and reports what the fork-side refresh did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.constants import REPO_ROOT

_PROBE = """
import json, os, shutil, sys, time
import prefect.context, prefect.settings
from flows.startup import prebuilt_settings as ours

SERVER = {"PREFECT_API_URL": "http://127.0.0.1:1/api", "PREFECT_API_AUTH_STRING": "a:b"}
base = dict(os.environ)
report = {}


def case(name, fork_environment, before=None, after=None):
    os.environ.clear(); os.environ.update(base)
    folder = os.path.join(base["CASES"], name); os.makedirs(folder); os.chdir(folder)
    if before:
        before()
    ours.prebuild_root_settings(SERVER)
    prebuilt = ours._prebuilt
    restored = all(os.environ.get(key) == base.get(key) for key in SERVER)
    if after:
        after()
    os.environ.update(fork_environment)
    ours.refresh_imported_prefect()
    settings = prefect.settings.get_current_settings()
    report[name] = {
        "built": prebuilt is not None,
        "taken": prebuilt is not None and prefect.context.GLOBAL_SETTINGS_CONTEXT is prebuilt.context,
        "url": settings.api.url,
        "logging level": settings.logging.level,
        "equals Prefect's own": settings.model_dump() == prefect.context.root_settings_context().settings.model_dump(),
        "environment restored": restored,
        "home exists": os.path.isdir(os.environ["PREFECT_HOME"]),
    }


def write_toml():
    with open("prefect.toml", "w") as handle:
        handle.write('[logging]\\nlevel = "ERROR"\\n')


case("same", {**SERVER, "KMP_OTHER": "x"})
case("other url", {**SERVER, "PREFECT_API_URL": "http://127.0.0.1:2/api"})
case("other setting", {**SERVER, "prefect_logging_level": "ERROR"})
case("settings file written after", SERVER, after=write_toml)
case("settings file just written", SERVER, before=write_toml)
case("a warning while building", SERVER, before=lambda: os.environ.update(PREFECT_PROFILE="nowhere"))
case("home removed after", SERVER, after=lambda: shutil.rmtree(os.environ["PREFECT_HOME"]))
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("prebuilt")
    environment = {key: value for key, value in os.environ.items() if not key.upper().startswith("PREFECT_")}
    home = root / "home"
    home.mkdir()
    environment.update(PREFECT_HOME=str(home), HOME=str(root), CASES=str(root / "cases"))
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_same_prefect_environment_takes_the_settings_built_ahead(report):
    same = report["same"]
    assert same["built"] and same["taken"]  # a variable no setting reads (KMP_OTHER) does not matter
    assert same["url"] == "http://127.0.0.1:1/api"
    assert same["equals Prefect's own"] and same["environment restored"]


@pytest.mark.parametrize(
    ("case", "url", "level"),
    [
        ("other url", "http://127.0.0.1:2/api", None),
        ("other setting", "http://127.0.0.1:1/api", "ERROR"),  # PREFECT_* in any case is a setting
        ("settings file written after", "http://127.0.0.1:1/api", "ERROR"),
        ("home removed after", "http://127.0.0.1:1/api", None),
    ],
)
def test_anything_the_settings_came_from_changed_makes_the_fork_read_them_itself(report, case, url, level):
    found = report[case]
    assert found["built"] and not found["taken"]
    assert found["url"] == url
    assert level is None or found["logging level"] == level
    assert found["equals Prefect's own"]


@pytest.mark.parametrize("case", ["settings file just written", "a warning while building"])
def test_nothing_is_built_ahead_when_a_fork_could_not_trust_it(report, case):
    found = report[case]
    assert not found["built"]  # a file changed within the clock's tick; a warning the fork must print itself
    assert found["equals Prefect's own"] and found["environment restored"]


def test_a_removed_home_is_made_again_by_the_fork(report):
    assert report["home removed after"]["taken"] is False
    assert report["home removed after"]["home exists"]  # as Prefect's own reading of the settings does
