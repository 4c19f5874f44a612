"""Running one step: choose where it runs, apply its resources, fill its template, start it, publish."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltoolkit.errors import EnvironmentUnavailableError, HumanStepError, SpecError
from mltoolkit.processes.process_group import find_command
from mltoolkit.workdir.layout import inside_workdir, step_private_dir
from mltoolkit.yadage.model import (
    DockerEncapsulatedEnv,
    EnvironmentSpec,
    InterpolatedScriptCmd,
    StepSpec,
    StringInterpolatedCmd,
)
from mltoolkit.yadage.packtivity.containers import Container, prepare_container, with_bundled_datasets
from mltoolkit.yadage.packtivity.docker import DockerRun, docker_command, image_id, remove_container
from mltoolkit.yadage.packtivity.environments import (
    ImageMapping,
    Placement,
    place_step,
    python_shim_dir,
    rewrite_text,
    rewrite_values,
)
from mltoolkit.yadage.packtivity.execute import execute
from mltoolkit.yadage.packtivity.interpolate import interpolate
from mltoolkit.yadage.packtivity.publishers import publish
from mltoolkit.yadage.packtivity.resources import StepResources, limit_memory, plan_limits, resource_environment
from mltoolkit.yadage.packtivity.shell import is_shell
from mltoolkit.yadage.packtivity.step_options import DOCKER_NETWORK_VARIABLE, StepOptions, StepResult
from mltoolkit.yadage.selectors import run_jq

__all__ = ["DOCKER_NETWORK_VARIABLE", "StepOptions", "StepResult", "environment_identity", "run_step"]


@dataclass
class _Run:
    """One step run in the making: what the named phases of :func:`run_step` hand each other."""

    step: StepSpec
    parameters: Mapping[str, Any]
    folder: Path  # resolved (by run_step)
    name: str
    label: str
    options: StepOptions
    placement: Placement = field(default_factory=lambda: Placement("local"))
    par_mounts: list[tuple[str, str]] = field(default_factory=list)
    #: bundled dataset file -> its path in the container (known dataset URLs, in Docker)
    datasets: dict[str, str] = field(default_factory=dict)
    text: str = ""
    resources: StepResources | None = None
    resource_env: dict[str, str] = field(default_factory=dict)
    #: the private folder, resolved and created by the first :meth:`private_file`
    checked_private: Path | None = None

    @property
    def kind(self) -> str:
        return self.placement.kind

    @property
    def mapping(self) -> ImageMapping | None:
        return self.placement.mapping

    @property
    def private(self) -> Path:
        return step_private_dir(self.folder)

    def private_file(self, suffix: str) -> Path:
        """``<step folder>/_packtivity/<name><suffix>``, created as a folder first; never outside the step's folder.

        A link planted in place of the folder or the file (by an earlier step, or a
        name with ``..``) would otherwise make the runner write elsewhere.
        """
        if self.checked_private is None:  # once per step run: each check resolves every folder on the way
            where = f"{self.label}: private folder"
            private = inside_workdir(self.folder, self.private, what=where, root_resolved=True)
            private.mkdir(exist_ok=True)
            self.checked_private = private
        private = self.checked_private
        where = f"{self.label}: private file"
        return inside_workdir(private, private / f"{self.name}{suffix}", what=where, root_resolved=True)

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
    """Set ``run.placement``: publish-only, noop, local, docker, or an image map's kind.

    Raises:
        EnvironmentUnavailableError: a Docker image with no engine and no image-map entry.
        HumanStepError: a human step: a person does it, not a process.
    """
    if run.step.human:
        raise HumanStepError(
            f"{run.label} is a human step (manual-instructions-*): a person does it; run its workflow with "
            "'mltoolkit spec', which pauses for them"
        )
    if run.step.publish_only:  # yadage runs a step only when it has a process and an environment
        run.placement = Placement("publish-only")
        return
    run.placement = place_step(run.step, run.options.image_map, run.options.use_docker)
    if run.placement.problem is not None:
        raise EnvironmentUnavailableError(f"{run.label}: {run.placement.problem}")


def environment_identity(step: StepSpec, options: StepOptions) -> dict[str, Any]:
    """Where ``step`` would run, for cache keys: kind and image, and in Docker the image's id.

    Never raises: a step that can run nowhere gets kind ``unavailable`` (it fails when it runs).
    Image ids are remembered in ``options.image_ids`` (once per image and run); an image the
    engine does not have yet has no id here (it is pulled when the step runs).
    """
    placement = place_step(step, options.image_map, options.use_docker)
    identity: dict[str, Any] = {"kind": placement.kind, "image": placement.image}
    if placement.kind == "docker" and placement.image is not None:
        if placement.image not in options.image_ids:
            found = image_id(placement.image)
            if found is not None:
                options.image_ids[placement.image] = found
        identity["image_id"] = options.image_ids.get(placement.image)
    return identity


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
    elif run.kind == "docker":
        values = with_bundled_datasets(dict(run.parameters), run.datasets)
    run.text = interpolate(
        template, values, workdir=run.folder, quote=run.options.quote, language=language, where=run.label
    )


def _process_env(run: _Run) -> dict[str, str]:
    """The environment variables the step's process starts with."""
    env = dict(os.environ)
    env.update(run.options.extra_env)
    if run.docker_env is not None:
        env.update({key: str(value) for key, value in run.docker_env.env.items()})
    env.update(run.resource_env)
    if run.mapping is not None and run.mapping.python_shim:
        # a memory limit holds for the step's own processes, not for the warm zygote's children
        zygote = run.options.zygote_socket if run.options.memory_limit is None else None
        env["PATH"] = python_shim_dir(zygote) + os.pathsep + env.get("PATH", "")
    elif find_command("python", env.get("PATH")) is None:
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


