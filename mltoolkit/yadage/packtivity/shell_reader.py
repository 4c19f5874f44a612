"""The character loop of :mod:`.shell_lexer`: one function per shell construct."""

from __future__ import annotations

import re

from mltoolkit.yadage.packtivity.shell_lexer import ANY, INTEGER, MARK, NEVER, STRICT, Frame, Lexer, Word
from mltoolkit.yadage.packtivity.shell_variables import IDENTIFIER

__all__ = ["read_all"]

_NAME_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: `${name:` or `${name:offset:` -- what follows is arithmetic (not `${name:-word}` and friends)
_SUBSTRING = re.compile(r"[#!]?[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?:(\s*[^-=?+\s][^:]*:)?\s*")


def read_all(lx: Lexer) -> None:
    """Read the whole template, then close what is still open."""
    while lx.position < len(lx.text):
        if lx.frames[-1].kind == "dq":
            _double_char(lx)
        else:
            _command_char(lx)
    while len(lx.frames) > 1:
        lx.lose("an unclosed quote or parenthesis")
        if lx.frames[-1].kind == "cmd":
            lx.end_pipeline()
        lx.frames.pop()
    lx.end_pipeline()


def _expansion(word: Word) -> None:
    """``word`` holds an expansion or substitution: what it says is only known when the script runs."""
    word.chars.append(MARK)
    word.expanded = True


def _mark_word(lx: Lexer, quoting: str) -> None:
    word = lx.current_word()
    level = NEVER if word.role == "delimiter" else ANY
    why = "in a here-document's delimiter" if level == NEVER else ""
    lx.marker(quoting, level, why, lx.enclosing())
    word.chars.append(MARK)


def _command_char(lx: Lexer) -> None:
    char = lx.peek()
    frame = lx.frame
    if char == MARK:
        _mark_word(lx, "word")
    elif char == "\\":
        _backslash(lx)
    elif char in " \t":
        lx.take()
        lx.end_word()
    elif char == "\n":
        lx.take()
        if not frame.continues:  # after `|`, `&&` or `||` the command goes on on the next line
            lx.end_pipeline()
        lx.read_heredoc_bodies()
    elif char == "#" and frame.word is None:
        _comment(lx)
    elif char == "'":
        _single(lx)
    elif char == '"':
        lx.current_word().quoted = True
        lx.take()
        lx.frames.append(Frame("dq", None, ()))
    elif char == "`":
        _backtick(lx)
    elif char == "$":
        _dollar(lx)
    elif char in "<>" or (char == "&" and lx.peek(1) == ">"):
        _redirect(lx)
    elif char == "(":
        _open_parenthesis(lx)
    elif char == ")":
        _close_parenthesis(lx)
    elif char in ";&|":
        _operator(lx)
    elif char == "[" and frame.word is not None and _NAME_START.fullmatch(frame.word.literal):
        _subscript(lx)
    else:
        lx.current_word().chars.append(lx.take())


def _subscript(lx: Lexer) -> None:
    """``name[...]``: bash evaluates an array subscript as arithmetic (``a[{v}]=1``, ``read a[{v}]``)."""
    word = lx.current_word()
    word.chars.append(lx.take())
    end = lx.text.find("]", lx.position)
    text = lx.text[lx.position : end if end >= 0 else len(lx.text)]
    lx.variables.use_names(text, lx.enclosing(), INTEGER, "in an array subscript, which bash evaluates")
    while lx.position < len(lx.text) and lx.peek() not in "]\n":
        if lx.peek() == MARK:
            lx.marker("word", INTEGER, "in an array subscript, which bash evaluates as arithmetic", lx.enclosing())
            word.chars.append(MARK)
        elif lx.peek() in "'\"`$\\":
            lx.lose("quotes or substitutions in an array subscript")
            return
        else:
            word.chars.append(lx.take())


def _backslash(lx: Lexer) -> None:
    lx.take()
    following = lx.peek()
    if following == "\n":
        lx.take()  # a line continuation
    elif following and following != MARK:
        word = lx.current_word()
        word.chars.append(lx.take())
        word.quoted = True


def _comment(lx: Lexer) -> None:
    while lx.position < len(lx.text) and lx.peek() != "\n":
        if lx.peek() == MARK:
            lx.marker("comment", ANY, "", ())
        else:
            lx.take()


