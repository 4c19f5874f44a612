"""Plumbing shared by the step scripts: one-line errors, flushed output, checked artifacts.

Kept free of heavy imports (no numpy, scikit-learn or matplotlib at import
time): a cold ``python data_prep.py --help`` should not pay for them, and the
warm zygote has them imported already anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from mltoolkit.errors import ArtifactError, MLToolkitError

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "StepArgumentParser",
    "check_output_path",
    "load_artifact",
    "run_step",
    "save_artifact",
    "say",
    "writing_to",
]

#: Exit code of a successful step.
EXIT_OK = 0
#: Exit code of every failure on bad input (the toolkit's convention, usage errors included).
EXIT_ERROR = 1

T = TypeVar("T")


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _flush_streams() -> None:
    # In a zygote child the script's stdout is the forked interpreter's buffered
    # stream on the caller's descriptor; anything left in the buffer when the
    # child exits with os._exit would be lost.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def _print_error(message: object) -> None:
    print(f"error: {_one_line(message)}", file=sys.stderr, flush=True)


def say(message: str) -> None:
    """Print one line on stdout and flush it at once."""
    print(message, flush=True)


class StepArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one ``error: ...`` line and exit code 1.

    argparse's own behaviour (usage block plus exit code 2) would break the
    toolkit's convention that a failed step says one line and exits 1.
    Abbreviated options are refused, as the seed's click options did.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Report a usage error as one line and exit with :data:`EXIT_ERROR`."""
        _print_error(f"{self.prog}: {message} (see {self.prog} --help)")
        raise SystemExit(EXIT_ERROR)


def run_step(
    parser: argparse.ArgumentParser,
    step: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run ``step(args)``; return the exit code.

    Never raises ``SystemExit`` for ``--help`` or usage errors, so ``main(argv)``
    can be called in-process. A toolkit error becomes one ``error:`` line and
    exit code 1; output is flushed whatever happens. Errors that are not the
    toolkit's (bugs) propagate with their traceback on purpose: hiding them would
    hide the bug.
    """
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:
            return _exit_code(exit_)
        return step(args)
    except MLToolkitError as error:
        _print_error(error)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    finally:
        _flush_streams()


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return EXIT_OK
    if isinstance(exit_.code, int):
        return exit_.code
    _print_error(exit_.code)
    return EXIT_ERROR


@contextlib.contextmanager
def writing_to(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into an :class:`ArtifactError`.

    Writes fail for reasons the step cannot fix (unwritable folder, the output
    path is a folder, disk full); the user needs the path and the reason in one
    line, not a traceback.
    """
    try:
        yield
    except MLToolkitError:  # ArtifactError is an OSError too: keep its own message
        raise
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ArtifactError(f"{what} {os.fspath(path)}: cannot write ({reason}); pick a writable path") from None


def check_output_path(path: str | os.PathLike[str], what: str) -> None:
    """Fail at once if ``path`` can never be written as a file (a folder, or below a file).

    Checked before the step's work, so a typo costs no training or drawing.

    Raises:
        ArtifactError: ``path`` is an existing folder or lies below a file.
    """
    if os.path.isdir(path):
        raise ArtifactError(f"{what} {os.fspath(path)}: is a directory, expected a file path; add a file name")
    # The step creates missing folders, but not below an existing file.
    for folder in Path(os.path.abspath(path)).parents:
        if folder.exists():
            if not folder.is_dir():
                raise ArtifactError(f"{what} {os.fspath(path)}: {folder} is a file, not a folder; pick another path")
            break


def save_artifact(value: Any, path: str | os.PathLike[str], what: str) -> str:
    """Pickle ``value`` to ``path`` atomically with its sha256 sidecar; return the sha256."""
    from mltoolkit.workdir.artifacts import save_pickle

    with writing_to(path, what):
        return save_pickle(value, path)


def load_artifact(
    path: str | os.PathLike[str],
    expected: type[T],
    what: str,
    produced_by: str,
) -> T:
    """Unpickle ``path`` after checking its sha256; check its type.

    The sha256 is the one the run's lineage records (the hash the upstream step's
    output had when that step finished), else the file's sidecar.

    Args:
        path: the pickle file.
        expected: the class the file must hold.
        what: how the command line calls this file (for messages), e.g. ``--prepped_data``.
        produced_by: the step that writes such files (for the hint in messages).

    Raises:
        ArtifactError: the file is missing, is a folder, has no sidecar, is in the
            work directory but not in the run's lineage, or holds something other
            than ``expected``.
        IntegrityError: the content does not match the known hash, or is not a pickle.
    """
    from mltoolkit.workdir.artifacts import lineage_sha256, load_pickle

    if os.path.isdir(path):
        raise ArtifactError(f"{what} {path}: is a directory, expected a pickle written by {produced_by}")
    try:
        # A known hash is required (the lineage's, else the sidecar every step
        # script writes): a pickle of unknown origin can run any code when loaded.
        value = load_pickle(path, expected_sha256=lineage_sha256(path), require_hash=True)
    except ArtifactError as error:  # name the argument: the user typed that, not a path
        raise type(error)(f"{what} {error}") from None
    if not isinstance(value, expected):
        raise ArtifactError(
            f"{what} {path}: holds a {type(value).__name__}, expected {expected.__name__} "
            f"as written by {produced_by}; check the order of the arguments"
        )
    return value
