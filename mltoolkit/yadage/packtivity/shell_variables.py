"""Values kept in shell variables: ``x={v}`` is restricted by how ``$x`` (or ``x``) is used later.

A value assigned to a variable is data where it is assigned, but the script may
expand the variable where the shell reads code: ``$x`` as a command name, in the
code of ``sh -c``, piped into ``sh``, and above all in arithmetic, where bash
evaluates the *contents* of a variable (``n={v}; echo $((n + 1))`` runs the
``$(...)`` of a value ``a[$(...)]``). :class:`Variables` records where variables get
values (assignments, ``declare``/``export`` arguments, ``for`` lists, ``read`` from a
here-document) and where they are used (``$x``, ``${x...}``, names in arithmetic),
and :meth:`Variables.propagate` raises each assignment to the level of its
strictest use, through chains (``y=$x``) too. It is deliberately flow-insensitive:
a use anywhere in the script counts, whatever the order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mltoolkit.yadage.packtivity.shell_words import ANY, INTEGER, MARK, Word

__all__ = ["IDENTIFIER", "Variables"]

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=")


@dataclass
class _Use:
    name: str
    chain: tuple[Word, ...]
    floor: int
    why: str


@dataclass
class Variables:
    """Where each variable gets values (the words holding them) and where it is used."""

    sources: dict[str, list[Word]] = field(default_factory=dict)
    uses: list[_Use] = field(default_factory=list)

    def assign(self, name: str, words: list[Word]) -> None:
        """``name`` takes (part of) its value from ``words``."""
        self.sources.setdefault(name, []).extend(words)

    def assign_word(self, word: Word) -> None:
        """A ``NAME=...`` word: its own text is the value."""
        match = _ASSIGNMENT.match(word.literal_prefix)
        if match:
            self.assign(match.group(1), [word])

    def use(self, name: str, chain: tuple[Word, ...], floor: int = ANY, why: str = "") -> None:
        """``name`` is expanded inside the words ``chain``; ``floor``: a level the place has by itself."""
        self.uses.append(_Use(name, chain, floor, why))

    def use_names(self, text: str, chain: tuple[Word, ...], floor: int, why: str) -> None:
        """Every identifier in ``text`` (arithmetic) is a use at ``floor``."""
        for name in IDENTIFIER.findall(text.replace(MARK, " ")):
            self.use(name, chain, floor, why)

    def _word_uses(self, words: list[Word]) -> list[_Use]:
        # a word held to integers is arithmetic: bash evaluates the names written in it
        return [
            _Use(name, (word,), INTEGER, word.why)
            for word in words
            if word.level == INTEGER
            for name in IDENTIFIER.findall(word.literal.replace(MARK, " "))
        ]

    def propagate(self, words: list[Word]) -> None:
        """Raise every assignment to the level of the strictest use of its variable."""
        changed = True
        while changed:
            changed = False
            for use in self.uses + self._word_uses(words):
                level, why = use.floor, use.why
                for word in use.chain:
                    if word.level > level:
                        level, why = word.level, word.why
                if level == ANY:
                    continue
                for source in self.sources.get(use.name, ()):
                    if source.level < level:
                        source.restrict(level, f"kept in ${use.name}, then used in this position: {why}")
                        changed = True
