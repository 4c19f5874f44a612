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

from mltoolkit.yadage.packtivity.shell_variables import IDENTIFIER, Variables
from mltoolkit.yadage.packtivity.shell_words import ANY, INTEGER, MARK, NEVER, STRICT, Command, HereDoc, Slot, Word

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


_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "for", "select", "case"})
_OPENERS = frozenset({"{", "if", "while", "until", "for", "select", "case"})
_PREFIX_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
_CLOSERS = frozenset({"}", "fi", "done", "esac"})

#: NAME=, NAME+= and bash's NAME[subscript]=: an assignment, so the next word is still the command
_ASSIGNMENT_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]\n]*\])?\+?=")


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
    groups: list[Word] = field(default_factory=list)  # open { } / if fi / while done ...: what is inside


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
        self.words: list[Word] = []
        self.variables = Variables()
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
            frame.word = Word(
                "stdin" if role == "herestring" else role, strip_tabs=role == "delimiter-", detached=role == "target"
            )
            if frame.word.strip_tabs:
                frame.word.role = "delimiter"
            frame.command.words.append(frame.word)
            self.words.append(frame.word)
            if role == "herestring":
                frame.command.stdin.append(frame.word)
            frame.expect = "arg"
        return frame.word

    def _is_assignment_start(self, frame: Frame) -> bool:
        before_command = frame.command is None or all(
            word.role != "arg" or (word.is_plain_literal and word.literal in _PREFIX_KEYWORDS)
            for word in frame.command.words
        )
        # NAME=, NAME+= and bash's NAME[subscript]= (then the next word is still the command)
        return before_command and _ASSIGNMENT_START.match(self.text, self.position) is not None

    def enclosing(self) -> tuple[Word, ...]:
        """The words a slot here lies in: those of the outer contexts, open groups, the current word."""
        return (*self.frame.outer, *self.frame.groups, self.current_word())

    def open_group(self) -> Word:
        """A word standing for a subshell's content, part of the current command (``( ... ) | sh``)."""
        frame = self.frame
        group = Word("group")
        if frame.command is None:
            frame.command = Command()
        frame.command.words.append(group)
        return group

    def end_word(self) -> None:
        frame = self.frame
        word = frame.word
        frame.word = None
        if word is None:
            return
        if word.role == "delimiter":
            self._queue_heredoc(word)
        elif word.role == "assign":
            self.variables.assign_word(word)
        elif word.role == "arg" and word.is_plain_literal and frame.command is not None:
            self._compound(frame, frame.command, word)

    def _compound(self, frame: Frame, command: Command, word: Word) -> None:
        """Open a group at ``{``/``if``/``while``...; close it at ``}``/``fi``/``done``... (its command gets it)."""
        before = [w for w in command.words if w.role == "arg"][:-1]
        if not all(w.is_plain_literal and w.literal in _KEYWORDS for w in before):
            return
        if word.literal in _OPENERS:
            frame.groups.append(Word("group"))
        elif word.literal in _CLOSERS and not before and frame.groups:
            command.words.append(frame.groups.pop())

    def end_command(self) -> None:
        self.end_word()
        frame = self.frame
        if frame.command is not None:
            frame.pipeline.append(frame.command)
            frame.commands.append(frame.command)
            self._sources(frame.command)
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

    def _sources(self, command: Command) -> None:
        """Variables this command gives values: ``declare x=...``, ``for x in ...``, ``read x <<< ...``."""
        words = [word for word in command.words if word.role == "arg"]
        while words and words[0].is_plain_literal and words[0].literal in _PREFIX_KEYWORDS:
            words = words[1:]
        if not words or not words[0].is_plain_literal:
            return
        head = words[0].literal
        if head in ("declare", "typeset", "local", "export", "readonly"):
            for word in words[1:]:
                self.variables.assign_word(word)
        elif head in ("for", "select") and len(words) > 2 and words[2].literal == "in":
            self.variables.assign(words[1].literal, words[3:])
        elif head in ("read", "mapfile", "readarray"):
            for word in words[1:]:
                if word.is_plain_literal and not word.literal.startswith("-"):
                    self.variables.assign(word.literal, list(command.stdin))

    # --- here-documents -----------------------------------------------------------------------

    def _queue_heredoc(self, word: Word) -> None:
        body = Word("stdin")
        self.words.append(body)
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
            if self.frame.closer is not None:  # dash and bash end a $(...) at a ')' line inside it
                level, why = STRICT, "in a here-document inside (...) or $(...), which a ')' can end"
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
                    if not heredoc.quoted and self.peek() == "$":
                        name = IDENTIFIER.match(self.text, self.position + 1 + (self.peek(1) == "{"))
                        if name:
                            self.variables.use(name.group(), (*self.frame.outer, heredoc.body))
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
    lexer.variables.propagate(lexer.words)
    return lexer.slots, lexer.heredocs
