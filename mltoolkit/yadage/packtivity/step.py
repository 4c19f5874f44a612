"""Running one step: choose its environment, apply its resources, fill its template, start it, publish."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.errors import EnvironmentUnavailableError, HumanStepError, SpecError
from mltoolkit.workdir.layout import inside_workdir, step_private_dir
from mltoolkit.yadage.model import (
    DockerEncapsulatedEnv,
    EnvironmentSpec,
    InterpolatedScriptCmd,
    NoopEnv,
    StepSpec,
    StringInterpolatedCmd,
)
from mltoolkit.yadage.packtivity.environments import (
    DEFAULT_IMAGE_MAP,
    ImageMapping,
    docker_available,
    docker_command,
    lookup_image,
    python_shim_dir,
    rewrite_text,
    rewrite_values,
)
from mltoolkit.yadage.packtivity.execute import execute
from mltoolkit.yadage.packtivity.interpolate import interpolate
from mltoolkit.yadage.packtivity.publishers import publish
from mltoolkit.yadage.packtivity.resources import StepResources, limit_memory, plan_limits, resource_environment
from mltoolkit.yadage.packtivity.shell import is_shell
from mltoolkit.yadage.selectors import run_jq

if TYPE_CHECKING:
    from mltoolkit.yadage.packtivity.stub import StubPlan

__all__ = ["StepOptions", "StepResult", "run_step"]


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
        provided: resources this machine provides (``--provide NAME=VALUE``): name -> value.
        memory_limit: bytes a step's processes may use (``None``: no limit); set per step
            from its environment's resources (``kubernetes_memory_limit``), for a container
            as ``docker run --memory``.
        stub: run every step as a stub (:mod:`~mltoolkit.yadage.packtivity.stub`) instead.
    """

    quote: bool = True
    image_map: dict[str, ImageMapping] = field(default_factory=lambda: dict(DEFAULT_IMAGE_MAP))
    zygote_socket: str | None = None
    timeout: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    use_docker: bool | None = None
    shared_dirs: tuple[str, ...] = ()
    provided: dict[str, str] = field(default_factory=dict)
    memory_limit: int | None = None
    stub: StubPlan | None = None


@dataclass
class StepResult:
    """What running a step produced (``resources``: its resources record, ``None`` when it asked for none)."""

    published: Any
    exit_code: int | None
    log_path: Path | None
    command: str
    environment: str
    duration: float = 0.0
    resources: dict[str, Any] | None = None


@dataclass
class _Run:
    """One step run in the making: what the named phases of :func:`run_step` hand each other."""

    step: StepSpec
    parameters: Mapping[str, Any]
    folder: Path
    name: str
    label: str
    options: StepOptions
    kind: str = "local"
    mapping: ImageMapping | None = None
    par_mounts: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    resources: StepResources | None = None
    resource_env: dict[str, str] = field(default_factory=dict)

    @property
    def private(self) -> Path:
        return step_private_dir(self.folder)

    def private_file(self, suffix: str) -> Path:
        """``<step folder>/_packtivity/<name><suffix>``, created as a folder first; never outside the step's folder.

        A link planted in place of the folder or the file (by an earlier step, or a
        name with ``..``) would otherwise make the runner write elsewhere.
        """
        private = inside_workdir(self.folder, self.private, what=f"{self.label}: private folder")
        private.mkdir(exist_ok=True)
        return inside_workdir(private, private / f"{self.name}{suffix}", what=f"{self.label}: private file")

    @property
    def process(self) -> StringInterpolatedCmd | InterpolatedScriptCmd:
        """The step's process (validation has turned away every other kind)."""
        process = self.step.process
        if not isinstance(process, (StringInterpolatedCmd, InterpolatedScriptCmd)):
            raise SpecError(f"{self.label}: process {type(process).__name__} cannot run")  # pragma: no cover
        return process

    @property
    def docker_env(self) -> DockerEncapsulatedEnv | None:
        environment = self.step.environment
        return environment if isinstance(environment, DockerEncapsulatedEnv) else None


