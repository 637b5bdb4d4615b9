"""Statement text as the server reads it: where its strings, identifiers and comments are.

The proxy must never disagree with the server about which part of a statement is SQL and
which is data: a string the server reads as data must not be evaluated by the proxy as an
ML call (or its arguments). How the server splits text depends on the session: the
``NO_BACKSLASH_ESCAPES`` and ``ANSI_QUOTES`` sql_modes, the client character set (decoded
before this module sees the text, see rewriter.charsets) and, for executable comments,
the server's version. This lexer follows the server's rules (MariaDB's and MySQL's
``sql_lex.cc``), and :func:`read_statement` gives sqlglot a *canonical* twin of the text:

- the same length, so every offset sqlglot reports is an offset of the client's text;
- comments blanked (an executable comment the server runs keeps its content as code);
- inside quotes, every character sqlglot might read or write differently from the server
  (quotes, backslashes, control characters) replaced by a placeholder, so sqlglot sees
  exactly the server's boundaries, in every sql_mode;
- ANSI_QUOTES identifiers delimited by backticks, which is how sqlglot reads identifiers.

Placeholders are high surrogates, which decoded text never contains; text sqlglot writes
from the canonical twin (a key query) goes back through :meth:`ReadStatement.restore`,
which puts the client's own characters back, escaped as the session reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

#: The placeholders' range: high surrogates (decoding with surrogateescape yields only
#: low ones, U+DC80-U+DCFF).
_FIRST_PLACEHOLDER = 0xD800
_PLACEHOLDERS = 0x400

#: Where the code state may change: quotes, comment openers, an executable comment's end.
_CODE_STOP = re.compile(r"['\"`#/*\-\x00]")
#: Characters of a string body that sqlglot might read or write otherwise than the server.
_STRING_STOP = re.compile(r"['\"`\\\x00-\x1f\x7f]")
_IDENTIFIER_STOP = re.compile(r"[`\"]")
#: A standalone integer literal of the code: not part of an identifier (``t1``, ``1e``,
#: MySQL's ``1abc``), of a decimal (``1.5``), an exponent (``1e5``), a hex or bit number
#: (``0x1F``), a user variable (``@1``). Other numbers stay part of a statement's shape.
_INTEGER = re.compile(r"(?<![\w$.@\u0080-\U0010ffff])[0-9]+(?![\w$.\u0080-\U0010ffff])")
#: The server's digits: ASCII only (``\u0661`` is an identifier's character to it).
DIGITS = "0123456789"
#: A string literal's quote right after one of these is introduced (``_utf8mb4'x'``,
#: ``N'x'``, ``X'41'``, ``B'01'``): such literals stay part of a statement's shape.
_INTRODUCED = re.compile(r"[\w$\u0080-\U0010ffff]")


class SlotKind(IntEnum):
    """What a slot of a statement is (rewriter.shaped.shapes): text whose value, not its place,
    differs between statements of one shape."""

    STRING = 0
    INTEGER = 1
    COMMENT = 2
    PARAMETER = 3


#: A slot: (start, end) offsets of the client's text and its kind.
Slot = tuple[int, int, SlotKind]


class UnreadableStatement(ValueError):
    """The text holds something the proxy cannot read exactly as the server would."""


@dataclass(frozen=True)
class SqlSyntax:
    """What decides how the server splits a session's statement text."""

    backslash_escapes: bool = True
    ansi_quotes: bool = False
    #: The server's version as MySQL's comments spell it (10.11.9 -> 101109); None: unknown.
    server_version: int | None = None
    mariadb: bool = True
    #: ``||`` concatenates (PIPES_AS_CONCAT, and ANSI, ORACLE... which include it):
    #: not how the server splits text, but how the planner must read it (rewriter.dialect).
    pipes_as_concat: bool = False

    @classmethod
    def from_session(cls, sql_mode: str, server_version: str) -> SqlSyntax:
        """From ``@@sql_mode`` and the server's version string (``10.11.9-MariaDB``)."""
        modes = {mode.strip().upper() for mode in sql_mode.split(",")}
        return cls(
            backslash_escapes="NO_BACKSLASH_ESCAPES" not in modes,
            ansi_quotes="ANSI_QUOTES" in modes or "ANSI" in modes,
            server_version=version_number(server_version),
            mariadb="mariadb" in server_version.lower(),
            pipes_as_concat="PIPES_AS_CONCAT" in modes or "ANSI" in modes,
        )