def _in_environment(run: _Run, argv: list[str], container: Container | None) -> tuple[list[str], Path]:
    """``argv`` wrapped for Docker when the step runs there, and the folder it starts in."""
    environment = run.docker_env
    if container is not None and environment is not None:
        docker_run = DockerRun(
            image=container.image_id,
            name=container.name,
            workdir=str(run.folder),
            container_workdir=environment.workdir,
            shared_dirs=run.options.shared_dirs,
            read_only=(*run.par_mounts, *run.datasets.items()),
            env={
                **run.options.extra_env,
                **{k: str(v) for k, v in environment.env.items()},
                **run.resource_env,
            },
            memory=str(run.options.memory_limit) if run.options.memory_limit is not None else None,
            labels=container.labels,
            network=run.options.docker_network,
            cidfile=str(container.cidfile),
        )
        return docker_command(docker_run, argv), run.folder
    if run.mapping is not None and environment is not None and environment.workdir:
        return argv, Path(rewrite_values(environment.workdir, run.mapping.mounts))
    return argv, run.folder


def _where(run: _Run, container: Container | None) -> dict[str, Any]:
    """Where the step ran, in the run record's ``environment`` format."""
    where: dict[str, Any] = {"kind": run.kind}
    if run.placement.image is not None:
        where["image"] = run.placement.image
    if run.mapping is not None:
        where["mapped_to"] = run.mapping.describe()
    if container is not None:
        where.update(image_id=container.image_id, container=container.name, container_id=container.started_id())
    return where


def _run_process(run: _Run, on_output: Callable[[str], None] | None) -> tuple[int, Path, Container | None]:
    """Start the step's process (here or in its container), wait for it; its exit code, log and container."""
    log_path = run.private_file(".run.log")
    log_path.write_bytes(b"")
    container = None
    if run.kind == "docker":
        container = prepare_container(run.placement, run.label, run.name, run.private_file)
    argv, cwd = _in_environment(run, _command_line(run), container)
    if run.options.memory_limit is not None and container is None:
        argv = limit_memory(argv, run.options.memory_limit)
    if container is not None:
        container.announce(log_path, on_output, network=run.options.docker_network)
    code = execute(
        argv,
        cwd=cwd,
        env=_process_env(run),
        log_path=log_path,
        timeout=run.options.timeout,
        on_output=on_output,
        label=run.label,
        on_kill=functools.partial(remove_container, container.name) if container is not None else None,
    )
    return code, log_path, container


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
    container: Container | None = None
    if run.kind != "publish-only":
        _write_par_mounts(run)
        _fill_template(run)
    if run.kind not in ("noop", "publish-only"):
        code, log_path, container = _run_process(run, on_output)
    published = publish(step.publisher, parameters, folder, where=label)
    resources = run.resources.to_dict() if run.resources is not None else None
    return StepResult(
        published,
        code,
        log_path,
        run.text,
        run.kind,
        time.monotonic() - started,
        where=_where(run, container),
        resources=resources,
    )
