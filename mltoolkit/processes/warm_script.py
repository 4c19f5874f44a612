"""``python SCRIPT ARGS...`` in a forked zygote child, as a fresh interpreter would run it -- or not at all.

A zygote child starts with the zygote's interpreter state: its environment at
start-up, its ``sys.path``, its imported modules, its streams and signal
handlers. :func:`warm_refusal` says whether a script can run there exactly as
``python`` would run it; when it cannot, the ``python`` shim runs the real
interpreter instead (fall back, never guess):

* every environment variable must be as it was when the zygote started, except
  those that cannot have shaped it (:data:`FREE_VARIABLES`: ``PATH``, the
  shell's own, our tags). So a step's ``PYTHONPATH``, ``PYTHONHASHSEED``,
  ``PYTHONWARNINGS``, ``MPLBACKEND``, locale or thread-count variable that
  differs from the zygote's sends it to the real interpreter;
* matplotlib, when the zygote has imported it, must be on the backend a fresh
  import would choose (the preload selects Agg, which is what a fresh import
  chooses from ``MPLBACKEND=agg``, an rc file naming it, or no display).

:func:`run_script` then does what the interpreter does for ``python SCRIPT``:
a fresh ``__main__`` module, ``sys.argv``, ``sys.path[0]`` (the script's real
folder), standard streams for the caller's file descriptors (buffered as a
fresh interpreter buffers them), the default SIGINT handler, reseeded random
generators, the caller's umask; and at the end its shutdown sequence: join
non-daemon threads, run ``atexit`` handlers, flush the streams, clear the
modules' namespaces so unclosed files are flushed and closed, exit with the
script's code (``SystemExit`` rules, 1 after an uncaught exception, SIGINT after
``KeyboardInterrupt``). ``os._exit(n)`` in the script exits the child with ``n``
and the zygote reports that code to the shim.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import gc
import io
import os
import random
import signal
import sys
import threading
import types
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from typing import Any, NoReturn

__all__ = ["FREE_VARIABLES", "ZygoteBaseline", "run_function_as_main", "run_script", "warm_refusal"]

#: Variables a step may set differently from the zygote: read by no interpreter or
#: library at start-up (the shell's bookkeeping, the search path for programs, our tags).
FREE_VARIABLES = frozenset(
    {
        "PATH",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "MLTOOLKIT_STEP_OWNER",
        "MLTOOLKIT_RUN_TOKEN",
        "MLTOOLKIT_PARENT_PID",
        # a step's lineage (mltoolkit.workdir.artifacts.LINEAGE_ENV), read when a pickle is loaded, never at import
        "MLTOOLKIT_LINEAGE",
    }
)
_DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY")


class ZygoteBaseline:
    """What a zygote looked like before anything was preloaded: environment and ``sys.path``."""

    def __init__(self) -> None:
        self.environment = {key: value for key, value in os.environ.items() if key not in FREE_VARIABLES}
        self.modules = set(sys.modules)
        #: ``sys.path[0]`` of the zygote itself (its working folder, for ``python -m``).
        self.path0 = sys.path[0] if sys.path else None

    def after_preload(self) -> None:
        """Record which modules the preload imported (the rest a script imports itself)."""
        self.modules = set(sys.modules)


def _environment_refusal(environment: dict[str, str], baseline: ZygoteBaseline) -> str | None:
    names = (set(environment) | set(baseline.environment)) - FREE_VARIABLES
    changed = sorted(name for name in names if environment.get(name) != baseline.environment.get(name))
    if changed:
        return f"environment differs from the zygote's: {', '.join(changed[:5])}"
    return None


def _fresh_matplotlib_backend(matplotlib: Any, environment: dict[str, str]) -> Any:
    """The backend setting ``import matplotlib`` makes in a fresh interpreter (matplotlib/__init__.py)."""
    return environment.get("MPLBACKEND") or dict.__getitem__(matplotlib.rcParamsOrig, "backend")


def _matplotlib_refusal(environment: dict[str, str]) -> str | None:
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is None:
        return None
    current = str(dict.__getitem__(matplotlib.rcParams, "backend")).lower()
    fresh = _fresh_matplotlib_backend(matplotlib, environment)
    if isinstance(fresh, str):
        return None if fresh.lower() == current else f"a fresh matplotlib would use backend {fresh!r}"
    # the automatic choice: Agg without a display; with one, a GUI toolkit if one imports
    if current == "agg" and not any(environment.get(name) for name in _DISPLAY_VARIABLES):
        return None
    return "a fresh matplotlib would choose its backend for the display"


def warm_refusal(environment: dict[str, str], baseline: ZygoteBaseline) -> str | None:
    """Why a script with ``environment`` cannot run warm in this zygote; ``None`` when it can."""
    return _environment_refusal(environment, baseline) or _matplotlib_refusal(environment)


# --- running the script --------------------------------------------------------------------


def _standard_stream(fd: int, name: str, template: io.TextIOWrapper) -> io.TextIOWrapper:
    """The stream a fresh interpreter makes for ``fd`` (CPython's ``create_stdio``)."""
    writing = fd != 0
    buffered = not template.write_through  # -u and PYTHONUNBUFFERED make every stream write through
    buffering = 0 if writing and not buffered else -1
    stream: Any = open(fd, "wb" if writing else "rb", buffering, closefd=False)  # noqa: SIM115
    raw = stream.raw if buffering else stream
    raw.name = name
    return io.TextIOWrapper(
        stream,
        encoding=template.encoding,
        errors=template.errors,
        newline="\n",
        line_buffering=buffered and (raw.isatty() or fd == 2),
        write_through=not buffered,
    )


def _fresh_process_state(umask: int | None, *, script: bool = True) -> None:
    """Streams, signal handlers, random seeds and umask as a fresh interpreter has them.

    ``script``: also name matplotlib's backend as a fresh import names it (a script may
    look); a main function of ours keeps the preload's explicit Agg, which its own
    warm children (a forked step zygote) must find.
    """
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        stream = _standard_stream(fd, f"<{name}>", getattr(sys, f"__{name}__"))
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    # a forked child shares its parent's generator states; a fresh process seeds from the OS
    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()
    if umask is not None:
        os.umask(umask)
    matplotlib = sys.modules.get("matplotlib")
    if script and matplotlib is not None:  # the same backend (warm_refusal made sure), named as a fresh import names it
        dict.__setitem__(matplotlib.rcParams, "backend", _fresh_matplotlib_backend(matplotlib, dict(os.environ)))


def _main_module(path: str) -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__dict__.update(
        {
            "__builtins__": builtins,
            "__annotations__": {},
            "__loader__": SourceFileLoader("__main__", path),
            "__spec__": None,
            "__file__": path,
            "__cached__": None,
        }
    )
    sys.modules["__main__"] = main
    return main


def _exit_code_of(exit_: SystemExit) -> int:
    """The exit code ``SystemExit`` asks for, printing a message the way the interpreter does."""
    code = exit_.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _run_main(script: str) -> tuple[int, bool]:
    """Run ``script`` as ``__main__``; (exit code, whether it ended with KeyboardInterrupt)."""
    path = os.path.abspath(script)
    main = _main_module(path)
    try:
        with io.open_code(path) as file:
            code = compile(file.read(), path, "exec", dont_inherit=True)
        exec(code, main.__dict__)
    except SystemExit as exit_:
        return _exit_code_of(exit_), False
    except BaseException as error:  # reported as the interpreter reports it, without our frame
        trace = error.__traceback__.tb_next if error.__traceback__ is not None else None
        sys.excepthook(type(error), error.with_traceback(trace), trace)
        return 1, isinstance(error, KeyboardInterrupt)
    finally:
        for name in ("__file__", "__cached__"):  # as PyRun_SimpleFile leaves __main__
            main.__dict__.pop(name, None)
    return 0, False


def _clear_namespace(module: object) -> None:
    """Set a module's globals to ``None``: private names first, as the interpreter does at exit."""
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return
    names = [name for name in namespace if name != "__builtins__"]
    for name in sorted(names, key=lambda name: not (name.startswith("_") and not name.startswith("__"))):
        namespace[name] = None


def _shut_down(preloaded: set[str]) -> None:
    """The interpreter's exit sequence: threads, atexit, streams, module namespaces, open files."""
    threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads, as Py_FinalizeEx does
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # dropping the namespaces of __main__, then of what the script imported, finalises the
    # objects they held; files the script did not close are flushed and closed then
    _clear_namespace(sys.modules.get("__main__"))
    gc.collect()
    for name in [name for name in list(sys.modules) if name not in preloaded]:
        _clear_namespace(sys.modules.get(name))
    gc.collect()
    for found in gc.get_objects():  # still reachable from a preloaded module: flush, as closing would
        if isinstance(found, io.IOBase) and found not in (sys.stdout, sys.stderr):
            try:
                if not found.closed and found.writable():
                    found.flush()
            except Exception:
                pass


def _end_process(code: int, interrupted: bool, preloaded: set[str]) -> NoReturn:
    with contextlib.suppress(BaseException):
        _shut_down(preloaded)
    if interrupted:  # like the interpreter since 3.8: end by SIGINT, so callers see how it ended
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code & 0xFF)