def version_number(version: str) -> int | None:
    """``10.11.9-MariaDB-log`` -> 101109; None when it does not start with x.y.z. A
    MariaDB greeting's ``5.5.5-`` prefix (kept for old replicas) is not its version:
    MariaDB dates executable comments by the version that follows.

    >>> version_number("10.11.9-MariaDB"), version_number("8.0.36"), version_number("x")
    (101109, 80036, None)
    >>> version_number("5.5.5-10.11.9-MariaDB-log")
    101109
    """
    if version.startswith("5.5.5-") and "mariadb" in version.lower():
        version = version.removeprefix("5.5.5-")
    parts = version.split("-", 1)[0].split(".")
    if len(parts) < 3 or not all(p.isascii() and p.isdigit() for p in parts[:3]):
        return None
    major, minor, patch = (int(p) for p in parts[:3])
    return major * 10000 + minor * 100 + patch


@dataclass
class ReadStatement:
    """A statement's text, its canonical twin for sqlglot, and the way back."""

    text: str
    canonical: str
    _restore: dict[int, str] = field(default_factory=dict)
    #: The literals, comments (and, when asked, ``?`` parameters) of the text, in order:
    #: what two statements of one shape may differ by (rewriter.shaped.shapes).
    slots: list[Slot] = field(default_factory=list)
    #: The openers and ends of the executable comments the server runs: text the server
    #: reads as code that is not in a column's name (rewriter.sql_text.item_aliases).
    hidden: list[tuple[int, int]] = field(default_factory=list)

    def restore(self, generated: str) -> str:
        """Text written from the canonical twin, with the client's characters back."""
        return generated.translate(self._restore) if self._restore else generated


def read_statement(text: str, syntax: SqlSyntax, parameters: bool = False) -> ReadStatement:
    """The canonical twin of ``text`` (module docstring); UnreadableStatement when some
    part of it cannot be read exactly as the server reads it. The same pass lists the
    text's slots (string and integer literals, comments; ``?`` too with ``parameters``,
    for a prepared statement's text).

    >>> sql = "SELECT 'a\\\\' OR f(1) -- '"
    >>> marked = lambda read: "".join("#" if ord(c) >= 0xD800 else c for c in read.canonical)
    >>> marked(read_statement(sql, SqlSyntax(backslash_escapes=False)))  # f(1) is SQL
    "SELECT 'a#' OR f(1)     "
    >>> marked(read_statement(sql, SqlSyntax()))  # f(1) is in the string
    "SELECT 'a## OR f(1) -- '"
    >>> [(sql[a:b], kind.name) for a, b, kind in read_statement(sql, SqlSyntax()).slots]
    [("'a\\\\' OR f(1) -- '", 'STRING')]
    >>> sql = "SELECT f(7, 'en', t1.c) /* x */ FROM t LIMIT ?"
    >>> [(sql[a:b], kind.name) for a, b, kind in read_statement(sql, SqlSyntax(), True).slots]
    [('7', 'INTEGER'), ("'en'", 'STRING'), ('/* x */', 'COMMENT'), ('?', 'PARAMETER')]
    """
    return _Canonicalizer(text, syntax, parameters).run()


def read_slots(text: str, syntax: SqlSyntax, parameters: bool = False) -> ReadStatement:
    """``read_statement`` without the canonical twin (empty): the slots alone, for a
    statement whose shape is all the proxy needs (rewriter.shaped.shapes), in the same pass and
    with the same refusals (UnreadableStatement), but for the canonical twin's own limit
    on distinct escapes inside quotes."""
    slots = None if parameters else _plain_slots(text)
    if slots is not None:
        return ReadStatement(text, "", {}, slots)
    return _Canonicalizer(text, syntax, parameters, canonical=False).run()


#: What only the lexer's states read right: a double quote or a backtick (a string or an
#: identifier, by sql_mode), a backslash (an escape or not, by sql_mode), a comment's
#: opener (and so an executable comment's end), a NUL.
_NEEDS_STATES = re.compile(r"[\"`\\#\x00]|--|/\*")
#: Without those, the text's strings are single-quoted with ``''`` as their only escape,
#: and everything else is code: one scan finds its slots (a lone quote: a string
#: without its end).
_PLAIN_SLOTS = re.compile(f"'[^']*(?:''[^']*)*'|'|{_INTEGER.pattern}")