def _single(lx: Lexer) -> None:
    word = lx.current_word()
    word.quoted = True
    lx.take()
    while lx.position < len(lx.text):
        char = lx.peek()
        if char == "'":
            lx.take()
            return
        if char == MARK:
            lx.marker("single", ANY, "", lx.enclosing())
            word.chars.append(MARK)
        else:
            word.chars.append(lx.take())
    lx.lose("an unclosed single quote")


def _skip_to(lx: Lexer, end: str, level: int, why: str, *, escapes: bool = True) -> None:
    """Consume up to and including ``end``; markers on the way get ``level``."""
    word = lx.current_word()
    _expansion(word)
    while lx.position < len(lx.text):
        char = lx.peek()
        if char == end:
            lx.take()
            return
        if char == MARK:
            lx.marker("word", level, why, lx.enclosing())
        elif escapes and char == "\\":
            lx.take()
            if lx.position < len(lx.text) and lx.peek() != MARK:
                lx.take()
        else:
            if char == "<" and lx.peek(1) == "<":
                lx.lose("a here-document inside backticks or $'...'")
            lx.take()
    lx.lose(f"an unclosed {why}")


def _backtick(lx: Lexer) -> None:
    lx.take()
    end = lx.text.find("`", lx.position)
    for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", lx.text[lx.position : end if end >= 0 else None]):
        lx.variables.use(name, lx.enclosing(), STRICT, "inside backticks, which the runner does not read")
    _skip_to(lx, "`", STRICT, "inside backticks (`...`)")


def _parameter(lx: Lexer) -> None:
    """``${...}``: its word is read by rules that differ between shells; only plain values go in."""
    lx.take()
    lx.take()
    word = lx.current_word()
    _expansion(word)
    depth = 1
    seen = ""
    chain = lx.enclosing()
    while lx.position < len(lx.text):
        char = lx.peek()
        if char == MARK:
            if seen.count("[") > seen.count("]") or _SUBSTRING.fullmatch(seen):
                lx.marker(
                    "word", INTEGER, "in a subscript or offset inside ${...}, which is arithmetic", lx.enclosing()
                )
            else:
                lx.marker("word", STRICT, "inside ${...}", lx.enclosing())
            continue
        seen += char
        if char == "\\":
            lx.take()
            if lx.position < len(lx.text) and lx.peek() != MARK:
                lx.take()
            continue
        if char == "$" and IDENTIFIER.match(lx.text, lx.position + 1):
            arithmetic = seen.count("[") > seen.count("]") or _SUBSTRING.fullmatch(seen)
            name = IDENTIFIER.match(lx.text, lx.position + 1).group()  # type: ignore[union-attr]
            lx.variables.use(
                name, chain, INTEGER if arithmetic else ANY, "in a subscript or offset, which is arithmetic"
            )
        if char == "$" and lx.peek(1) in "({":
            depth += lx.peek(1) == "{"
            if lx.peek(1) == "(":
                lx.lose("a $(...) inside ${...}")
        elif char == "}":
            depth -= 1
            if depth == 0:
                lx.take()
                _parameter_uses(lx, seen, chain)
                return
        lx.take()
    lx.lose("an unclosed ${")


def _parameter_uses(lx: Lexer, text: str, chain: tuple[Word, ...]) -> None:
    """The variable a ``${...}`` expands; names in its subscript or offset are arithmetic."""
    head = re.match(r"([#!]?)([A-Za-z_][A-Za-z0-9_]*)", text)
    if head is None:
        return
    indirect = head.group(1) == "!" and not text[head.end() :].startswith(("*", "@"))
    why = "as the name of a variable (${!...}), which bash evaluates"
    lx.variables.use(head.group(2), chain, STRICT if indirect else ANY, why)
    rest = text[head.end() :]
    if rest.startswith("[") or re.match(r":(?![-=?+])", rest):
        lx.variables.use_names(rest, chain, INTEGER, "in a subscript or offset, which is arithmetic")


def _arithmetic(lx: Lexer, opening: int, closer: str) -> None:
    for _ in range(opening):
        lx.take()
    word = lx.current_word()
    _expansion(word)
    depth = 0
    start = lx.position
    why = "in arithmetic, which evaluates names and subscripts"
    while lx.position < len(lx.text):
        char = lx.peek()
        if char == MARK:
            lx.marker("word", INTEGER, why, lx.enclosing())
            continue
        if char in "])" and (closer == "]" or lx.peek(1) == ")"):
            lx.variables.use_names(lx.text[start : lx.position], lx.enclosing(), INTEGER, why)
        if closer == "]" and char == "]" and depth == 0:
            lx.take()
            return
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0 and closer == "))" and lx.peek(1) == ")":
                lx.take()
                lx.take()
                return
            depth -= 1
        elif char in "`'\"" or (char == "$" and lx.peek(1) in "({"):
            lx.lose("quotes or substitutions inside arithmetic")
        lx.take()
    lx.lose("an unclosed arithmetic expression")


