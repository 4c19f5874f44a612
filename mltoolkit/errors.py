"""Exceptions raised by mltoolkit.

Every error the toolkit raises on bad input derives from :class:`MLToolkitError`.
Messages follow one pattern so a command line can print them as a single line:
*where* (file, stage, key), *what was found*, *what was expected*, *how to fix it*.
Subclasses also inherit the matching built-in exception (``ValueError``,
``KeyError``, ``FileNotFoundError``...) so callers that catch those still work.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "ArtifactError",
    "ChecksumMismatchError",
    "ClassifierConfigError",
    "CommandLineError",
    "DatasetDownloadError",
    "DatasetError",
    "DatasetNotFoundError",
    "HashingTimeoutError",
    "HelperProcessError",
    "InputsError",
    "IntegrityError",
    "JqProgramError",
    "LimitExceededError",
    "MLToolkitError",
    "SpecError",
    "StepCancelledError",
    "StepFailedError",
    "UnknownClassifierError",
    "UnsupportedFeatureError",
    "WorkdirError",
    "WorkdirLockedError",
    "ZygoteError",
    "ZygoteTimeout",
]


class MLToolkitError(Exception):
    """Base class of every error mltoolkit raises on purpose.

    ``str(error)`` is one line meant for a user: where, what was found, what was
    expected and how to fix it.
    """

    def __str__(self) -> str:  # KeyError would otherwise repr() its message
        return " ".join(str(arg) for arg in self.args).replace("\n", " ")


class InputsError(MLToolkitError, ValueError):
    """The inputs file or a ``-p key=value`` override is malformed."""


class DatasetError(MLToolkitError, ValueError):
    """A dataset could not be parsed or is unusable for classification."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset path does not exist."""


class DatasetDownloadError(DatasetError, OSError):
    """A dataset URL could not be fetched."""


class ChecksumMismatchError(DatasetError):
    """A file's sha256 differs from the expected one."""


class UnknownClassifierError(MLToolkitError, KeyError):
    """A classifier name is not in the registry."""


class ClassifierConfigError(MLToolkitError, ValueError):
    """A classifier given by import path cannot be built."""


class ArtifactError(MLToolkitError, OSError):
    """An intermediate file is missing or cannot be read."""


class ArchiveError(MLToolkitError, ValueError):
    """What to archive is no run's work directory, or the archive cannot be written where asked."""


class IntegrityError(ArtifactError):
    """An intermediate file's content differs from the hash recorded when it was written."""


class SpecError(MLToolkitError, ValueError):
    """A yadage spec (workflow, steps or inputs) is malformed."""


class LimitExceededError(SpecError):
    """A spec, inputs file or published document asks for more than a resource limit allows.

    Alias and ``$ref`` expansion, document size and depth, scatter size, jq run
    time and memory, inputs size: see :mod:`mltoolkit.limits`. The message names
    the file, the limit and the environment variable that raises it.
    """


class JqProgramError(MLToolkitError, ValueError):
    """A jq program did not compile (``compiling``) or failed on its input; the message is jq's."""

    def __init__(self, message: str, *, compiling: bool = False) -> None:
        super().__init__(message)
        self.compiling = compiling


class UnsupportedFeatureError(SpecError):
    """A yadage spec uses a feature this loader does not implement."""


class StepFailedError(MLToolkitError, RuntimeError):
    """A workflow step's process exited with an error."""


class StepCancelledError(StepFailedError):
    """A running step was stopped because its command was interrupted (Ctrl-C, SIGTERM)."""


class HashingTimeoutError(StepFailedError):
    """Hashing a step's inputs or outputs for its cache key did not finish within the step's timeout."""


class WorkdirError(MLToolkitError, OSError):
    """A work directory cannot be used (not a directory, not writable...)."""


class WorkdirLockedError(WorkdirError):
    """Another run holds the lock on the work directory."""


class CommandLineError(MLToolkitError, ValueError):
    """A command-line argument is malformed."""


class EnvironmentUnavailableError(SpecError):
    """A step's environment cannot be provided here (no Docker, no image-map entry)."""


class VisualizationError(MLToolkitError, ValueError):
    """Bad arguments to the workflow picture writer, or graphviz failed when it was required."""


class SpecRunFailedError(MLToolkitError, RuntimeError):
    """A spec run ended with failed steps or stages that could never be applied."""


class ApiServerError(MLToolkitError, RuntimeError):
    """The Prefect API server a command needs could not be started or reached."""


class HelperProcessError(MLToolkitError, RuntimeError):
    """A helper process the toolkit needs (the jq runner, the step supervisor) could not be started."""


class ZygoteError(MLToolkitError, RuntimeError):
    """The warm zygote cannot be reached, or a child died without answering."""


class ZygoteTimeout(ZygoteError, TimeoutError):
    """A zygote call ran longer than its timeout; its process group was killed."""
