"""What the shell lexer produces: words, simple commands, here-documents and placeholder slots.

Levels, lowest first: ``ANY`` (any value, escaped for its quoting), ``STRICT``
(plain characters only), ``INTEGER`` and ``NEVER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ANY", "INTEGER", "MARK", "NEVER", "STRICT", "Command", "HereDoc", "Slot", "Word"]

ANY, STRICT, INTEGER, NEVER = 0, 1, 2, 3
MARK = "\x00"


@dataclass(eq=False)
class Word:
    """One shell word of a simple command (or a here-document body, role ``stdin``)."""

    role: str = "arg"  # arg | assign | target | delimiter | stdin
    chars: list[str] = field(default_factory=list)  # after quote removal; MARK for anything dynamic
    quoted: bool = False
    level: int = ANY
    why: str = ""
    strip_tabs: bool = False  # a `<<-` delimiter
    expanded: bool = False  # holds a $-expansion or a substitution: its text is only known at run time
    detached: bool = False  # its value never reaches its command's output (`cat FILE`, `> FILE`)

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
        for word in reversed(self.words):
            if word.level > level:
                level, why = word.level, word.why
            if word.detached:  # what encloses it gets the command's output, which does not hold the value
                break
        return level, why
