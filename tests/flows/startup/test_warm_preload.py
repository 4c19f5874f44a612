"""What the kept command process prepares before it forks commands (run in a child: it imports everything)."""

from __future__ import annotations

import json
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
