"""Read a shell template and tell, for every placeholder, where it sits.

The template is read with its placeholders replaced by markers (``\\x00N\\x00``), so
no value can change how the template is read. The lexer follows POSIX shell syntax
(and the bash extensions that change quoting): words, single and double quotes,
``$'...'``, ``${...}``, ``$(...)``, ``$((...))``, backticks, comments, redirections,
here-documents (delimiter quoting as the shell does it, ``<<-``), pipelines and
simple commands. For each marker it records a :class:`Slot`: how the text around it
is quoted (``quoting``), the lowest *level* the place allows, and the words that
enclose it (their level is set later by :mod:`.shell_commands`, per command).

Levels: ``ANY`` (any value, escaped for its quoting), ``STRICT`` (plain characters
only), ``INTEGER`` and ``NEVER``. Whatever the lexer does not follow (a ``case``
inside ``$(...)``, a ``(`` inside a word, here-documents inside backticks) makes
every later placeholder ``STRICT``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "ANY",
    "INTEGER",
    "MARK",
    "NEVER",
    "STRICT",
    "Command",
    "Frame",
    "HereDoc",
    "Lexer",
    "Slot",
    "Word",
    "lex_shell",
]

ANY, STRICT, INTEGER, NEVER = 0, 1, 2, 3
MARK = "\x00"
_OPERATOR_CHARS = frozenset(";&|()<>")
_BREAK = frozenset(" \t\n") | _OPERATOR_CHARS


@dataclass(eq=False)
class Word:
    """One shell word of a simple command (or a here-document body, role ``stdin``)."""

    role: str = "arg"  # arg | assign | target | delimiter | stdin
    chars: list[str] = field(default_factory=list)  # after quote removal; MARK for anything dynamic
    quoted: bool = False
    level: int = ANY
    why: str = ""
    strip_tabs: bool = False  # a `<<-` delimiter

    @property
    def literal(self) -> str:
        return "".join(self.chars)

    @property
    def literal_prefix(self) -> str:
        return self.literal.split(MARK, 1)[0]

    @property
    def is_plain_literal(self) -> bool:
        return MARK not in self.chars

    def restrict(self, level: int, why: str) -> None:
        """Raise this word's level to ``level`` (the reason is kept for messages)."""
        if level > self.level:
            self.level, self.why = level, why


@dataclass(eq=False)
class Command:
    """A simple command: its words, its here-documents, what it does with its input."""

    words: list[Word] = field(default_factory=list)
    stdin: list[Word] = field(default_factory=list)
    stdin_code: bool = False
    stdin_data: bool = False


@dataclass(eq=False)
class HereDoc:
    """A here-document: its (quote-removed) delimiter and whether its body is expanded."""

    delimiter: str
    quoted: bool
    strip_tabs: bool
    body: Word
    lines: list[int] = field(default_factory=list)  # template line numbers of the body (0-based)


@dataclass(eq=False)
class Slot:
    """One placeholder's place: its quoting, its own level and the words around it."""

    number: int
    quoting: str  # word | single | double | heredoc | heredoc-quoted | comment
    level: int
    why: str
    line: int
    words: tuple[Word, ...] = ()
    heredoc: HereDoc | None = None

    def effective(self) -> tuple[int, str]:
        """The highest level among the slot and its enclosing words, with its reason."""
        level, why = self.level, self.why
        for word in self.words:
            if word.level > level:
                level, why = word.level, word.why
        return level, why


@dataclass(eq=False)
class Frame:
    """A context: commands (the top level, ``$(...)``, ``(...)``, ``<(...)``) or a double-quoted string."""

    kind: str  # cmd | dq
    closer: str | None
    outer: tuple[Word, ...]
    commands: list[Command] = field(default_factory=list)
    pipeline: list[Command] = field(default_factory=list)
    command: Command | None = None
    word: Word | None = None
    expect: str = "arg"
    continues: bool = False


