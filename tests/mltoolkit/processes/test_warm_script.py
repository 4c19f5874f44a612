"""The warm ``python`` (a script run in a zygote child) is indistinguishable from the real interpreter.

Each script runs twice with the same environment: through the real interpreter and
through the ``python`` shim; exit code, stdout, stderr and the files it wrote must
be equal. Where the zygote cannot be faithful (an environment variable that shaped
the interpreter or a preloaded library differs from the zygote's), the shim must
fall back to the real interpreter -- checked by where the script ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mltoolkit.processes.warm_script import FREE_VARIABLES
from mltoolkit.processes.zygote import RunningZygote, start_zygote, write_python_shim
from mltoolkit.workdir.artifacts import LINEAGE_ENV

SCRIPTS = {
    "atexit handlers run": "import atexit\natexit.register(print, 'bye')\nprint('hi')\n",
    "non-daemon threads finish": (
        "import threading, time\n"
        "def late():\n    time.sleep(0.3)\n    print('late', flush=True)\n"
        "threading.Thread(target=late).start()\nprint('main')\n"
    ),
    "unclosed files are flushed": "f = open('out.txt', 'w')\nf.write('abcd')\n",
    "os._exit keeps its code": "import os\nprint('unflushed', end='')\nos._exit(5)\n",
    "sys.exit with a message": "import sys\nsys.exit('bad thing')\n",
    "an uncaught exception": "def f():\n    raise ValueError('boom')\nf()\n",
    "KeyboardInterrupt ends by SIGINT": "raise KeyboardInterrupt\n",
    "a syntax error": "def (:\n",
    "what the script sees of itself": (
        "import sys\nprint(__file__, sys.argv, sys.path[0], __name__, sorted(globals()))\n"
        "print(sys.stdout.line_buffering, sys.stdout.write_through, sys.stderr.line_buffering, sys.stdout.encoding)\n"
    ),
    "stdin": "import sys\nprint(sys.stdin.read().upper(), end='')\n",
    "the matplotlib backend": "import matplotlib\nprint(matplotlib.get_backend())\n",
    "a module from PYTHONPATH": "import fidelity_module\nprint(fidelity_module.VALUE)\n",
    "the hash of a string": "print(hash('abc'))\n",
    "a warning": "import warnings\nwarnings.warn('careful')\nprint('after')\n",
    "the umask": "import os\nopen('out.txt', 'w').close()\nprint(oct(os.stat('out.txt').st_mode & 0o777))\n",
}
#: Environments that differ from the zygote's in a variable that shapes the interpreter (the real
#: one must run), the script that shows the variable's effect, and what it prints.
COLD = {
    "PYTHONPATH": ({"PYTHONPATH": "@LIB@"}, "a module from PYTHONPATH", "42\n"),
    "PYTHONHASHSEED": ({"PYTHONHASHSEED": "123"}, "the hash of a string", None),
    "PYTHONWARNINGS": ({"PYTHONWARNINGS": "error"}, "a warning", ""),
    "MPLBACKEND": ({"MPLBACKEND": "svg"}, "the matplotlib backend", "svg\n"),
}


@pytest.fixture(scope="module")
def zygote() -> Iterator[RunningZygote]:
    """A zygote with the analysis preloaded (matplotlib on Agg, as in a run)."""
    running = start_zygote(["mltoolkit.analysis.preload"])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def shim(zygote: RunningZygote, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_python_shim(tmp_path_factory.mktemp("shim"), zygote.socket_path)


def _zygote_environment(zygote: RunningZygote) -> dict[str, str]:
    environment = psutil.Process(zygote.process.pid).environ()
    environment.pop("MLTOOLKIT_PARENT_PID", None)
    return environment


def _run(script: str, folder: Path, environment: dict[str, str], umask: int = 0o022) -> tuple:
    folder.mkdir(parents=True)
    (folder / "s.py").write_text(script)
    (folder / "lib").mkdir()
    (folder / "lib" / "fidelity_module.py").write_text("VALUE = 42\n")
    environment = {key: value.replace("@LIB@", str(folder / "lib")) for key, value in environment.items()}
    result = subprocess.run(
        ["python", "s.py"],
        cwd=folder,
        env=environment,
        input="some input\n",
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(umask),
    )
    output = folder / "out.txt"
    return (
        result.returncode,
        result.stdout.replace(str(folder), "FOLDER"),
        result.stderr.replace(str(folder), "FOLDER"),
        output.read_text() if output.exists() else None,
    )


def _both(script: str, tmp_path: Path, zygote: RunningZygote, shim: Path, extra: dict[str, str]) -> tuple:
    base = {**_zygote_environment(zygote), **extra}
    real_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    real = _run(script, tmp_path / "real", {**base, "PATH": real_path}, umask=0o027)
    warm = _run(script, tmp_path / "warm", {**base, "PATH": f"{shim}{os.pathsep}{real_path}"}, umask=0o027)
    return real, warm


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_script_ends_the_same_warm_and_in_the_real_interpreter(name, tmp_path, zygote, shim):
    real, warm = _both(SCRIPTS[name], tmp_path, zygote, shim, {})
    if name == "the hash of a string":  # two random seeds: only the shape is comparable
        real, warm = real[:1] + real[2:], warm[:1] + warm[2:]
    assert warm == real


@pytest.mark.parametrize("variable", sorted(COLD))
def test_a_variable_that_shapes_the_interpreter_sends_the_script_to_the_real_one(variable, tmp_path, zygote, shim):
    extra, name, printed = COLD[variable]
    real, warm = _both(SCRIPTS[name], tmp_path, zygote, shim, extra)
    assert warm == real  # with PYTHONHASHSEED fixed, even the hash
    if printed is not None:
        assert warm[1] == printed
    _real, parent = _both("import os\nprint(os.getppid())\n", tmp_path / "where", zygote, shim, extra)
    assert parent[1].strip() != str(zygote.process.pid)


def test_scripts_in_the_zygotes_environment_do_run_warm_with_fresh_random_state(tmp_path, zygote, shim):
    script = "import os, random, numpy\nprint(os.getppid(), random.random(), numpy.random.random())\n"
    first = _both(script, tmp_path / "one", zygote, shim, {})[1][1].split()
    second = _both(script, tmp_path / "two", zygote, shim, {})[1][1].split()
    assert first[0] == second[0] == str(zygote.process.pid)
    assert first[1] != second[1] and first[2] != second[2]


def test_a_steps_own_tags_and_lineage_do_not_send_it_to_the_real_interpreter(tmp_path, zygote, shim):
    # the seed spec's steps each get their own lineage; their scripts must still run warm
    tags = {LINEAGE_ENV: '{"files": {}}', "MLTOOLKIT_STEP_OWNER": "step-1", "MLTOOLKIT_RUN_TOKEN": "run-1"}
    assert set(tags) <= FREE_VARIABLES
    parent = _both("import os\nprint(os.getppid())\n", tmp_path, zygote, shim, tags)[1][1].strip()
    assert parent == str(zygote.process.pid)
