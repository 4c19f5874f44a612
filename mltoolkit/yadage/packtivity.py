"""Phase 5 of the spec loader: run one step (a *packtivity*) and publish its results.

:func:`run_step` is the pure analogue of ``packtivity-run``: it fills the step's
parameters into its command or script, runs it in the step's environment with
its output captured, and evaluates the publisher.

**Interpolation.** ``{name}`` takes a parameter, ``{workdir}`` the step's folder;
Python ``str.format`` syntax as in yadage (``{x[0]}``, ``{n:03d}``, ``{{`` for a
brace); a list becomes its elements separated by spaces.

**Quoting** (where we are deliberately better than yadage, which pastes values into
the shell as they are). With ``StepOptions.quote`` (the default) every value
interpolated into a shell command is quoted for the place it lands in:

* outside quotes: each value (each list element) becomes one shell word
  (``shlex.quote``), so ``a; touch PWNED``, ``$(...)``, backticks, ``>``, quotes,
  newlines and spaces stay literal; glob wildcards (``*``, ``?``, ``[abc]``) stay
  *outside* the quotes so ``{outdir}/*.pkl`` still expands, and ``for c in {list}``
  still iterates over the elements;
* inside ``'...'`` or ``"..."`` of the template: escaped for that quoting, so the
  value stays inside the template's string;
* inside a here-document: ``$``, backticks and backslashes are escaped (nothing for
  a quoted ``<<'EOF'``), and a value that contains the terminator line is refused.

``quote=False`` reproduces yadage's raw pasting (callers should warn loudly).
Scripts whose ``interpreter`` is not a POSIX shell (``python``...) get raw values:
quoting is a shell notion.

**Processes.** ``string-interpolated-cmd`` runs ``sh -c CMD``;
``interpreted-script-cmd`` writes the script to ``<workdir>/_packtivity/<name>.script``
(``.py`` for Python) and runs ``INTERPRETER SCRIPT`` (yadage's local backend cannot
run scripts at all). Both run in the step's folder, in a new session (a timeout kills
the whole process group). Output (stdout and stderr, interleaved) goes to
``<workdir>/_packtivity/<name>.run.log`` and, line by line, to ``on_output``; the
final command text is kept in ``<workdir>/_packtivity/<name>.command``.

**Environments.** ``localproc-env`` runs on this machine; ``noop-env`` runs
nothing and only publishes; ``docker-encapsulated`` runs ``docker run`` when a
Docker engine answers (probed once) and otherwise looks the image up in the
*image map*: ``local`` runs the command here as is (optionally with
``/container/path=/host/path`` mounts applied as path rewrites); ``toolkit``
(built in for ``danikam/sklearn``, the seed's image) maps ``/fun_with_ml`` onto
``mltoolkit/analysis/fun_with_ml`` and puts a ``python`` on ``PATH`` that is this
interpreter (or the warm zygote). An image with neither is an
:class:`EnvironmentUnavailableError` naming both fixes.

**Publishers.** ``interpolated-pub`` (``glob`` -> sorted matches when any,
``relative_paths`` -> joined to the workdir), ``frompar-pub``, ``fromglob-pub``
(sorted), ``fromyaml-pub``, ``constant-pub``, ``fromparjq-pub``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob as globbing
import json
import os
import re
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.errors import CommandLineError, EnvironmentUnavailableError, SpecError, StepFailedError
from mltoolkit.yadage.model import (
    ConstantPub,
    DockerEncapsulatedEnv,
    FromGlobPub,
    FromParJqPub,
    FromParPub,
    FromYamlPub,
    InterpolatedPub,
    NoopEnv,
    StepSpec,
    StringInterpolatedCmd,
)
from mltoolkit.yadage.selectors import run_jq

__all__ = [
    "DEFAULT_IMAGE_MAP",
    "TOOLKIT_MOUNT",
    "TOOLKIT_SCRIPTS_DIR",
    "EnvironmentUnavailableError",
    "ImageMapping",
    "StepOptions",
    "StepResult",
    "docker_available",
    "docker_command",
    "interpolate",
    "is_shell",
    "lookup_image",
    "parse_image_map",
    "publish",
    "quote_keep_globs",
    "run_step",
]

#: Folder of this toolkit's step scripts (what ``/fun_with_ml`` maps to).
TOOLKIT_SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "analysis" / "fun_with_ml"
#: The container path the seed's image keeps its scripts in.
TOOLKIT_MOUNT = "/fun_with_ml"

_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh"}
_TAIL_LINES = 5


@dataclass(frozen=True)
class ImageMapping:
    """How to run a Docker image's steps without Docker.

    Attributes:
        kind: ``"local"`` (run as is) or ``"toolkit"`` (this toolkit's scripts and Python).
        mounts: ``(container_path, host_path)`` pairs applied as path rewrites, the
            way a bind mount would make them visible.
    """

    kind: str = "local"
    mounts: tuple[tuple[str, str], ...] = ()

    @property
    def python_shim(self) -> bool:
        """True when ``python`` on the step's PATH must be this toolkit's interpreter."""
        return self.kind == "toolkit"


TOOLKIT_MAPPING = ImageMapping("toolkit", ((TOOLKIT_MOUNT, str(TOOLKIT_SCRIPTS_DIR)),))
#: Built-in entries: the seed's image runs with this toolkit's scripts.
DEFAULT_IMAGE_MAP: dict[str, ImageMapping] = {"danikam/sklearn": TOOLKIT_MAPPING}


@dataclass
class StepOptions:
    """How to run steps.

    Attributes:
        quote: shell-quote interpolated values (``False``: yadage's raw pasting).
        image_map: image (``name`` for any tag, or ``name:tag``) -> local environment.
        zygote_socket: warm Python server for the ``toolkit`` environment's ``python``.
        timeout: seconds before the step's process group is killed (``None``: no limit).
        extra_env: variables added to every step's environment.
        use_docker: ``True`` always Docker, ``False`` never, ``None`` when an engine answers.
        shared_dirs: folders mounted into Docker containers (e.g. the run's WORKDIR, so
            steps see upstream files); the step's own folder is always mounted.
    """

    quote: bool = True
    image_map: dict[str, ImageMapping] = field(default_factory=lambda: dict(DEFAULT_IMAGE_MAP))
    zygote_socket: str | None = None
    timeout: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    use_docker: bool | None = None
    shared_dirs: tuple[str, ...] = ()


@dataclass
class StepResult:
    """What running a step produced."""

    published: Any
    exit_code: int | None
    log_path: Path | None
    command: str
    environment: str
    duration: float = 0.0


# --- image map -----------------------------------------------------------------------------


def _parse_mounts(text: str, *, base: Path, where: str) -> tuple[tuple[str, str], ...]:
    mounts: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        container, separator, host = item.partition("=")
        if not separator or not container.startswith("/") or not host:
            raise CommandLineError(
                f"{where}: mount {item!r} must be /container/path=/host/path, e.g. local:/fun_with_ml=./scripts"
            )
        host_path = Path(host).expanduser()
        if not host_path.is_absolute():
            host_path = base / host_path
        mounts.append((container.rstrip("/") or "/", str(host_path.resolve())))
    return tuple(mounts)


def _mapping_from_text(text: str, *, base: Path, where: str) -> ImageMapping:
    kind, _, mounts = text.strip().partition(":")
    if kind == "toolkit":
        extra = _parse_mounts(mounts, base=base, where=where) if mounts else ()
        overridden = {container for container, _host in extra}
        kept = tuple(mount for mount in TOOLKIT_MAPPING.mounts if mount[0] not in overridden)
        return ImageMapping("toolkit", kept + extra)
    if kind == "local":
        return ImageMapping("local", _parse_mounts(mounts, base=base, where=where) if mounts else ())
    raise CommandLineError(
        f"{where}: unknown environment {kind!r}; expected 'local', 'local:/container=/host,...' or 'toolkit'"
    )


def parse_image_map(
    entries: Iterable[str] = (),
    file: str | os.PathLike[str] | None = None,
    *,
    defaults: bool = True,
) -> dict[str, ImageMapping]:
    """Build an image map from ``IMAGE=ENV`` entries and/or a YAML file.

    ``ENV`` is ``local``, ``local:/container/path=/host/path[,...]`` or ``toolkit``.
    The file maps images to such strings, or to ``{kind: local, mounts:
    {/container: /host}}``; relative host paths resolve against the file's folder
    (the current directory for entries). Entries override the file, which overrides
    the built-in entries (``defaults``).

    Raises:
        CommandLineError: a malformed entry or file.
    """
    mapping: dict[str, ImageMapping] = dict(DEFAULT_IMAGE_MAP) if defaults else {}
    if file is not None:
        from mltoolkit.yamlfiles import read_yaml

        path = Path(file)
        data = read_yaml(path, what="image map file", error=CommandLineError)
        if not isinstance(data, dict):
            raise CommandLineError(
                f"image map file {path}: found {type(data).__name__}, expected a mapping IMAGE: local|toolkit"
            )
        for image, value in data.items():
            where = f"image map file {path}, image {image!r}"
            if isinstance(value, str):
                mapping[str(image)] = _mapping_from_text(value, base=path.parent.resolve(), where=where)
            elif isinstance(value, dict) and set(value) <= {"kind", "mounts"}:
                mounts = value.get("mounts") or {}
                if not isinstance(mounts, dict):
                    raise CommandLineError(f"{where}: mounts must map /container/path to /host/path")
                text = ",".join(f"{container}={host}" for container, host in mounts.items())
                mapping[str(image)] = _mapping_from_text(
                    f"{value.get('kind', 'local')}:{text}" if text else str(value.get("kind", "local")),
                    base=path.parent.resolve(),
                    where=where,
                )
            else:
                raise CommandLineError(
                    f"{where}: found {value!r}, expected 'local', 'toolkit' or {{kind: local, mounts: {{...}}}}"
                )
    for entry in entries:
        image, separator, value = entry.partition("=")
        if not separator or not image.strip() or not value.strip():
            raise CommandLineError(
                f"--image-map {entry!r}: expected IMAGE=local (or IMAGE=local:/container=/host, IMAGE=toolkit)"
            )
        mapping[image.strip()] = _mapping_from_text(value, base=Path.cwd(), where=f"--image-map {entry!r}")
    return mapping


def lookup_image(image: str, image_map: Mapping[str, ImageMapping]) -> ImageMapping | None:
    """The entry for ``image`` (``name:tag``): an exact ``name:tag`` entry, else one for ``name``."""
    if image in image_map:
        return image_map[image]
    name = image
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name = image[: len(image) - len(last)] + last.split(":", 1)[0]
    if name in image_map:
        return image_map[name]
    for prefix in ("docker.io/", "docker.io/library/"):
        if name.startswith(prefix) and name[len(prefix) :] in image_map:
            return image_map[name[len(prefix) :]]
    return None


_docker_lock = threading.Lock()
_docker_answer: bool | None = None


def docker_available(*, refresh: bool = False) -> bool:
    """True when ``docker info`` succeeds (asked once per process unless ``refresh``)."""
    global _docker_answer
    with _docker_lock:
        if _docker_answer is None or refresh:
            executable = shutil.which("docker")
            if executable is None:
                _docker_answer = False
            else:
                try:
                    probe = subprocess.run(
                        [executable, "info"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=15,
                    )
                    _docker_answer = probe.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    _docker_answer = False
        return _docker_answer


# --- interpolation -------------------------------------------------------------------------

_BRACKET = re.compile(r"\[[!^]?[A-Za-z0-9_.,:+@%=\-]+\]")


def quote_keep_globs(text: str) -> str:
    """Shell-quote ``text`` as one word, leaving glob wildcards (``*``, ``?``, ``[a-z]``) active.

    A value naming an existing file is quoted whole: it is that file, not a pattern
    (an input file may well be called ``*; x``).
    """
    if any(char in text for char in "*?[") and len(text) < 4096 and os.path.lexists(text):
        return shlex.quote(text)
    pieces: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            pieces.append(shlex.quote("".join(literal)))
            literal.clear()

    index = 0
    while index < len(text):
        char = text[index]
        if char in "*?":
            flush()
            pieces.append(char)
            index += 1
            continue
        if char == "[":
            match = _BRACKET.match(text, index)
            if match:
                flush()
                pieces.append(match.group())
                index = match.end()
                continue
        literal.append(char)
        index += 1
    flush()
    return "".join(pieces) or "''"


def is_shell(interpreter: str) -> bool:
    """True when ``interpreter`` (``sh``, ``/bin/bash -e``...) is a POSIX shell."""
    try:
        words = shlex.split(interpreter)
    except ValueError:
        words = interpreter.split()
    return bool(words) and os.path.basename(words[0]) in _SHELLS


class _ShellScanner:
    """Tracks the quoting context of shell text, so values can be quoted for where they land.

    A stack of frames: ``none`` (plain shell words, also inside ``$(...)`` and
    backticks), ``single``/``double`` quotes, and ``comment``; plus here-document
    bodies. When unsure it errs towards ``none``, whose quoting is always safe.
    """

    _HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|(\\?)([A-Za-z0-9_.\-]+))")
    _WORD_BREAK = set(" \t\n;&|()<>")

    def __init__(self) -> None:
        # frames: [mode, paren_depth]; modes: none, subshell, backtick, single, double, comment
        self.frames: list[list[Any]] = [["none", 0]]
        self.escape = False
        self.previous = "\n"
        self.line = ""
        self.heredoc_starts: list[int] = []
        self.pending: list[tuple[str, bool, bool]] = []  # (delimiter, quoted, strip_tabs)
        self.heredoc: tuple[str, bool, bool] | None = None

    @property
    def mode(self) -> str:
        if self.heredoc is not None:
            return "heredoc"
        mode = self.frames[-1][0]
        return "none" if mode in ("none", "subshell", "backtick", "comment") else mode

    def feed(self, text: str) -> None:
        for char in text:
            self._feed_char(char)

    def feed_inserted(self, text: str) -> None:
        """Account for inserted text where it matters (here-document lines)."""
        if self.heredoc is not None:
            for char in text:
                self._heredoc_char(char)

    def _heredoc_char(self, char: str) -> None:
        if char == "\n":
            delimiter, _quoted, strip = self.heredoc  # type: ignore[misc]
            line = self.line.lstrip("\t") if strip else self.line
            self.line = ""
            if line == delimiter:
                self.heredoc = self.pending.pop(0) if self.pending else None
        else:
            self.line += char

    def _feed_char(self, char: str) -> None:
        if self.heredoc is not None:
            self._heredoc_char(char)
            return
        frame = self.frames[-1]
        mode = frame[0]
        previous, self.previous = self.previous, char
        if char == "\n" and len(self.frames) == 1 and not self.escape:
            self._end_line()
            return
        if char == "\n" and mode == "comment":
            self.frames.pop()
            if len(self.frames) == 1:
                self._end_line()
            return
        self.line += char
        if self.escape:
            self.escape = False
            return
        if mode == "comment":
            return
        if mode == "single":
            if char == "'":
                self.frames.pop()
            return
        if mode == "double":
            if char == "\\":
                self.escape = True
            elif char == '"':
                self.frames.pop()
            elif char == "(" and previous == "$":
                self.frames.append(["subshell", 0])
            elif char == "`":
                self.frames.append(["backtick", 0])
            return
        # none, subshell, backtick
        if char == "\\":
            self.escape = True
        elif char == "'":
            self.frames.append(["single", 0])
        elif char == '"':
            self.frames.append(["double", 0])
        elif char == "#" and previous in self._WORD_BREAK:
            self.frames.append(["comment", 0])
        elif char == "`":
            if mode == "backtick":
                self.frames.pop()
            else:
                self.frames.append(["backtick", 0])
        elif char == "(":
            if previous == "$":
                self.frames.append(["subshell", 0])
            elif mode == "subshell":
                frame[1] += 1
        elif char == ")" and mode == "subshell":
            if frame[1]:
                frame[1] -= 1
            else:
                self.frames.pop()
        elif char == "<" and previous == "<" and len(self.frames) == 1:
            start = len(self.line) - 2
            if not (start > 0 and self.line[start - 1] == "<"):
                self.heredoc_starts.append(start)

    def _end_line(self) -> None:
        for start in self.heredoc_starts:
            match = self._HEREDOC.match(self.line, start)
            if match is None or self.line[start : start + 3] == "<<<":
                continue
            strip, single, double, backslash, bare = match.groups()
            delimiter = single if single is not None else double if double is not None else bare
            quoted = single is not None or double is not None or bool(backslash)
            self.pending.append((delimiter, quoted, bool(strip)))
        self.heredoc_starts = []
        self.line = ""
        self.escape = False
        if self.pending:
            self.heredoc = self.pending.pop(0)

    def quote(self, value: Any, *, where: str) -> str:
        """Text that makes ``value`` literal at the current position."""
        words = [str(item) for item in value] if isinstance(value, list) else None
        text = " ".join(words) if words is not None else str(value)
        mode = self.mode
        if mode == "none":
            if words is not None:
                return " ".join(quote_keep_globs(word) for word in words)
            return quote_keep_globs(text)
        # Close the template's quote, add the value as its own quoted piece, reopen: if the
        # scanner misread the context, this still yields a literal (never a command).
        if mode == "single":
            return "'\"" + re.sub(r'([\\"$`])', r"\\\1", text) + "\"'"
        if mode == "double":
            return '"' + shlex.quote(text) + '"'
        delimiter, quoted, strip = self.heredoc  # type: ignore[misc]
        for line in text.split("\n"):
            if (line.lstrip("\t") if strip else line) == delimiter:
                raise SpecError(
                    f"{where}: a value contains the line {delimiter!r}, which would end the here-document "
                    "early and run the rest as commands; change the value"
                )
        return text if quoted else re.sub(r"([\\$`])", r"\\\1", text)


def _raw_text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def interpolate(
    template: str,
    parameters: Mapping[str, Any],
    *,
    workdir: str | os.PathLike[str] | None = None,
    quote: bool = True,
    shell: bool = True,
    where: str = "step",
) -> str:
    """Fill ``{name}`` placeholders of ``template`` (Python ``str.format`` syntax).

    With ``quote`` and ``shell`` every value is quoted for the shell context it
    lands in (see the module docs); lists become space-separated words.

    Raises:
        SpecError: a placeholder names no parameter, or the template's braces are malformed.
    """
    namespace = dict(parameters)
    if workdir is not None:
        namespace.setdefault("workdir", str(workdir))
    formatter = string.Formatter()
    scanner = _ShellScanner() if quote and shell else None
    pieces: list[str] = []
    try:
        parsed = list(formatter.parse(template))
    except ValueError as error:
        raise SpecError(
            f"{where}: the command template has malformed braces ({error}); write literal braces "
            "as {{ and }} (yadage fills templates with Python str.format)"
        ) from None
    for literal, field_name, format_spec, conversion in parsed:
        pieces.append(literal)
        if scanner is not None:
            scanner.feed(literal)
        if field_name is None:
            continue
        try:
            value, _ = formatter.get_field(field_name, (), namespace)
        except (KeyError, IndexError, AttributeError):
            known = ", ".join(sorted(namespace)) or "none"
            raise SpecError(
                f"{where}: the template uses {{{field_name}}} but the step has no such parameter "
                f"(parameters: {known}); add the parameter or write literal braces as {{{{ }}}}"
            ) from None
        if conversion:
            value = formatter.convert_field(value, conversion)
        if format_spec:
            try:
                value = formatter.format_field(value, format_spec)
            except (ValueError, TypeError) as error:
                raise SpecError(f"{where}: cannot format {{{field_name}:{format_spec}}} ({error})") from None
        if scanner is not None:
            inserted = scanner.quote(value, where=where)
            scanner.feed_inserted(inserted)
            pieces.append(inserted)
        else:
            pieces.append(_raw_text(value))
    return "".join(pieces)


# --- mounts as path rewrites ---------------------------------------------------------------


def _mount_pattern(container: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.\-/])" + re.escape(container.rstrip("/")) + r"(?=/|$|[^\w.\-])")


def _rewrite_text(text: str, mounts: Iterable[tuple[str, str]], *, shell: bool) -> str:
    for container, host in mounts:
        replacement = shlex.quote(host) if shell else host
        text = _mount_pattern(container).sub(lambda _match: replacement, text)
    return text


def _rewrite_values(value: Any, mounts: tuple[tuple[str, str], ...]) -> Any:
    if isinstance(value, str):
        for container, host in mounts:
            base = container.rstrip("/")
            if value == base or value.startswith(base + "/"):
                return host + value[len(base) :]
        return value
    if isinstance(value, list):
        return [_rewrite_values(item, mounts) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite_values(item, mounts) for key, item in value.items()}
    return value


# --- python on PATH ------------------------------------------------------------------------

_shim_lock = threading.Lock()
_shim_dirs: dict[str | None, str] = {}


def _python_shim_dir(zygote_socket: str | None) -> str:
    with _shim_lock:
        if zygote_socket not in _shim_dirs:
            folder = tempfile.mkdtemp(prefix="mltk-python-")
            atexit.register(shutil.rmtree, folder, True)
            if zygote_socket:
                from mltoolkit.processes.zygote import write_python_shim

                write_python_shim(folder, zygote_socket)
            else:
                for name in ("python", "python3"):
                    shim = Path(folder) / name
                    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
                    shim.chmod(0o755)
            _shim_dirs[zygote_socket] = folder
        return _shim_dirs[zygote_socket]


# --- running -------------------------------------------------------------------------------


def docker_command(
    image: str,
    argv: list[str],
    *,
    workdir: Path,
    container_workdir: str | None = None,
    shared_dirs: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    extra_mounts: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """The ``docker run`` command line for a step (folders mounted at their own paths)."""
    command = ["docker", "run", "--rm", "-i"]
    if hasattr(os, "getuid"):
        command += ["--user", f"{os.getuid()}:{os.getgid()}"]
    mounted: list[str] = []
    for folder in [str(workdir), *shared_dirs]:
        if folder not in mounted:
            mounted.append(folder)
            command += ["-v", f"{folder}:{folder}"]
    for host, container in extra_mounts:
        command += ["-v", f"{host}:{container}:ro"]
    command += ["-w", container_workdir or str(workdir)]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    return command + [image, *argv]


def _stream(
    process: subprocess.Popen,
    log_path: Path,
    on_output: Callable[[str], None] | None,
    tail: list[str],
) -> None:
    callback_failed = False
    with open(log_path, "ab") as log:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            log.write(raw)
            log.flush()
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(line)
            if len(tail) > 200:
                del tail[:100]
            if on_output is not None and not callback_failed:
                try:
                    on_output(line)
                except Exception as error:  # a logging problem must not fail the analysis
                    callback_failed = True
                    log.write(f"[mltoolkit] output callback failed, no longer called: {error!r}\n".encode())


def _kill_group(process: subprocess.Popen) -> None:
    for signum, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=grace)
            # children may outlive the leader; make sure the whole group is gone
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


def _execute(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout: float | None,
    on_output: Callable[[str], None] | None,
    label: str,
) -> int:
    tail: list[str] = []
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        raise StepFailedError(
            f"{label}: cannot start {argv[0]!r} ({error.strerror}); install it or fix the interpreter"
        ) from None
    reader = threading.Thread(target=_stream, args=(process, log_path, on_output, tail), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        reader.join(timeout=5)
        raise StepFailedError(
            f"{label}: timed out after {timeout:g} s and was killed (log: {log_path}); "
            f"last output: {_tail_text(tail)}; raise the timeout or check the step"
        ) from None
    except BaseException:
        _kill_group(process)
        raise
    reader.join(timeout=30)
    if code != 0:
        raise StepFailedError(
            f"{label}: command exited with code {code} (log: {log_path}); last output: {_tail_text(tail)}"
        )
    return code


def _tail_text(lines: list[str]) -> str:
    useful = [line.strip() for line in lines if line.strip()][-_TAIL_LINES:]
    text = " | ".join(useful) or "(none)"
    return text if len(text) <= 600 else "..." + text[-597:]


def _par_mount_files(
    environment: DockerEncapsulatedEnv, parameters: Mapping[str, Any], folder: Path, name: str, label: str
) -> list[tuple[str, str]]:
    mounts: list[tuple[str, str]] = []
    for index, mount in enumerate(environment.par_mounts):
        try:
            value = run_jq(mount.jqscript, dict(parameters))
        except ValueError as error:
            raise SpecError(f"{label}: par_mounts[{index}]: {error}") from None
        path = folder / f"{name}.parmount{index}"
        path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
        mounts.append((str(path), mount.mountpath))
    return mounts


def run_step(
    step: StepSpec,
    parameters: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    options: StepOptions | None = None,
    name: str | None = None,
    stage: str | None = None,
    on_output: Callable[[str], None] | None = None,
) -> StepResult:
    """Run one step in ``workdir`` and return what it published.

    Args:
        step: the validated step spec.
        parameters: resolved parameters (``{workdir}`` already filled in by the planner).
        workdir: the step's folder (created if missing).
        options: quoting, image map, zygote, timeout, extra environment, Docker use.
        name: the step's name (``classification_0``) for files and messages.
        stage: the stage name, for messages.
        on_output: called with each line of output as it appears.

    Raises:
        StepFailedError: the process could not start, exited non-zero or timed out;
            one line naming the step, exit code, log file and last output lines.
        EnvironmentUnavailableError: a Docker image with no engine and no image-map entry.
        SpecError: the template names an unknown parameter, a publisher finds no file, ...
    """
    options = options or StepOptions()
    folder = Path(workdir).resolve()
    name = name or folder.name
    label = f"stage {stage!r} step {name}" if stage else f"step {name}"
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    process = step.process
    environment = step.environment
    shell_script = isinstance(process, StringInterpolatedCmd) or is_shell(process.interpreter)
    template = process.cmd if isinstance(process, StringInterpolatedCmd) else process.script

    kind = "local"
    mapping: ImageMapping | None = None
    values: Mapping[str, Any] = parameters
    if isinstance(environment, NoopEnv):
        kind = "noop"
    elif isinstance(environment, DockerEncapsulatedEnv):
        image = environment.full_image
        use_docker = options.use_docker if options.use_docker is not None else docker_available()
        if use_docker:
            kind = "docker"
        else:
            mapping = lookup_image(image, options.image_map)
            if mapping is None:
                raise EnvironmentUnavailableError(
                    f"{label}: image {image!r} has no image-map entry and no Docker engine answers; "
                    f"run it on this machine with --image-map {environment.image}=local (or "
                    f"local:/container/path=/host/path), or install and start Docker"
                )
            kind = mapping.kind

    private = folder / "_packtivity"
    par_mounts: list[tuple[str, str]] = []
    if isinstance(environment, DockerEncapsulatedEnv) and environment.par_mounts and kind != "noop":
        private.mkdir(exist_ok=True)
        par_mounts = _par_mount_files(environment, parameters, private, name, label)
    if mapping is not None:
        mounts = mapping.mounts + tuple((container, host) for host, container in par_mounts)
        template = _rewrite_text(template, mounts, shell=shell_script)
        values = _rewrite_values(dict(parameters), mounts)

    text = interpolate(template, values, workdir=folder, quote=options.quote, shell=shell_script, where=label)

    if kind == "noop":
        published = publish(step.publisher, parameters, folder, where=label)
        return StepResult(published, None, None, text, kind, time.monotonic() - started)

    private.mkdir(exist_ok=True)
    log_path = private / f"{name}.run.log"
    log_path.write_bytes(b"")
    env = dict(os.environ)
    env.update(options.extra_env)
    if isinstance(environment, DockerEncapsulatedEnv):
        env.update({key: str(value) for key, value in environment.env.items()})
    if mapping is not None and mapping.python_shim:
        env["PATH"] = _python_shim_dir(options.zygote_socket) + os.pathsep + env.get("PATH", "")
    elif shutil.which("python", path=env.get("PATH")) is None:
        # a spec's `python` must work even where only python3 is installed
        env["PATH"] = env.get("PATH", "") + os.pathsep + _python_shim_dir(None)

    envscript = environment.envscript if isinstance(environment, DockerEncapsulatedEnv) else ""
    if mapping is not None and envscript:
        envscript = _rewrite_values(envscript, mapping.mounts)
    if isinstance(process, StringInterpolatedCmd):
        command_file = private / f"{name}.command"
        command_file.write_text(text + "\n", encoding="utf-8")
        shell_text = f". {shlex.quote(envscript)} && {text}" if envscript else text
        argv = ["sh", "-c", shell_text]
    else:
        suffix = ".py" if os.path.basename(shlex.split(process.interpreter)[0]).startswith("python") else ".script"
        script_file = private / f"{name}{suffix}"
        script_file.write_text(text, encoding="utf-8")
        (private / f"{name}.command").write_text(f"{process.interpreter} {script_file}\n", encoding="utf-8")
        interpreter = shlex.split(process.interpreter)
        argv = [*interpreter, str(script_file)]
        if envscript:
            argv = ["sh", "-c", f". {shlex.quote(envscript)} && exec {shlex.join(argv)}"]

    if kind == "docker":
        assert isinstance(environment, DockerEncapsulatedEnv)
        argv = docker_command(
            environment.full_image,
            argv,
            workdir=folder,
            container_workdir=environment.workdir,
            shared_dirs=options.shared_dirs,
            env={**options.extra_env, **{k: str(v) for k, v in environment.env.items()}},
            extra_mounts=par_mounts,
        )
        cwd = folder
    else:
        cwd = folder
        if mapping is not None and environment.workdir:  # type: ignore[union-attr]
            cwd = Path(_rewrite_values(environment.workdir, mapping.mounts))  # type: ignore[union-attr]

    code = _execute(
        argv, cwd=cwd, env=env, log_path=log_path, timeout=options.timeout, on_output=on_output, label=label
    )
    published = publish(step.publisher, parameters, folder, where=label)
    return StepResult(published, code, log_path, text, kind, time.monotonic() - started)


# --- publishers ----------------------------------------------------------------------------


def _leaves(value: Any, transform: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return transform(value)
    if isinstance(value, list):
        return [_leaves(item, transform) for item in value]
    if isinstance(value, dict):
        return {key: _leaves(item, transform) for key, item in value.items()}
    return value


def _glob(pattern: str) -> list[str]:
    return sorted(globbing.glob(pattern, recursive=True))


def publish(
    publisher: Any,
    parameters: Mapping[str, Any],
    workdir: str | os.PathLike[str],
    *,
    where: str = "step",
) -> Any:
    """Evaluate a step's publisher after it ran in ``workdir``.

    Raises:
        SpecError: a parameter or file the publisher needs is missing.
    """
    folder = str(Path(workdir).resolve())
    if isinstance(publisher, ConstantPub):
        return json.loads(json.dumps(publisher.publish))
    if isinstance(publisher, FromParPub):

        def pick(key: str) -> Any:
            if key not in parameters:
                raise SpecError(
                    f"{where}: frompar-pub outputmap names parameter {key!r}, which the step does not "
                    f"have (parameters: {', '.join(parameters) or 'none'})"
                )
            return parameters[key]

        return _leaves(publisher.outputmap, pick)
    if isinstance(publisher, InterpolatedPub):
        namespace = dict(parameters)
        namespace.setdefault("workdir", folder)

        def fill(template: str) -> Any:
            try:
                value = template.format(**namespace)
            except (KeyError, IndexError) as error:
                raise SpecError(
                    f"{where}: interpolated-pub value {template!r} uses {{{error.args[0]}}}, which is not a "
                    f"parameter (parameters: {', '.join(parameters) or 'none'})"
                ) from None
            except ValueError as error:
                raise SpecError(f"{where}: interpolated-pub value {template!r}: {error}") from None
            candidate = value
            if publisher.relative_paths and not os.path.isabs(value):
                candidate = os.path.join(folder, value)
            if publisher.glob:
                # as packtivity: the matches, or the value as written when nothing matches
                return _glob(candidate) or value
            return candidate

        return _leaves(publisher.publish, fill)
    if isinstance(publisher, FromGlobPub):
        return {publisher.outputkey: _glob(os.path.join(folder, publisher.globexpression))}
    if isinstance(publisher, FromYamlPub):
        from mltoolkit.yamlfiles import read_yaml

        return read_yaml(os.path.join(folder, publisher.yamlfile), what=f"{where}: fromyaml-pub file", error=SpecError)
    if isinstance(publisher, FromParJqPub):
        try:
            result = run_jq(publisher.script, json.loads(json.dumps(dict(parameters))))
        except ValueError as error:
            raise SpecError(f"{where}: fromparjq-pub: {error}") from None

        def locate(value: str) -> Any:
            candidate = value
            if publisher.relative_paths and not os.path.isabs(candidate):
                candidate = os.path.join(folder, candidate)
            if publisher.tryExact and os.path.exists(candidate):
                return candidate
            if publisher.glob:
                matches = _glob(candidate)
                if matches:
                    return matches
            return value

        return _leaves(result, locate)
    raise SpecError(f"{where}: unknown publisher {type(publisher).__name__}")  # pragma: no cover