def _plain_slots(text: str) -> list[Slot] | None:
    """The slots of a text the server reads the same in every sql_mode and version (no
    quoting but single quotes, no comment), in one scan; None for any other text and
    for one the lexer refuses."""
    if _NEEDS_STATES.search(text):
        return None
    slots: list[Slot] = []
    for found in _PLAIN_SLOTS.finditer(text):
        start, end = found.span()
        if text[start] != "'":
            slots.append((start, end, SlotKind.INTEGER))
        elif end - start == 1:
            return None  # a string without its end: the lexer's refusal
        elif not (start and _INTRODUCED.match(text, start - 1)):
            slots.append((start, end, SlotKind.STRING))
    return slots


class _Canonicalizer:
    """One pass over the text, in the server's lexical states."""

    def __init__(
        self, text: str, syntax: SqlSyntax, parameters: bool = False, canonical: bool = True
    ) -> None:
        self.text = text
        self.syntax = syntax
        self.parameters = parameters
        self.canonical = canonical
        self.out = list(text) if canonical else []
        self.codes: dict[str, int] = {}
        self.pos = 0
        #: The end of an executable comment the server runs, while inside one.
        self.in_executable = False
        self.slots: list[Slot] = []
        self.hidden: list[tuple[int, int]] = []

    def run(self) -> ReadStatement:
        text, end = self.text, len(self.text)
        while True:
            found = _CODE_STOP.search(text, self.pos)
            if found is None:
                break
            self._code(self.pos, found.start())
            self.pos = found.start()
            char = text[self.pos]
            if char == "'" or (char == '"' and not self.syntax.ansi_quotes):
                self._string(char)
            elif char == "`" or char == '"':
                self._identifier(char)
            elif char == "#" or (char == "-" and self._dash_comment()):
                self._line_comment(self.pos)
            elif char == "/" and text.startswith("/*", self.pos):
                self._block_comment()
            elif char == "*" and self.in_executable and text.startswith("*/", self.pos):
                self._blank(self.pos, self.pos + 2)
                self.hidden.append((self.pos, self.pos + 2))
                self.in_executable = False
                self.pos += 2
            elif char == "\x00":
                raise UnreadableStatement("a NUL character outside quotes")
            else:
                self.pos += 1
        self._code(self.pos, end)
        self.pos = end
        if self.in_executable:
            raise UnreadableStatement("an executable comment without its end")
        restore = {code: value for value, code in self.codes.items()}
        return ReadStatement(self.text, "".join(self.out), restore, self.slots, self.hidden)

    def _code(self, start: int, end: int) -> None:
        """Note the integer literals (and ``?`` parameters) of a stretch of code."""
        if start >= end:
            return
        found = [
            (n.start(), n.end(), SlotKind.INTEGER) for n in _INTEGER.finditer(self.text, start, end)
        ]
        if self.parameters and "?" in self.text[start:end]:
            found += [
                (i, i + 1, SlotKind.PARAMETER) for i in range(start, end) if self.text[i] == "?"
            ]
            found.sort()
        self.slots += found

    # -- quoted text -----------------------------------------------------------------------

    def _string(self, quote: str) -> None:
        """A string literal: ``''`` (or ``""``) and, with backslash escapes, ``\\x`` are
        escapes. Its body is rewritten for a single-quoted literal, which is how sqlglot
        writes every string."""
        text, start = self.text, self.pos
        escapes = self.syntax.backslash_escapes
        i = start + 1
        while True:
            found = _STRING_STOP.search(text, i)
            if found is None:
                raise UnreadableStatement("a string literal without its closing quote")
            i = found.start()
            char = text[i]
            if char == "\\" and escapes and i + 1 < len(text):
                self._mark(i, "\\")
                self._mark(i + 1, text[i + 1])
                i += 2
            elif char == quote and text.startswith(quote, i + 1):
                self._mark(i, "''" if quote == "'" else '"')
                self._mark(i + 1, "")
                i += 2
            elif char == quote:
                if quote == '"' and self.canonical:
                    self.out[start] = self.out[i] = "'"
                self.pos = i + 1
                if not (start and _INTRODUCED.match(text, start - 1)):
                    self.slots.append((start, self.pos, SlotKind.STRING))
                return
            else:
                self._mark(i, self._in_single_quotes(char))
                i += 1

    def _in_single_quotes(self, char: str) -> str:
        """How a character of a string body is written inside single quotes."""
        if char == "'":
            return "''"
        if char == "\\":
            return "\\\\" if self.syntax.backslash_escapes else "\\"
        return char

    def _identifier(self, quote: str) -> None:
        """A quoted identifier (backticks, or double quotes under ANSI_QUOTES): a doubled
        quote is an escape, backslashes are plain characters. sqlglot reads backticks the
        server's way, so only what double quotes change is marked."""
        text, start = self.text, self.pos
        i = start + 1
        while True:
            found = _IDENTIFIER_STOP.search(text, i)
            if found is None:
                raise UnreadableStatement("a quoted identifier without its closing quote")
            i = found.start()
            char = text[i]
            if char == quote and text.startswith(quote, i + 1):
                if quote == '"':
                    self._mark(i, '"')
                    self._mark(i + 1, "")
                i += 2
            elif char == quote:
                if self.canonical:
                    self.out[start] = self.out[i] = "`"
                self.pos = i + 1
                return
            else:  # a backtick inside ANSI double quotes
                self._mark(i, "``")
                i += 1

    def _mark(self, index: int, written: str) -> None:
        """Replace the character at ``index`` with the placeholder written back as
        ``written``."""
        if not self.canonical:
            return
        code = self.codes.get(written)
        if code is None:
            if len(self.codes) >= _PLACEHOLDERS:
                raise UnreadableStatement("too many distinct escapes")
            code = self.codes[written] = _FIRST_PLACEHOLDER + len(self.codes)
        self.out[index] = chr(code)

    # -- comments --------------------------------------------------------------------------

    def _dash_comment(self) -> bool:
        return dash_comment_at(self.text, self.pos)

    def _line_comment(self, start: int) -> None:
        end = self.text.find("\n", start)
        end = len(self.text) if end < 0 else end
        _no_nul(self.text, start, end)
        if self.in_executable and "*/" in self.text[start:end]:
            # The server ends an executable comment at */ even inside a line comment.
            raise UnreadableStatement("a line comment inside an executable comment")
        self._blank(start, end)
        self.slots.append((start, end, SlotKind.COMMENT))
        self.pos = end

    def _block_comment(self) -> None:
        text, start = self.text, self.pos
        if self.in_executable:
            raise UnreadableStatement("a comment nested in an executable comment")
        opener = executable_opener(text, start, self.syntax)
        if opener is not None:
            self._blank(start, opener)
            self.hidden.append((start, opener))
            self.in_executable = True
            self.pos = opener
            return
        end = text.find("*/", start + 2)
        if end < 0:
            raise UnreadableStatement("a comment without its end")
        _no_nul(text, start, end)
        self._blank(start, end + 2)
        self.slots.append((start, end + 2, SlotKind.COMMENT))
        self.pos = end + 2

    def _blank(self, start: int, end: int) -> None:
        if not self.canonical:
            return
        for i in range(start, end):
            if self.out[i] != "\n":
                self.out[i] = " "