def _dollar(lx: Lexer, *, in_double: bool = False) -> None:
    following = lx.peek(1)
    if following == "'" and not in_double:
        lx.take()
        lx.take()
        lx.current_word().quoted = True
        _skip_to(lx, "'", STRICT, "inside $'...' quotes")
    elif following == '"' and not in_double:
        lx.take()
    elif following == "{":
        _parameter(lx)
    elif following == "(" and lx.peek(2) == "(":
        _arithmetic(lx, 3, "))")
    elif following == "[":
        _arithmetic(lx, 2, "]")
    elif following == "(":
        lx.take()
        lx.take()
        word = lx.current_word()
        _expansion(word)
        lx.frames.append(Frame("cmd", ")", lx.enclosing()))
    else:
        lx.take()
        _expansion(lx.current_word())
        name = IDENTIFIER.match(lx.text, lx.position)
        if name:
            lx.variables.use(name.group(), lx.enclosing())


def _double_char(lx: Lexer) -> None:
    char = lx.peek()
    word = lx.current_word()
    if char == '"':
        lx.take()
        lx.frames.pop()
    elif char == MARK:
        lx.marker("double", ANY, "", lx.enclosing())
        word.chars.append(MARK)
    elif char == "\\":
        lx.take()
        following = lx.peek()
        if following and following != MARK:
            lx.take()
            if following != "\n":
                word.chars.append(following if following in '$`"\\' else "\\" + following)
    elif char == "`":
        _backtick(lx)
    elif char == "$":
        _dollar(lx, in_double=True)
    else:
        word.chars.append(lx.take())


def _redirect(lx: Lexer) -> None:
    frame = lx.frame
    word = frame.word
    if word is not None and word.chars and "".join(word.chars).isdigit() and frame.command is not None:
        frame.command.words.remove(word)  # `2>`: a file descriptor, not a word
        frame.word = None
    lx.end_word()
    operator = lx.take()
    while lx.peek() in "<>&|-" and lx.peek():
        if lx.peek() == "-" and not operator.startswith("<<"):
            break
        operator += lx.take()
    if operator in ("<(", ">(") or (lx.peek() == "(" and operator in ("<", ">")):
        if lx.peek() == "(":
            lx.take()
        marker = Word("arg", level=STRICT, why="inside a process substitution <(...)")
        lx.frames.append(Frame("cmd", ")", (*lx.enclosing(), marker)))
        return
    if operator == "<<<":
        frame.expect = "herestring"
    elif operator in ("<<", "<<-"):
        frame.expect = "delimiter-" if operator == "<<-" else "delimiter"
    else:
        frame.expect = "target"


def _open_parenthesis(lx: Lexer) -> None:
    frame = lx.frame
    at_start = frame.word is None and (frame.command is None or all(w.role != "arg" for w in frame.command.words))
    if at_start and lx.peek(1) == "(":
        _arithmetic(lx, 2, "))")
        return
    if at_start:
        lx.take()
        lx.frames.append(Frame("cmd", ")", (*frame.outer, *frame.groups, lx.open_group())))
        return
    rest = lx.text[lx.position + 1 :].lstrip(" \t")
    arguments = [w for w in frame.command.words if w.role == "arg"] if frame.command else []
    if rest.startswith(")") and len(arguments) <= 2:
        lx.take()
        while lx.peek() in " \t":
            lx.take()
        lx.take()
        for word in arguments:
            word.restrict(STRICT, "a function's name")
        lx.end_command()
        return
    lx.lose("a '(' inside a command")
    lx.take()


def _close_parenthesis(lx: Lexer) -> None:
    lx.take()
    frame = lx.frames[-1]
    if frame.kind == "cmd" and frame.closer == ")":
        lx.end_pipeline()
        lx.frames.pop()
    else:
        lx.end_command()  # a `case` pattern's end at the top level


def _operator(lx: Lexer) -> None:
    operator = lx.take()
    while lx.peek() in ";&|" and lx.peek() and len(operator) < 3:
        operator += lx.take()
    if operator in ("|", "|&"):
        lx.end_command()
    else:
        lx.end_pipeline()
    lx.frame.continues = operator in ("|", "|&", "&&", "||")