def _choose_environment(run: _Run) -> None:
    """Set ``run.kind`` (publish-only, noop, local, docker, or an image map's kind) and ``run.mapping``."""
    if run.step.publish_only:
        run.kind = "publish-only"
        return
    if isinstance(run.step.environment, NoopEnv):
        run.kind = "noop"
        return
    environment = run.docker_env
    if environment is None:
        return
    use_docker = run.options.use_docker if run.options.use_docker is not None else docker_available()
    if use_docker:
        run.kind = "docker"
        return
    image = environment.full_image
    run.mapping = lookup_image(image, run.options.image_map)
    if run.mapping is None:
        raise EnvironmentUnavailableError(
            f"{run.label}: image {image!r} has no image-map entry and no Docker engine answers; "
            f"run it on this machine with --image-map {environment.image}=local (or "
            f"local:/container/path=/host/path), or install and start Docker"
        )
    run.kind = run.mapping.kind


def _apply_resources(run: _Run) -> None:
    """Check the environment's requirements and set the step's own timeout and memory limit.

    Raises:
        EnvironmentUnavailableError: a requirement nothing provides.
    """
    environment = run.step.environment
    if not isinstance(environment, EnvironmentSpec) or not environment.resources:
        return
    request = environment.request
    image = run.docker_env.full_image if run.docker_env is not None else None
    record, env, mounts = resource_environment(
        request, provided=run.options.provided, mapping=run.mapping, image=image, label=run.label
    )
    timeout, memory = plan_limits(request, record, kind=run.kind, run_timeout=run.options.timeout)
    run.options = dataclasses.replace(run.options, timeout=timeout, memory_limit=memory)
    run.resources, run.resource_env = record, env
    # mounted like parameter files: read-only, at their container path (a path rewrite without Docker)
    run.par_mounts.extend(mounts)


def _write_par_mounts(run: _Run) -> None:
    """Write each ``par_mounts`` entry's jq result to a file in the step's private folder."""
    environment = run.docker_env
    if environment is None or not environment.par_mounts or run.kind == "noop":
        return
    for index, mount in enumerate(environment.par_mounts):
        try:
            value = run_jq(mount.jqscript, dict(run.parameters))
        except ValueError as error:
            raise SpecError(f"{run.label}: par_mounts[{index}]: {error}") from None
        path = run.private_file(f".parmount{index}")
        path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
        run.par_mounts.append((str(path), mount.mountpath))


def script_language(process: StringInterpolatedCmd | InterpolatedScriptCmd) -> str:
    """``shell`` for commands and sh/bash scripts, ``python`` for Python scripts, else ``other``."""
    if isinstance(process, StringInterpolatedCmd) or is_shell(process.interpreter):
        return "shell"
    words = process.interpreter.split()
    return "python" if words and os.path.basename(words[0]).startswith("python") else "other"


def _fill_template(run: _Run) -> None:
    """Set ``run.text``: the command or script with the parameters filled in (mounts rewritten)."""
    process = run.process
    language = script_language(process)
    template = process.cmd if isinstance(process, StringInterpolatedCmd) else process.script
    values: Mapping[str, Any] = run.parameters
    if run.mapping is not None:
        mounts = run.mapping.mounts + tuple((container, host) for host, container in run.par_mounts)
        template = rewrite_text(template, mounts, shell=language == "shell")
        values = rewrite_values(dict(run.parameters), mounts)
    run.text = interpolate(
        template, values, workdir=run.folder, quote=run.options.quote, language=language, where=run.label
    )


def _process_env(run: _Run) -> dict[str, str]:
    """The environment variables the step's process starts with."""
    env = dict(os.environ)
    env.update(run.options.extra_env)
    env.update(run.resource_env)
    if run.docker_env is not None:
        env.update({key: str(value) for key, value in run.docker_env.env.items()})
    if run.mapping is not None and run.mapping.python_shim:
        # a memory limit holds for the step's own processes, not for the warm zygote's children
        zygote = run.options.zygote_socket if run.options.memory_limit is None else None
        env["PATH"] = python_shim_dir(zygote) + os.pathsep + env.get("PATH", "")
    elif shutil.which("python", path=env.get("PATH")) is None:
        # a spec's `python` must work even where only python3 is installed
        env["PATH"] = env.get("PATH", "") + os.pathsep + python_shim_dir(None)
    return env