#: The versions of MySQL's executable comments MariaDB skips as comments, whatever its own
#: version (measured on 10.11: /*!50699 runs, /*!50700 and /*!99999 do not, /*!100000 does;
#: /*M!50700 does).
_MYSQL_57_ON = range(50700, 100000)


def dash_comment_at(text: str, pos: int) -> bool:
    """Whether a ``--`` comment starts at ``pos``: only before whitespace, a control
    character or the end (``1--1`` is one minus minus one)."""
    if not text.startswith("--", pos):
        return False
    after = pos + 2
    return after >= len(text) or text[after] <= " " or text[after] == "\x7f"


def executable_opener(text: str, start: int, syntax: SqlSyntax) -> int | None:
    """Where the code of an executable comment the server runs starts (after ``/*!``,
    ``/*!NNNNN``, or MariaDB's ``/*M!NNNNNN``); None for a comment it skips. Raises
    UnreadableStatement for an executable comment whose fate is unknown."""
    i = start + 2
    mariadb_only = text.startswith("M!", i)
    if mariadb_only:
        i += 2
    elif text.startswith("!", i):
        i += 1
    else:
        return None  # an ordinary comment, or an optimizer hint (/*+ ... */)
    if mariadb_only and not syntax.mariadb:
        return None  # MySQL reads /*M! ... */ as a comment
    digits = 0
    while i + digits < len(text) and text[i + digits] in DIGITS:
        digits += 1
    if digits == 0:
        return i
    if digits not in (5, 6) or syntax.server_version is None:
        raise UnreadableStatement("an executable comment the proxy cannot date")
    version = int(text[i : i + digits])
    if syntax.mariadb and not mariadb_only and version in _MYSQL_57_ON:
        return None  # MariaDB skips MySQL 5.7+'s comments (/*!50700 ... /*!99999)
    if version <= syntax.server_version:
        return i + digits
    return None


def _no_nul(text: str, start: int, end: int) -> None:
    """The server ends a comment at a NUL character, and what follows is not SQL."""
    if "\x00" in text[start:end]:
        raise UnreadableStatement("a NUL character in a comment")
