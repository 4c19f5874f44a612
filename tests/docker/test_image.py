"""The image, built from the Dockerfile and run: the default command, the seed's steps, what it keeps.

The image is built once per session (``tests/docker/conftest.py``): here from
the offline base ``local/debian:bookworm`` when the engine has it, from the
Dockerfile's default ``python:3.11-slim-bookworm`` on a machine with a registry.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.constants import SEED_SCORES, SEED_URL
from tests.docker.engine import BuiltImage, docker, docker_environment, extra_ca_certificates

pytestmark = pytest.mark.slow

#: The image's Prefect home (HOME=/home/mltk in the Dockerfile): the database made at build time.
PREFECT_HOME = "/home/mltk/.prefect"
NON_ROOT = (1234, 1234)


def _owner(uid_gid: tuple[int, int] | None) -> tuple[int, int]:
    return uid_gid if uid_gid is not None else (os.getuid(), os.getgid())


def _prefect_home_logs(container: str) -> str:
    """Every ``*.log`` in the container's Prefect home (the API server's log among them)."""
    copied = subprocess.run(
        ["docker", "cp", f"{container}:{PREFECT_HOME}", "-"],
        env=docker_environment(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    texts = []
    with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".log"):
                extracted = tar.extractfile(member)
                assert extracted is not None
                texts.append(extracted.read().decode(errors="replace"))
    return "\n".join(texts)


@pytest.mark.parametrize(
    "uid_gid",
    [None, NON_ROOT],
    ids=["invoking-user", "non-root-owned-folder"],
)
def test_default_command_writes_the_seed_results_owned_by_the_user(
    mltoolkit_image: BuiltImage, tmp_path: Path, uid_gid: tuple[int, int] | None
) -> None:
    uid, gid = _owner(uid_gid)
    if (uid, gid) != (os.getuid(), os.getgid()) and os.getuid() != 0:
        pytest.skip("giving a folder to another uid needs root")
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, uid, gid)
    name = f"mltk-test-{uuid.uuid4().hex[:12]}"
    try:
        # As the README says: --user "$(id -u):$(id -g)"; no network needed.
        # Root logging at INFO, on the console too (our commands show only warnings
        # there unless told otherwise), shows the API server's migration check.
        run = docker(
            "run", "--name", name, "--network", "none", "--user", f"{uid}:{gid}",
            "-e", "PREFECT_LOGGING_ROOT_LEVEL=INFO", "-e", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO",
            "-v", f"{out}:/work", mltoolkit_image.tag,
            timeout=900,
        )  # fmt: skip
        logs = run.stdout + run.stderr + _prefect_home_logs(name)
    finally:
        docker("rm", "--force", name, check=False)
    scores = json.loads((out / "workdir" / "scores.json").read_text())
    assert {classifier: round(score, 2) for classifier, score in scores.items()} == SEED_SCORES
    figure = out / "workdir" / "merge_and_visualize" / "ml_results.png"
    assert figure.read_bytes()[:4] == b"\x89PNG"
    for path in [out, *out.rglob("*")]:
        assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), f"{path} is not owned by {uid}:{gid}"
    # Warm start: the server's start-up migration check ran (alembic said so) and had
    # nothing to do, since the database was made at the head revision at build time.
    assert "Context impl SQLiteImpl" in logs, "no alembic log line: the check below would prove nothing"
    assert "Running upgrade" not in logs, "the container ran Prefect's database migrations"


def test_database_was_made_at_the_head_revision(mltoolkit_image: BuiltImage) -> None:
    # The head of Prefect's SQLite migrations (the folder its alembic env.py uses) and
    # the revision recorded in the image's database.
    probe = (
        "import os, sqlite3, alembic.script\n"
        "from prefect.server.database import provide_database_interface\n"
        "from prefect.server.database.alembic_commands import alembic_config\n"
        "config = alembic_config()\n"
        "config.set_main_option('version_locations', str(provide_database_interface().orm.versions_dir))\n"
        "head = alembic.script.ScriptDirectory.from_config(config).get_current_head()\n"
        "db = sqlite3.connect(os.path.expanduser('~/.prefect/prefect.db'))\n"
        "print(head, db.execute('select version_num from alembic_version').fetchone()[0])\n"
    )
    run = docker("run", "--rm", "--network", "none", mltoolkit_image.tag, "python", "-c", probe, timeout=300)
    head, current = run.stdout.split()
    assert head != "None" and current == head


def test_seed_step_scripts_run_in_the_image(mltoolkit_image: BuiltImage, tmp_path: Path) -> None:
    # The seed's docker-encapsulated commands, as its steps.yml writes them (the
    # dataset URL is served from the copy inside the package: no network).
    step = (
        f"python /fun_with_ml/data_prep.py --dataset '{SEED_URL}' --outfile /work/prepped_data.pkl"
        " && python /fun_with_ml/classification.py --prepped_data /work/prepped_data.pkl"
        " --classifier rbf_svm --outfile /work/rbf_svm.pkl"
        " && python /fun_with_ml/merge_and_plot.py /work/prepped_data.pkl /work/ml_results.png /work/rbf_svm.pkl"
    )
    run = docker(
        "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
        "-v", f"{tmp_path}:/work", mltoolkit_image.tag, "sh", "-c", step,
        timeout=600,
    )  # fmt: skip
    assert re.search(r"^rbf_svm\s+0\.97$", run.stdout, re.MULTILINE), run.stdout
    assert (tmp_path / "prepped_data.pkl.sha256").is_file()
    assert (tmp_path / "ml_results.png").read_bytes()[:4] == b"\x89PNG"


def test_image_runs_as_non_root_and_keeps_no_extra_ca_certificate(mltoolkit_image: BuiltImage) -> None:
    report = (
        "id -u; command -v python; echo FILES; "
        "find /usr/local/share/ca-certificates /etc/ssl/certs -name '*mltoolkit*' -o -name 'host-*'; "
        "echo BUNDLE; cat /etc/ssl/certs/ca-certificates.crt"
    )
    run = docker("run", "--rm", "--network", "none", mltoolkit_image.tag, "sh", "-c", report, timeout=300)
    head, _, bundle = run.stdout.partition("\nBUNDLE\n")
    uid, python, files = head.split("\n", 2)
    assert uid == "1000"
    assert python == "/opt/mltoolkit/bin/python"
    assert files.removeprefix("FILES").strip() == "", f"build-only certificate files in the image: {files}"
    assert "BEGIN CERTIFICATE" in bundle  # the base's own trust store is there
    bundle_text = bundle.replace("\n", "")
    for certificate in extra_ca_certificates():
        body = "".join(line for line in certificate.read_text().splitlines() if line and not line.startswith("-----"))
        assert body not in bundle_text, f"{certificate.name} is in the image's trust store"