class Lexer:
    """The reading state: position, line, open contexts, slots found, pending here-documents."""

    def __init__(self, text: str, classify: Callable[[Command], None]) -> None:
        self.text = text
        self.position = 0
        self.line = 0
        self.classify = classify
        self.slots: list[Slot] = []
        self.heredocs: list[HereDoc] = []
        self.pending: list[HereDoc] = []
        self.lost = ""
        self.frames: list[Frame] = [Frame("cmd", None, ())]

    # --- reading -------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        index = self.position + offset
        return self.text[index] if index < len(self.text) else ""

    def take(self) -> str:
        char = self.text[self.position]
        self.position += 1
        if char == "\n":
            self.line += 1
        return char

    def marker(self, quoting: str, level: int, why: str, words: tuple[Word, ...]) -> None:
        """Consume a marker and record its slot."""
        if quoting in ("word", "double", "heredoc") and self.position and self.text[self.position - 1] in "\\$":
            level, why = max(level, STRICT), "right after a backslash or a $"
        self.take()
        end = self.text.index(MARK, self.position)
        number = int(self.text[self.position : end])
        self.position = end + 1
        if self.lost:
            level, why = max(level, STRICT), f"after {self.lost}, which the quoting does not follow"
        self.slots.append(Slot(number, quoting, level, why, self.line, words))

    def lose(self, reason: str) -> None:
        self.lost = self.lost or reason

    # --- words and commands -------------------------------------------------------------------

    @property
    def frame(self) -> Frame:
        """The innermost command context."""
        return next(frame for frame in reversed(self.frames) if frame.kind == "cmd")

    def current_word(self) -> Word:
        frame = self.frame
        frame.continues = False
        if frame.word is None:
            if frame.command is None:
                frame.command = Command()
            role = frame.expect
            if role == "arg" and self._is_assignment_start(frame):
                role = "assign"
            frame.word = Word("stdin" if role == "herestring" else role, strip_tabs=role == "delimiter-")
            if frame.word.strip_tabs:
                frame.word.role = "delimiter"
            frame.command.words.append(frame.word)
            if role == "herestring":
                frame.command.stdin.append(frame.word)
            frame.expect = "arg"
        return frame.word

    def _is_assignment_start(self, frame: Frame) -> bool:
        before_command = frame.command is None or all(word.role != "arg" for word in frame.command.words)
        return before_command and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", self.text[self.position :]) is not None

    def enclosing(self) -> tuple[Word, ...]:
        return (*self.frame.outer, self.current_word())

    def end_word(self) -> None:
        frame = self.frame
        word = frame.word
        frame.word = None
        if word is not None and word.role == "delimiter":
            self._queue_heredoc(word)

    def end_command(self) -> None:
        self.end_word()
        frame = self.frame
        if frame.command is not None:
            frame.pipeline.append(frame.command)
            frame.commands.append(frame.command)
            first = frame.command.words[:1]
            if frame.closer is not None and first and first[0].is_plain_literal and first[0].literal == "case":
                self.lose("a 'case' inside parentheses")
            frame.command = None
        frame.expect = "arg"

    def end_pipeline(self) -> None:
        self.end_command()
        frame = self.frame
        for command in frame.pipeline:
            self.classify(command)
        for position, command in enumerate(frame.pipeline):
            reader = next((later for later in frame.pipeline[position + 1 :] if later.stdin_code), None)
            if reader is not None:
                for word in command.words + command.stdin:
                    word.restrict(STRICT, "a value piped into a command that reads its input as code")
        for command in frame.pipeline:
            for body in command.stdin:
                if not command.stdin_data:
                    body.restrict(
                        STRICT, "input of a command that may read it as code (only data commands such as cat)"
                    )
        frame.pipeline = []

    # --- here-documents -----------------------------------------------------------------------

    def _queue_heredoc(self, word: Word) -> None:
        body = Word("stdin")
        heredoc = HereDoc(word.literal, word.quoted, word.strip_tabs, body)
        command = self.frame.command or Command()
        command.stdin.append(body)
        self.pending.append(heredoc)
        self.heredocs.append(heredoc)

    def read_heredoc_bodies(self) -> None:
        while self.pending:
            heredoc = self.pending.pop(0)
            quoting = "heredoc-quoted" if heredoc.quoted else "heredoc"
            level, why = ANY, ""
            while self.position < len(self.text):
                end = self.text.find("\n", self.position)
                end = len(self.text) if end < 0 else end
                line = self.text[self.position : end]
                check = line.lstrip("\t") if heredoc.strip_tabs else line
                if check == heredoc.delimiter:
                    self.position = min(end + 1, len(self.text))
                    self.line += 1
                    break
                heredoc.lines.append(self.line)
                while self.position < end:
                    if self.peek() == MARK:
                        self.marker(quoting, level, why, (*self.frame.outer, heredoc.body))
                        self.slots[-1].heredoc = heredoc
                        continue
                    if not heredoc.quoted and self._substitution_starts():
                        level, why = STRICT, "after a substitution in an unquoted here-document"
                    self.take()
                if self.position < len(self.text):
                    self.take()

    def _substitution_starts(self) -> bool:
        """``$(``, ``${``, ``$[`` or a backtick: code inside a here-document body (not followed further)."""
        return self.peek() == "`" or (self.peek() == "$" and self.peek(1) in "({[")


def lex_shell(text: str, classify: Callable[[Command], None]) -> tuple[list[Slot], list[HereDoc]]:
    """The slots of the markers in ``text`` (and its here-documents); ``classify`` judges each command."""
    from mltoolkit.yadage.packtivity.shell_reader import read_all

    lexer = Lexer(text, classify)
    read_all(lexer)
    return lexer.slots, lexer.heredocs
