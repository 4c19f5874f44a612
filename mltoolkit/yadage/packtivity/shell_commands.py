"""What a shell command does with its arguments: which are data, which are code or names.

:func:`classify_command` looks at one simple command of a template (its words as the
lexer in :mod:`.shell_lexer` found them) and raises the *level* of the words whose
values the shell or the named program would read as more than data:

* the command name itself (a value there chooses what runs);
* the code argument of an interpreter (``sh -c X``, ``python -c X``, ``perl -e X``,
  ``awk X``, ``sed X``, ``jq X``, any argument of ``root``), ``eval``, ``trap``, ``alias``;
* names that bash evaluates (``read``, ``unset``, ``declare`` names, ``printf -v``,
  ``test -v``...: an array subscript in a name runs ``$(...)``) and arithmetic
  operands (``let``, ``-eq`` and friends);
* every argument of a command that runs another command from its arguments
  (``xargs``, ``sudo``, ``ssh``, ``find``, ``docker``...), and of a command only known
  at run time (``$CMD {v}``).

Plain argv pass-through prefixes (``exec``, ``env A=1``, ``nohup``, ``timeout 60``,
``nice``, ``time``...) are skipped, so ``timeout 60 python x.py {v}`` is judged as
``python x.py {v}``. A command also says whether its standard input is code
(``sh``, ``python`` without a script, a wrapper): values piped or here-documented
into it are then restricted too.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence

from mltoolkit.yadage.packtivity.shell_lexer import INTEGER, STRICT, Command, Word

__all__ = ["classify_command"]

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "busybox"})
#: interpreter -> options whose next word is code
_CODE_OPTIONS: dict[str, frozenset[str]] = {
    **{shell: frozenset({"-c"}) for shell in SHELLS},
    "python": frozenset({"-c", "-m"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "nodejs": frozenset({"-e", "--eval", "-p", "--print"}),
    "Rscript": frozenset({"-e"}),
    "R": frozenset({"-e"}),
    "php": frozenset({"-r"}),
    "lua": frozenset({"-e"}),
    "julia": frozenset({"-e", "-E"}),
    "tclsh": frozenset(),
}
#: programs whose first non-option argument is their program text
_PROGRAM_FIRST = frozenset({"awk", "gawk", "mawk", "nawk", "sed", "jq", "yq"})
#: every argument may be code (ROOT runs macro calls such as 'plot.C("x")')
_ALL_CODE = frozenset({"eval", "trap", "alias", "root", "root.exe", "source-highlight"})
#: commands that run other commands chosen by their arguments or their input
_WRAPPERS = frozenset(
    {
        "xargs", "sudo", "su", "doas", "runuser", "ssh", "watch", "flock", "chroot", "parallel",
        "srun", "mpirun", "mpiexec", "docker", "podman", "singularity", "apptainer", "kubectl",
        "find", "nsenter", "unshare", "ionice", "taskset", "strace", "ltrace", "valgrind", "gdb",
        "script", "expect", "make", "busybox", "coproc", "vim", "vi", "emacs", "ed", "ex", "sqlite3",
    }
)  # fmt: skip
#: plain argv pass-through: skip them (and their options) and judge the command after them
_TRANSPARENT = frozenset({"exec", "command", "builtin", "nohup", "setsid", "time", "env", "timeout", "nice", "stdbuf"})
_TRANSPARENT_OPTION_ARGUMENT = {"nice": {"-n"}, "timeout": {"-s", "-k", "--signal", "--kill-after"}, "env": {"-u"}}
#: bash builtins whose arguments are variable names (a subscript in a name runs code)
_NAME_BUILTINS = frozenset({"read", "unset", "mapfile", "readarray", "getopts", "wait", "let"})
_DECLARE = frozenset({"declare", "typeset", "local", "export", "readonly"})
_ARITHMETIC_OPERATORS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
#: commands that only read their standard input as data (here-documents into them may hold any value)
_DATA_SINKS = frozenset(
    {
        "cat", "tee", "head", "tail", "sort", "uniq", "wc", "tr", "cut", "paste", "grep", "egrep", "fgrep",
        "base64", "md5sum", "sha1sum", "sha256sum", "sha512sum", "dd", "column", "fold", "fmt", "nl", "rev",
        "od", "xxd", "hexdump", "sponge", ":", "true", "read", "mapfile", "readarray", "gzip", "bzip2", "xz",
    }
)  # fmt: skip
_COMPOUND_CLOSERS = frozenset({"done", "fi", "esac", "}", ")"})
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
_OPENERS = frozenset({"{", "(", "if", "while", "until", "for", "select", "case"})
_VERSION = re.compile(r"^(.*?)[0-9.]*$")
#: what a script file's name looks like (anything else after an interpreter may be an option's argument)
_SCRIPT = re.compile(r"/|\.(py|sh|bash|pl|rb|js|mjs|R|r|jl|php|lua|tcl)$")


def program_name(word: Word) -> str:
    """``/usr/bin/python3.11`` -> ``python`` (the name without folder and version)."""
    base = os.path.basename(word.literal)
    stem = _VERSION.match(base)
    return (stem.group(1) if stem and stem.group(1) else base) if base not in ("[", "[[") else base


def _raise(words: Sequence[Word], level: int, why: str) -> None:
    for word in words:
        word.restrict(level, why)


def classify_command(command: Command) -> None:
    """Set the level of every word of ``command`` and whether its standard input is code."""
    arguments = [word for word in command.words if word.role == "arg"]
    if any(word.role == "group" for word in command.words) or (
        arguments and arguments[0].is_plain_literal and arguments[0].literal in _OPENERS
    ):
        command.stdin_code = True  # a group's input and output belong to the commands inside it
    index = 0
    while index < len(arguments) and arguments[index].is_plain_literal and arguments[index].literal in _KEYWORDS:
        index += 1
    if index < len(arguments) and arguments[index].is_plain_literal and arguments[index].literal in ("for", "select"):
        if index + 1 < len(arguments):
            arguments[index + 1].restrict(STRICT, "a loop variable's name")
        return
    if index < len(arguments) and arguments[index].is_plain_literal and arguments[index].literal == "function":
        _raise(arguments[index + 1 :], STRICT, "a function's name")
        return
    _classify_from(command, arguments[index:])


def _classify_from(command: Command, words: list[Word]) -> None:
    if not words:
        return
    head = words[0]
    if not head.is_plain_literal:
        head.restrict(STRICT, "the command name")
        _raise(words[1:], STRICT, "an argument of a command only known when the script runs")
        command.stdin_code = True
        return
    name = program_name(head)
    if name in _TRANSPARENT:
        _skip_prefix(command, words, name)
    elif name in _COMPOUND_CLOSERS:
        command.stdin_code = True  # the input goes to the commands inside: judged unknown
    elif name in _CODE_OPTIONS:
        _interpreter(command, words, name)
    elif name in _PROGRAM_FIRST:
        _program_first(command, words, name)
    elif name in _ALL_CODE or name in _WRAPPERS:
        _raise(words[1:], STRICT, f"an argument of {name!r}, which runs its arguments as code or commands")
        command.stdin_code = True
    elif name in _NAME_BUILTINS:
        if name == "let":
            _raise(words[1:], INTEGER, "an argument of 'let', which bash evaluates as arithmetic")
        else:
            _raise(words[1:], STRICT, f"an argument of {name!r}, which bash reads as a variable name")
        command.stdin_data = name in _DATA_SINKS
    else:
        _data_command(command, words, name)


def _skip_prefix(command: Command, words: list[Word], name: str) -> None:
    takes_argument = _TRANSPARENT_OPTION_ARGUMENT.get(name, set())
    index = 1
    needs_duration = name == "timeout"
    while index < len(words):
        word = words[index]
        if name == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word.literal_prefix):
            index += 1  # a variable for the command: its value is data
            continue
        if needs_duration and not word.is_plain_literal and not word.literal_prefix.startswith("-"):
            word.restrict(STRICT, "the duration given to 'timeout'")
            needs_duration = False
            index += 1
            continue
        if not word.is_plain_literal:
            break
        text = word.literal
        if text.startswith("-") and len(text) > 1:
            index += 2 if text in takes_argument else 1
        elif needs_duration:
            needs_duration = False
            index += 1
        else:
            break
    if index < len(words) and not words[index].is_plain_literal and _looks_like_option(words[index]):
        _raise(words[1:], STRICT, f"an argument of {name!r} before its command")
        command.stdin_code = True
        return
    _classify_from(command, words[index:])


def _looks_like_option(word: Word) -> bool:
    return word.literal.startswith("-")


def _interpreter(command: Command, words: list[Word], name: str) -> None:
    """An interpreter: the word after any code option is code; its input is code unless it runs a script."""
    code_options = _CODE_OPTIONS[name]
    found = False
    # every word: an option that takes an argument (python -W x) must not hide a later -c
    for previous, word in itertools.pairwise(words):
        if previous.is_plain_literal and _is_code_option(previous.literal, code_options):
            word.restrict(STRICT, f"the code {name} {previous.literal} runs")
            found = True
    for position, word in enumerate(words[1:], start=1):
        if word.expanded and (word.literal_prefix.startswith("-") or word is _script(words)):
            # `bash $opts ...`: an option or script only known at run time could be -c, or nothing
            _raise(words[position:], STRICT, f"an argument of {name!r} after one only known when the script runs")
            command.stdin_code = True
            return
        if not word.is_plain_literal and (word.literal_prefix.startswith("-") or word is _script(words)):
            word.restrict(STRICT, f"an option or the script of {name!r}")
    script = _script(words)
    if found:
        return  # its input goes to the code: judged unknown, so not data either
    if script is None or (script.is_plain_literal and not _SCRIPT.search(script.literal)):
        command.stdin_code = True  # no script (or an option's argument): the program comes from the input
        return
    command.stdin_data = True


def _script(words: list[Word]) -> Word | None:
    """The first word after the interpreter that is not an option: its script (if any)."""
    return next((word for word in words[1:] if not word.literal.startswith("-")), None)


def _is_code_option(text: str, code_options: frozenset[str]) -> bool:
    if text in code_options:
        return True
    if text.startswith("--") or not text.startswith("-"):
        return False
    short = {option[1] for option in code_options if len(option) == 2}
    return any(char in short for char in text[1:])


def _program_first(command: Command, words: list[Word], name: str) -> None:
    index = 1
    program_given = False
    while index < len(words):
        word = words[index]
        text = word.literal
        if word.expanded:  # `sed $opts ...`: it could be -e, making the next word the program
            _raise(words[index:], STRICT, f"an argument of {name!r} after one only known when the script runs")
            return
        if word.is_plain_literal and text in ("-f", "--file", "--from-file"):
            program_given = True
            index += 2
            continue
        if word.is_plain_literal and text in ("-e", "--expression"):
            if index + 1 < len(words):
                words[index + 1].restrict(STRICT, f"the program {name} {text} runs")
            program_given = True
            index += 2
            continue
        if word.is_plain_literal and text in ("-v", "--arg", "--argjson", "--slurpfile", "--rawfile"):
            index += 3 if text in ("--arg", "--argjson", "--slurpfile", "--rawfile") else 2
            continue
        if text.startswith("-") and len(text) > 1:
            word.restrict(STRICT, f"an option of {name!r}")
            index += 1
            continue
        break
    if not program_given and index < len(words):
        words[index].restrict(STRICT, f"the program text of {name!r}")
    command.stdin_data = True  # awk, sed and jq read their input as data


def _data_command(command: Command, words: list[Word], name: str) -> None:
    if name == "cat":
        for word in words[1:]:
            word.detached = True  # cat prints what its files hold, never their names
    if name in _DECLARE:
        options = "".join(word.literal for word in words if word.is_plain_literal and word.literal.startswith("-"))
        for word in words[1:]:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word.literal_prefix):
                word.restrict(STRICT, f"a variable name given to {name!r}")
            elif "n" in options:
                word.restrict(STRICT, f"a variable name a reference points to ({name} -n)")
            elif "i" in options:
                word.restrict(
                    INTEGER, f"a value for an integer variable ({name} -i), which bash evaluates as arithmetic"
                )
    elif name in ("printf", "test", "[", "[["):
        for previous, word in itertools.pairwise(words):
            if previous.is_plain_literal and previous.literal == "-v":
                word.restrict(STRICT, f"a variable name given to {name} -v")
        for position, word in enumerate(words[1:], start=1):
            neighbours = {words[position - 1].literal}
            if position + 1 < len(words):
                neighbours.add(words[position + 1].literal)
            if neighbours & _ARITHMETIC_OPERATORS:
                word.restrict(INTEGER, "an arithmetic comparison, which bash evaluates as arithmetic")
    command.stdin_data = name in _DATA_SINKS