def run_script(argv: list[str], umask: int | None, baseline: ZygoteBaseline) -> NoReturn:
    """Run ``python *argv`` here (a zygote child with the caller's stdio, cwd and environment); exit."""
    script = argv[0]
    sys.argv = list(argv)
    sys.orig_argv = [sys.executable, *argv]
    folder = os.path.dirname(os.path.realpath(script))
    if sys.path and sys.path[0] == baseline.path0:
        sys.path[0] = folder  # the script's folder replaces the zygote's, as in a fresh interpreter
    else:
        sys.path.insert(0, folder)
    _fresh_process_state(umask)
    code, interrupted = _run_main(script)
    _end_process(code, interrupted, baseline.modules)


def _call_main(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> tuple[int, bool]:
    """Call ``function`` as a main program; (exit code, whether it ended with KeyboardInterrupt)."""
    try:
        function(*args, **kwargs)
    except SystemExit as exit_:
        return _exit_code_of(exit_), False
    except BaseException as error:  # reported as the interpreter reports an uncaught error
        sys.excepthook(type(error), error, error.__traceback__)
        return 1, isinstance(error, KeyboardInterrupt)
    return 0, False


def run_function_as_main(
    function: Callable[..., Any],
    call: tuple[list[Any], dict[str, Any]],
    argv: list[str],
    umask: int | None,
    baseline: ZygoteBaseline,
) -> NoReturn:
    """Run ``function(*args, **kwargs)`` as this process's main program, with ``sys.argv`` = ``argv``; exit.

    For a zygote child that has the caller's stdio, cwd and environment: a warm
    command line. The process state is a fresh interpreter's (streams, signal
    handlers, seeds, umask) and its end is an interpreter's shutdown.
    """
    sys.argv = list(argv)
    sys.orig_argv = [sys.executable, *argv]
    _fresh_process_state(umask, script=False)
    code, interrupted = _call_main(function, *call)
    _end_process(code, interrupted, baseline.modules)
