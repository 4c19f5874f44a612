"""flows.startup.prefect_settings resolves each setting from the same source Prefect does.

Every case runs one subprocess that asks both our reader and Prefect itself
(``prefect.settings.get_current_settings()``), in a folder holding the case's
files, with an environment holding only the case's variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.constants import REPO_ROOT

_PROBE = """
import json, os, sys
from flows.startup import prefect_settings as ours
from prefect.settings.models.root import Settings

base = dict(os.environ)
answers = {}
for case in json.loads(sys.stdin.read()):
    os.environ.clear()
    os.environ.update(base, HOME=case["home"], **case["environment"])
    os.chdir(case["work"])
    mine = {"url": ours.configured_api_url(), "ephemeral": ours.ephemeral_server_allowed()}
    mine["home"] = str(ours.prefect_home())
    s = Settings()  # reads every source again, as at Prefect's import
    theirs = {"url": s.api.url or None, "ephemeral": s.server.ephemeral.enabled, "home": str(s.home)}
    answers[case["id"]] = {"ours": mine, "prefect": theirs}
print(json.dumps(answers))
"""

HOME_PROFILES = "HOME/.prefect/profiles.toml"  # placeholder: the case's default Prefect home

CASES = {
    # id: (environment, files, expected url, expected ephemeral)
    "nothing configured": ({}, {}, None, True),
    "environment": ({"PREFECT_API_URL": "http://env:1/api"}, {}, "http://env:1/api", True),
    ".env": ({}, {".env": "PREFECT_API_URL=http://dotenv:1/api\n"}, "http://dotenv:1/api", True),
    "prefect.toml": ({}, {"prefect.toml": '[api]\nurl = "http://toml:1/api"\n'}, "http://toml:1/api", True),
    "pyproject.toml": (
        {},
        {"pyproject.toml": '[tool.prefect.api]\nurl = "http://pyproject:1/api"\n'},
        "http://pyproject:1/api",
        True,
    ),
    "active profile": (
        {},
        {HOME_PROFILES: 'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://profile:1/api"\n'},
        "http://profile:1/api",
        None,
    ),
    "PREFECT_PROFILE picks the profile": (
        {"PREFECT_PROFILE": "other"},
        {
            HOME_PROFILES: 'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://mine:1/api"\n'
            '[profiles.other]\nPREFECT_API_URL = "http://other:1/api"\n'
        },
        "http://other:1/api",
        None,
    ),
    "unknown active profile means Prefect's default": (
        {},
        {HOME_PROFILES: 'active = "gone"\n[profiles.mine]\nPREFECT_API_URL = "http://mine:1/api"\n'},
        None,
        True,
    ),
    "PREFECT_PROFILES_PATH from .env": (
        {},
        {
            ".env": "PREFECT_PROFILES_PATH=elsewhere.toml\n",
            "elsewhere.toml": 'active = "x"\n[profiles.x]\nPREFECT_API_URL = "http://elsewhere:1/api"\n',
        },
        "http://elsewhere:1/api",
        None,
    ),
    "environment beats .env": (
        {"PREFECT_API_URL": "http://env:1/api"},
        {".env": "PREFECT_API_URL=http://dotenv:1/api\n"},
        "http://env:1/api",
        True,
    ),
    ".env beats prefect.toml": (
        {},
        {".env": "PREFECT_API_URL=http://dotenv:1/api\n", "prefect.toml": '[api]\nurl = "http://toml:1/api"\n'},
        "http://dotenv:1/api",
        True,
    ),
    "prefect.toml beats pyproject.toml": (
        {},
        {
            "prefect.toml": '[api]\nurl = "http://toml:1/api"\n',
            "pyproject.toml": '[tool.prefect.api]\nurl = "http://pyproject:1/api"\n',
        },
        "http://toml:1/api",
        True,
    ),
    "pyproject.toml beats the profile": (
        {},
        {
            "pyproject.toml": '[tool.prefect.api]\nurl = "http://pyproject:1/api"\n',
            HOME_PROFILES: 'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://profile:1/api"\n',
        },
        "http://pyproject:1/api",
        None,
    ),
    "ephemeral mode off in the environment (old name)": (
        {"PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"},
        {},
        None,
        False,
    ),
    "ephemeral mode off in prefect.toml": ({}, {"prefect.toml": "[server.ephemeral]\nenabled = false\n"}, None, False),
    "a profile without the ephemeral setting": ({}, {HOME_PROFILES: 'active = "bare"\n[profiles.bare]\n'}, None, False),
    "a profiles file that is not TOML": ({}, {HOME_PROFILES: "active = [broken\n"}, None, False),
    "an empty PREFECT_API_URL counts as set": (
        {"PREFECT_API_URL": ""},
        {"prefect.toml": '[api]\nurl = "http://toml:1/api"\n'},
        None,
        True,
    ),
}


HOME_CASES = {
    "home from the environment": ({"PREFECT_HOME": "{tmp}/from-env"}, {}),
    "home from .env": ({}, {".env": "PREFECT_HOME={tmp}/from-dotenv\n"}),
    "home from prefect.toml": ({}, {"prefect.toml": 'home = "{tmp}/from-toml"\n'}),
    "home from pyproject.toml": ({}, {"pyproject.toml": '[tool.prefect]\nhome = "{tmp}/from-pyproject"\n'}),
}
TEST_MODE_PROFILE = 'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://profile:1/api"\n'


def _lay_out(
    folder: Path, case_id: str, environment: dict[str, str], files: dict[str, str], default_home: bool = False
) -> dict:
    home = folder / "home"
    work = folder / "work"
    work.mkdir(parents=True)
    for name, text in files.items():
        path = home / ".prefect" / "profiles.toml" if name == HOME_PROFILES else work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(tmp=folder))
    environment = {key: value.format(tmp=folder) for key, value in environment.items()}
    if HOME_PROFILES in files and not default_home:
        # Prefect fixes ~ at import; within one process each case names its home instead
        environment.setdefault("PREFECT_HOME", str(home / ".prefect"))
    return {"id": case_id, "home": str(home), "work": str(work), "environment": environment}


def _ask(root: Path, laid_out: list[dict]) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLTOOLKIT_"))}
    env.update(PYTHONPATH=str(REPO_ROOT), HOME=laid_out[0]["home"])  # what Prefect reads at import
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        input=json.dumps(laid_out),
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict:
    """Our reader's and Prefect's answers for every case, from one subprocess."""
    root = tmp_path_factory.mktemp("prefect-settings")
    cases = [(key, env, files) for key, (env, files, _url, _ephemeral) in CASES.items()]
    cases += [(key, env, files) for key, (env, files) in HOME_CASES.items()]
    cases.append(("test mode", {"PREFECT_TEST_MODE": "1"}, {HOME_PROFILES: TEST_MODE_PROFILE}))
    laid_out = [_lay_out(root / f"case{index}", *case) for index, case in enumerate(cases)]
    return _ask(root, laid_out)


@pytest.mark.parametrize(("environment", "files", "url", "ephemeral"), CASES.values(), ids=CASES.keys())
def test_each_source_is_read_like_prefect(answers, request, environment, files, url, ephemeral):
    answer = answers[request.node.callspec.id]
    assert answer["ours"] == answer["prefect"]
    assert answer["ours"]["url"] == url
    if ephemeral is not None:
        assert answer["ours"]["ephemeral"] is ephemeral


@pytest.mark.parametrize("case", HOME_CASES)
def test_prefect_home_is_read_like_prefect(answers, case):
    answer = answers[case]
    assert answer["ours"]["home"] == answer["prefect"]["home"]
    assert "/from-" in answer["ours"]["home"]


def test_prefect_test_mode_ignores_profiles(answers):
    answer = answers["test mode"]
    assert answer["ours"]["url"] is None
    assert answer["ours"]["url"] == answer["prefect"]["url"]


def test_the_profiles_file_in_the_default_home_is_read_like_prefect(tmp_path):
    profile = 'active = "mine"\n[profiles.mine]\nPREFECT_API_URL = "http://profile:1/api"\n'
    case = _lay_out(tmp_path, "default home", {}, {HOME_PROFILES: profile}, default_home=True)
    answer = _ask(tmp_path, [case])["default home"]
    assert answer["ours"] == answer["prefect"]
    assert answer["ours"]["url"] == "http://profile:1/api"
