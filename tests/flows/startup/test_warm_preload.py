"""What the kept command process prepares before it forks commands (run in a child: it imports everything)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.constants import REPO_ROOT

_REPORT = """
import json, mimetypes, pydantic
import flows.startup.warm_preload as preload
from flows.cache_records import RESULT_TYPES, _adapter
models = [m for m in preload._subclasses(pydantic.BaseModel) if m.__module__.startswith("prefect.")]
print(json.dumps({
    "prefect_models": len(models),
    "incomplete": sorted(m.__qualname__ for m in models if not m.__pydantic_complete__),
    "result_types": len(RESULT_TYPES),
    "adapters_built": _adapter.cache_info().currsize,
    "media_types_read": mimetypes.inited,
}))
"""


def test_the_kept_process_builds_prefects_models_result_validators_and_media_types_before_it_forks():
    result = subprocess.run(
        [sys.executable, "-c", _REPORT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["prefect_models"] > 100
    assert report["incomplete"] == []  # none left for each forked command to build on first use
    assert report["adapters_built"] == report["result_types"]
    assert report["media_types_read"]


_SETTINGS_REPORT = """
import json
import flows.startup.warm_preload
from flows.cli.app import root_command
from flows.startup import prebuilt_settings
prebuilt = prebuilt_settings._prebuilt
print(json.dumps({
    "click commands built": root_command.cache_info().currsize,
    "prebuilt from": None if prebuilt is None else {
        name: value
        for name, value in prebuilt.environment.items()
        if name in ("PREFECT_API_URL", "PREFECT_API_SSL_CERT_FILE")
    },
}))
"""


def test_the_kept_process_builds_the_click_commands_and_prefects_settings_a_fork_will_have(tmp_path):
    from flows.startup.temporary_server import PLAIN_HTTP_CA_BUNDLE

    base = {key: value for key, value in os.environ.items() if not key.upper().startswith("PREFECT_")}
    base.update(PREFECT_HOME=str(tmp_path / "home"), MLTOOLKIT_API_IDLE_TIMEOUT="600")
    reports = {}
    for case, extra in {"configured API": {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, "no server yet": {}}.items():
        result = subprocess.run(
            [sys.executable, "-c", _SETTINGS_REPORT],
            cwd=REPO_ROOT,
            env={**base, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        reports[case] = json.loads(result.stdout.strip().splitlines()[-1])
    assert reports["configured API"] == {
        "click commands built": 1,
        # what the fork's start-up adds for a plain-HTTP API: the small CA bundle
        "prebuilt from": {
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
            "PREFECT_API_SSL_CERT_FILE": str(PLAIN_HTTP_CA_BUNDLE),
        },
    }
    assert reports["no server yet"] == {"click commands built": 1, "prebuilt from": None}  # the fork builds them
