"""The step scripts with the seed's command lines (mltoolkit/analysis/fun_with_ml), run as the seed runs them.

Every script runs as a subprocess, ``python /path/to/script.py ...``, from a
temporary folder without ``PYTHONPATH``: they must work because mltoolkit is
installed, not because the repository happens to be the current directory.
Proxies point at a closed local port, so a regression that tried to download
the seed's Dropbox URL fails here instead of reaching the network.
"""

from __future__ import annotations

import importlib
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mltoolkit.analysis.fun_with_ml import SCRIPT_NAMES, SCRIPTS_DIR, script_path
from mltoolkit.workdir.artifacts import load_pickle, sha256_file, sidecar_path

REPO_ROOT = Path(__file__).resolve().parents[3]
MOON = REPO_ROOT / "data" / "moon.txt"
#: The dataset URL of the seed's inputs.yml.
SEED_DATASET_URL = "https://www.dropbox.com/s/ovyxd3q4td7jd3m/moon.txt?dl=1"
#: The seed's classifiers (inputs.yml order) and their test scores as the seed's figure shows them.
SEED_SCORES = {
    "nearest_neighbours": ".97",
    "linear_svm": ".88",
    "rbf_svm": ".97",
    "gaussian_process": ".97",
    "decision_tree": ".95",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def step_env() -> dict[str, str]:
    """The environment of a step: no PYTHONPATH, every proxy on a closed local port."""
    environment = dict(os.environ)
    environment.pop("PYTHONPATH", None)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        environment[name] = "http://127.0.0.1:9"  # discard port: nothing answers
    environment.pop("NO_PROXY", None)
    environment.pop("no_proxy", None)
    return environment


def run_step(script: str, *args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS...`` with the seed's command line, as a yadage step would run it."""
    return subprocess.run(
        [sys.executable, str(script_path(script)), *map(str, args)],
        cwd=cwd,
        env=step_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def seed_score(score: float) -> str:
    """A score the way the seed's figure prints it: ``0.966`` -> ``.97``."""
    return f"{score:.2f}".lstrip("0")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (checks the signature too)."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def assert_one_line_error(completed: subprocess.CompletedProcess, *needles: str) -> str:
    """The step failed on bad input the toolkit's way: exit 1, one ``error:`` line, no traceback."""
    assert completed.returncode == 1, (completed.returncode, completed.stdout, completed.stderr)
    assert "Traceback" not in completed.stderr + completed.stdout
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- the seed's workflow, end to end --------------------------------------------------


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """data_prep (seed's URL) -> 5 classifications in parallel -> merge, in yadage's layout."""
    workdir = tmp_path_factory.mktemp("seed-workflow")
    prepped = workdir / "data_prep" / "prepped_data.pkl"
    data_prep = run_step("data_prep.py", "--dataset", SEED_DATASET_URL, "--outfile", prepped, cwd=workdir)
    assert data_prep.returncode == 0, data_prep.stderr

    # Started together like yadage's scatter, and so that the five cold
    # interpreters overlap on the two cores.
    processes = {}
    for index, name in enumerate(SEED_SCORES):
        outfile = workdir / f"classification_{index}" / f"{name}.pkl"
        processes[name] = (
            outfile,
            subprocess.Popen(
                [
                    sys.executable,
                    str(script_path("classification.py")),
                    "--prepped_data",
                    str(prepped),
                    "--classifier",
                    name,
                    "--outfile",
                    str(outfile),
                ],
                cwd=workdir,
                env=step_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    classifications = {}
    for name, (outfile, process) in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, (name, stderr)
        classifications[name] = {"outfile": outfile, "stdout": stdout, "stderr": stderr}

    figure = workdir / "merge_and_visualize" / "ml_results.png"
    merge = run_step(
        "merge_and_plot.py",
        prepped,
        figure,
        *(item["outfile"] for item in classifications.values()),
        cwd=workdir,
    )
    return {
        "workdir": workdir,
        "prepped": prepped,
        "data_prep": data_prep,
        "classifications": classifications,
        "figure": figure,
        "merge": merge,
    }


def test_package_lists_the_three_seed_scripts() -> None:
    assert SCRIPT_NAMES == ("data_prep.py", "classification.py", "merge_and_plot.py")
    with pytest.raises(KeyError):
        script_path("full_run.py")


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_each_script_is_found_by_file_name_and_stem(name: str) -> None:
    assert (SCRIPTS_DIR / name).is_file()
    assert script_path(name) == script_path(name.removesuffix(".py")) == SCRIPTS_DIR / name


def test_data_prep_resolves_the_seed_dropbox_url_offline(seed_run: dict) -> None:
    from mltoolkit.analysis.ml import PreppedData

    prepped_path: Path = seed_run["prepped"]
    assert sidecar_path(prepped_path).read_text().split()[0] == sha256_file(prepped_path)
    prepped = load_pickle(prepped_path, require_hash=True)
    assert isinstance(prepped, PreppedData)
    assert prepped.X.shape == (100, 2)
    assert (len(prepped.X_train), len(prepped.X_test)) == (60, 40)
    assert prepped.source_sha256 == sha256_file(MOON)  # the bundled copy is the seed's data
    assert str(prepped_path) in seed_run["data_prep"].stdout
    assert seed_run["data_prep"].stderr == ""


@pytest.mark.parametrize("dataset", ["path", "relative", "file-url"])
def test_data_prep_reads_local_paths_and_file_urls_like_the_url(dataset: str, seed_run: dict, tmp_path: Path) -> None:
    import numpy as np

    argument = {
        "path": str(MOON),
        "relative": os.path.relpath(MOON, tmp_path),
        "file-url": MOON.as_uri(),
    }[dataset]
    completed = run_step("data_prep.py", "--dataset", argument, "--outfile", "prepped.pkl", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    local = load_pickle(tmp_path / "prepped.pkl", require_hash=True)
    from_url = load_pickle(seed_run["prepped"], require_hash=True)
    for field in ("X", "X_train", "X_test", "y_train", "y_test"):
        np.testing.assert_array_equal(getattr(local, field), getattr(from_url, field))


@pytest.mark.parametrize("name", list(SEED_SCORES))
def test_classification_reproduces_the_seed_score(name: str, seed_run: dict) -> None:
    from mltoolkit.analysis.ml import ClassifierResult
    from mltoolkit.analysis.plotting import mesh_for

    run = seed_run["classifications"][name]
    result = load_pickle(run["outfile"], require_hash=True)
    assert isinstance(result, ClassifierResult)
    assert result.name == name
    assert seed_score(result.score) == SEED_SCORES[name]
    assert f"{name}: test score {result.score:.2f}" in run["stdout"]
    # The decision surface comes with the result, so the merge step only draws.
    prepped = load_pickle(seed_run["prepped"], require_hash=True)
    assert result.surface is not None
    assert result.surface.shape == mesh_for(prepped.X)[0].shape


def test_classification_defaults_to_the_seed_default_nearest_neighbors(seed_run: dict, tmp_path: Path) -> None:
    completed = run_step("classification.py", "--prepped_data", seed_run["prepped"], cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    result = load_pickle(tmp_path / "ml_output.pkl", require_hash=True)  # the seed's default --outfile
    assert result.name == "nearest_neighbours"
    assert result.display_name == "Nearest Neighbors"
    assert seed_score(result.score) == ".97"


def test_classification_accepts_a_mapping_for_other_classifiers(seed_run: dict, tmp_path: Path) -> None:
    spec = (
        "{name: forest, estimator: sklearn.ensemble.RandomForestClassifier, params: {n_estimators: 5, random_state: 0}}"
    )
    completed = run_step(
        "classification.py",
        "--prepped_data",
        seed_run["prepped"],
        "--classifier",
        spec,
        "--outfile",
        "forest.pkl",
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    result = load_pickle(tmp_path / "forest.pkl", require_hash=True)
    assert result.name == "forest"
    assert type(result.estimator).__name__ == "RandomForestClassifier"
    assert 0.5 < result.score <= 1.0


def test_merge_draws_the_figure_and_prints_the_scores(seed_run: dict) -> None:
    merge = seed_run["merge"]
    assert merge.returncode == 0, merge.stderr
    width, height = png_size(seed_run["figure"])
    assert width > 3 * height // 2  # six panels side by side
    assert seed_run["figure"].stat().st_size > 20_000  # drawn surfaces, not an empty canvas
    lines = merge.stdout.splitlines()
    rows = [line.split() for line in lines if line.split() and line.split()[0] in SEED_SCORES]
    # One row per PKL argument, in argument order, with the score the figure shows.
    assert [row[0] for row in rows] == list(SEED_SCORES)
    assert {row[0]: row[1].lstrip("0") for row in rows} == SEED_SCORES
    assert lines[-1] == f"figure: {seed_run['figure']}"
    assert not list(seed_run["figure"].parent.glob(".*.tmp"))  # atomic write left no temp file


def test_merge_draws_panels_in_argument_order(seed_run: dict, tmp_path: Path) -> None:
    results = seed_run["classifications"]
    order = ["rbf_svm", "linear_svm"]
    completed = run_step(
        "merge_and_plot.py",
        seed_run["prepped"],
        "two.png",
        *(results[name]["outfile"] for name in order),
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    rows = [
        line.split()[0] for line in completed.stdout.splitlines() if line.split()[:1] in (["rbf_svm"], ["linear_svm"])
    ]
    assert rows == order
    two_width, _ = png_size(tmp_path / "two.png")
    six_width, _ = png_size(seed_run["figure"])
    assert two_width < six_width


# --- bad input: one line, exit 1, no traceback, no output ------------------------------


@pytest.fixture
def tampered(seed_run: dict, tmp_path: Path) -> dict[str, Path]:
    """Copies of the seed run's pickles, broken in the ways a crashed or edited run breaks them."""
    prepped_bytes = seed_run["prepped"].read_bytes()
    result_path = seed_run["classifications"]["rbf_svm"]["outfile"]

    truncated = tmp_path / "truncated.pkl"  # content changed after the sidecar was written
    truncated.write_bytes(prepped_bytes[: len(prepped_bytes) // 2])
    sidecar_path(truncated).write_text(sidecar_path(seed_run["prepped"]).read_text())

    not_a_pickle = tmp_path / "not_a_pickle.pkl"  # garbage with a matching sidecar
    not_a_pickle.write_bytes(b"this is not a pickle\n")
    sidecar_path(not_a_pickle).write_text(f"{sha256_file(not_a_pickle)}  not_a_pickle.pkl\n")

    no_sidecar = tmp_path / "no_sidecar.pkl"  # a pickle of unknown origin
    no_sidecar.write_bytes(prepped_bytes)

    flipped = tmp_path / "flipped.pkl"  # one byte changed in a classifier result
    data = bytearray(result_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    sidecar_path(flipped).write_text(sidecar_path(result_path).read_text())

    bad_table = tmp_path / "bad_table.txt"
    bad_table.write_text("X Y Value\n0.1 0.2\n")

    return {
        "prepped": seed_run["prepped"],
        "result": result_path,
        "truncated": truncated,
        "not_a_pickle": not_a_pickle,
        "no_sidecar": no_sidecar,
        "flipped": flipped,
        "bad_table": bad_table,
    }


BAD_INPUTS = {
    "data_prep: dataset file missing": (
        "data_prep.py",
        ["--dataset", "{tmp}/missing.txt", "--outfile", "{out}"],
        ["missing.txt", "does not exist"],
    ),
    "data_prep: malformed table": (
        "data_prep.py",
        ["--dataset", "{bad_table}", "--outfile", "{out}"],
        ["line 2", "expected 3"],
    ),
    "data_prep: --dataset not given": ("data_prep.py", ["--outfile", "{out}"], ["--dataset", "required"]),
    "data_prep: unsupported URL scheme": (
        "data_prep.py",
        ["--dataset", "ftp://example.invalid/moon.txt", "--outfile", "{out}"],
        ["ftp"],
    ),
    "classification: prepped file missing": (
        "classification.py",
        ["--prepped_data", "{tmp}/missing.pkl", "--outfile", "{out}"],
        ["--prepped_data", "missing.pkl", "does not exist"],
    ),
    "classification: unknown classifier": (
        "classification.py",
        ["--prepped_data", "{prepped}", "--classifier", "rbf_svn", "--outfile", "{out}"],
        ["rbf_svn", "not registered", "rbf_svm"],
    ),
    "classification: malformed classifier mapping": (
        "classification.py",
        ["--prepped_data", "{prepped}", "--classifier", "{{name: x", "--outfile", "{out}"],
        ["--classifier", "YAML"],
    ),
    "classification: truncated prepped pickle": (
        "classification.py",
        ["--prepped_data", "{truncated}", "--outfile", "{out}"],
        ["truncated.pkl", "sha256"],
    ),
    "classification: not a pickle": (
        "classification.py",
        ["--prepped_data", "{not_a_pickle}", "--outfile", "{out}"],
        ["not a readable pickle"],
    ),
    "classification: pickle without sidecar": (
        "classification.py",
        ["--prepped_data", "{no_sidecar}", "--outfile", "{out}"],
        ["no_sidecar.pkl", "sidecar"],
    ),
    "classification: result passed as prepped data": (
        "classification.py",
        ["--prepped_data", "{result}", "--outfile", "{out}"],
        ["ClassifierResult", "PreppedData"],
    ),
    "merge: corrupt result pickle": (
        "merge_and_plot.py",
        ["{prepped}", "{out}", "{result}", "{flipped}"],
        ["PKL", "flipped.pkl", "sha256"],
    ),
    "merge: arguments in the wrong order": (
        "merge_and_plot.py",
        ["{result}", "{out}", "{prepped}"],
        ["PREPPED", "PreppedData"],
    ),
    "merge: no result pickles": ("merge_and_plot.py", ["{prepped}", "{out}"], ["PKL", "required"]),
    "merge: outfile is a directory": (
        "merge_and_plot.py",
        ["{prepped}", "{tmp}", "{result}"],
        ["OUTFILE", "is a directory"],
    ),
    "data_prep: outfile below a file": (
        "data_prep.py",
        ["--dataset", "{moon}", "--outfile", "{bad_table}/prepped.pkl"],
        ["--outfile", "bad_table.txt is a file"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_exit_1(case: str, tampered: dict[str, Path], tmp_path: Path) -> None:
    script, arguments, needles = BAD_INPUTS[case]
    outfile = tmp_path / "out" / "output.bin"
    values = {
        "tmp": str(tmp_path),
        "out": str(outfile),
        "moon": str(MOON),
        **{key: str(path) for key, path in tampered.items()},
    }
    completed = run_step(script, *(argument.format(**values) for argument in arguments), cwd=tmp_path)
    assert_one_line_error(completed, *needles)
    assert completed.stdout == ""
    assert not outfile.exists()  # a failed step never leaves an output a later step would trust


def test_a_failed_run_keeps_the_previous_output(seed_run: dict, tmp_path: Path) -> None:
    outfile = tmp_path / "prepped.pkl"
    assert run_step("data_prep.py", "--dataset", MOON, "--outfile", outfile, cwd=tmp_path).returncode == 0
    before = outfile.read_bytes()
    completed = run_step("data_prep.py", "--dataset", tmp_path / "missing.txt", "--outfile", outfile, cwd=tmp_path)
    assert_one_line_error(completed, "does not exist")
    assert outfile.read_bytes() == before
    assert load_pickle(outfile, require_hash=True).X.shape == (100, 2)


def test_write_failures_become_one_line_artifact_errors(tmp_path: Path) -> None:
    from mltoolkit.analysis.fun_with_ml._cli import writing_to
    from mltoolkit.errors import ArtifactError, IntegrityError

    with (
        pytest.raises(ArtifactError, match=r"^--outfile /x/y.pkl: cannot write \(Permission denied\)"),
        writing_to("/x/y.pkl", "--outfile"),
    ):
        raise PermissionError(13, "Permission denied")
    # The toolkit's own errors keep their message; other errors are bugs and pass through.
    with pytest.raises(IntegrityError, match=r"^own message$"), writing_to("/x/y.pkl", "--outfile"):
        raise IntegrityError("own message")
    with pytest.raises(ZeroDivisionError), writing_to("/x/y.pkl", "--outfile"):
        raise ZeroDivisionError("a bug, not bad input")


# --- in-process and warm runs ----------------------------------------------------------


@pytest.mark.parametrize("script", ["data_prep", "classification", "merge_and_plot"])
def test_help_in_process_returns_zero(script: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"mltoolkit.analysis.fun_with_ml.{script}")

    assert module.main(["--help"]) == 0
    assert "usage:" in capsys.readouterr().out


def test_main_returns_exit_codes_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from mltoolkit.analysis.fun_with_ml import classification, data_prep

    assert data_prep.main([]) == 1  # --dataset missing: a code, not SystemExit
    assert capsys.readouterr().err.startswith("error: data_prep.py: the following arguments are required")
    # Twice in one interpreter, as the zygote's children would after a fork:
    # nothing from the first run may leak into the second.
    first, second = tmp_path / "a.pkl", tmp_path / "b.pkl"
    assert data_prep.main(["--dataset", str(MOON), "--outfile", str(first)]) == 0
    assert data_prep.main(["--dataset", MOON.as_uri(), "--outfile", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert (
        classification.main(
            ["--prepped_data", str(first), "--classifier", "nope", "--outfile", str(tmp_path / "c.pkl")]
        )
        == 1
    )
    assert "not registered" in capsys.readouterr().err


def test_scripts_run_warm_in_the_zygote_through_the_python_shim(seed_run: dict, tmp_path: Path) -> None:
    from mltoolkit.processes.zygote import start_zygote, write_python_shim

    environment = step_env()
    if "PYTHONPATH" in os.environ:  # the zygote imports this checkout's toolkit
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    zygote = start_zygote(["mltoolkit.analysis.preload"], env=environment)  # a step's environment: warm
    try:
        shim_dir = write_python_shim(tmp_path / "shim", zygote.socket_path)
        environment["PATH"] = f"{shim_dir}{os.pathsep}{environment['PATH']}"

        def python(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess:
            # "python" is looked up on the step's PATH, as the seed's scripts do it.
            return subprocess.run(
                ["python", *map(str, args)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300
            )

        # Prove the shim really hands scripts to the zygote: a forked child's parent
        # is the zygote, and scikit-learn is imported before the script starts.
        probe = tmp_path / "probe.py"
        probe.write_text("import os, sys\nprint(os.getppid(), 'sklearn' in sys.modules, flush=True)\n")
        assert python(probe).stdout.split() == [str(zygote.process.pid), "True"]

        outfile = tmp_path / "warm" / "rbf_svm.pkl"
        completed = python(
            script_path("classification.py"),
            "--prepped_data",
            seed_run["prepped"],
            "--classifier",
            "rbf_svm",
            "--outfile",
            outfile,
        )
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout == f"rbf_svm: test score 0.97 -> {outfile}\n"  # flushed before the child exits
        cold = load_pickle(seed_run["classifications"]["rbf_svm"]["outfile"], require_hash=True)
        warm = load_pickle(outfile, require_hash=True)
        assert warm.score == cold.score

        failed = python(
            script_path("classification.py"),
            "--prepped_data",
            seed_run["prepped"],
            "--classifier",
            "rbf_svn",
            "--outfile",
            tmp_path / "warm" / "bad.pkl",
        )
        assert_one_line_error(failed, "rbf_svn")

        figure = tmp_path / "warm" / "figure.png"
        merged = python(script_path("merge_and_plot.py"), seed_run["prepped"], figure, outfile)
        assert merged.returncode == 0, merged.stderr
        assert merged.stdout.splitlines()[-1] == f"figure: {figure}"
        png_size(figure)
    finally:
        zygote.stop()
    assert zygote.process.poll() is not None
