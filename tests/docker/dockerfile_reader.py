"""A small reader of the Dockerfile and .dockerignore, for the tests that need no engine.

Instructions with continuation lines joined, grouped into build stages; and
Docker's ignore-file rules, so a test can ask whether a path reaches the build.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tests.constants import REPO_ROOT

__all__ = [
    "DOCKERFILE",
    "DOCKERIGNORE",
    "Instruction",
    "Stage",
    "build_args",
    "copy_sources_and_destination",
    "env_values",
    "ignore_patterns",
    "is_ignored",
    "read_instructions",
    "read_stages",
]

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


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


@dataclass
class Stage:
    """A build stage: its ``FROM`` image, its ``AS`` name (if any) and its instructions."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        """This stage's instructions with ``keyword``."""
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


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


def read_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The build stages in order (instructions before the first ``FROM`` are global ``ARG``s)."""
    stages: list[Stage] = []
    for instruction in read_instructions(path):
        if instruction.keyword == "FROM":
            words = instruction.words()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def copy_sources_and_destination(instruction: Instruction) -> tuple[list[str], str]:
    """A COPY's sources and destination, without its --flags."""
    words = [word for word in instruction.words() if not word.startswith("--")]
    return words[:-1], words[-1]


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    """Every ``ENV key=value`` the instructions set (later ones win)."""
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for word in instruction.words():
                key, separator, value = word.partition("=")
                assert separator, f"line {instruction.line}: use the ENV key=value form"
                values[key] = value
    return values


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    """``ARG name=default`` values (an ``ARG name`` without default is left out)."""
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ARG":
            name, separator, default = instruction.arguments.partition("=")
            if separator:
                values[name.strip()] = default.strip()
    return values


def ignore_patterns(path: Path = DOCKERIGNORE) -> list[str]:
    """The patterns of a .dockerignore, in order (``!`` exceptions kept)."""
    patterns = []
    for raw in path.read_text().splitlines():
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