def _command_line(run: _Run) -> list[str]:
    """Write the command (or script) to the private folder; the argv that runs it here."""
    process = run.process
    envscript = run.docker_env.envscript if run.docker_env is not None else ""
    if run.mapping is not None and envscript:
        envscript = rewrite_values(envscript, run.mapping.mounts)
    if isinstance(process, StringInterpolatedCmd):
        run.private_file(".command").write_text(run.text + "\n", encoding="utf-8")
        return ["sh", "-c", f". {shlex.quote(envscript)} && {run.text}" if envscript else run.text]
    interpreter = shlex.split(process.interpreter)
    suffix = ".py" if os.path.basename(interpreter[0]).startswith("python") else ".script"
    script_file = run.private_file(suffix)
    script_file.write_text(run.text, encoding="utf-8")
    run.private_file(".command").write_text(f"{process.interpreter} {script_file}\n", encoding="utf-8")
    argv = [*interpreter, str(script_file)]
    if envscript:
        argv = ["sh", "-c", f". {shlex.quote(envscript)} && exec {shlex.join(argv)}"]
    return argv


def _in_environment(run: _Run, argv: list[str]) -> tuple[list[str], Path]:
    """``argv`` wrapped for Docker when the step runs there, and the folder it starts in."""
    environment = run.docker_env
    if run.kind == "docker" and environment is not None:
        wrapped = docker_command(
            environment.full_image,
            argv,
            workdir=run.folder,
            container_workdir=environment.workdir,
            shared_dirs=run.options.shared_dirs,
            env={**run.options.extra_env, **{k: str(v) for k, v in environment.env.items()}},
            extra_mounts=run.par_mounts,
        )
        return wrapped, run.folder
    if run.mapping is not None and environment is not None and environment.workdir:
        return argv, Path(rewrite_values(environment.workdir, run.mapping.mounts))
    return argv, run.folder


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
        EnvironmentUnavailableError: a Docker image with no engine and no image-map entry, or
            a resource the environment needs that nothing provides.
        SpecError: the template names an unknown parameter, a publisher finds no file, ...
        HumanStepError: a human step (``manual-instructions-*``): it needs a person, not a process.
    """
    if step.human:
        raise HumanStepError(
            f"{f'stage {stage!r} step' if stage else 'step'} {name or Path(workdir).name} is a human step "
            "(manual-instructions-*): a person does it; run its workflow with 'mltoolkit spec', which pauses for them"
        )
    started = time.monotonic()
    folder = Path(workdir).resolve()
    name = name or folder.name
    label = f"stage {stage!r} step {name}" if stage else f"step {name}"
    run = _Run(step, parameters, folder, name, label, options or StepOptions())
    folder.mkdir(parents=True, exist_ok=True)
    _choose_environment(run)
    _apply_resources(run)
    code: int | None = None
    log_path: Path | None = None
    if run.kind != "publish-only":  # yadage runs a step only when it has a process and an environment
        _write_par_mounts(run)
        _fill_template(run)
    if run.kind not in ("noop", "publish-only"):
        code, log_path = _start(run, on_output)
    published = publish(step.publisher, parameters, folder, where=label)
    resources = run.resources.to_dict() if run.resources is not None else None
    return StepResult(published, code, log_path, run.text, run.kind, time.monotonic() - started, resources)


def _start(run: _Run, on_output: Callable[[str], None] | None) -> tuple[int, Path]:
    """Run the step's process to its end; its exit code and log file."""
    log_path = run.private_file(".run.log")
    log_path.write_bytes(b"")
    argv, cwd = _in_environment(run, _command_line(run))
    if run.options.memory_limit is not None and run.kind != "docker":
        argv = limit_memory(argv, run.options.memory_limit)
    code = execute(
        argv,
        cwd=cwd,
        env=_process_env(run),
        log_path=log_path,
        timeout=run.options.timeout,
        on_output=on_output,
        label=run.label,
    )
    return code, log_path
