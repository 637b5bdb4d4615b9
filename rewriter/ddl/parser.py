"""A recursive-descent parser for exactly the ML DDL grammar."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rewriter.ddl.model import (
    BEDROCK_ALIAS,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_MAX_BATCH_SIZE,
    ER_NOT_SUPPORTED_YET,
    ER_PARSE_ERROR,
    ER_SP_DUP_PARAM,
    ER_WRONG_ARGUMENTS,
    SAGEMAKER_ALIAS,
    AliasFunction,
    Argument,
    DropFunction,
    Kind,
    Security,
)
from rewriter.ddl.render import render_create
from rewriter.ddl.scanner import (
    _scan,
    _Tok,
    looks_like_ml_ddl,
)
from rewriter.ddl.types import (
    _STRINGY,
    _SYNONYMS,
    CHAR_TYPES,
    NUMERIC_TYPES,
    OTHER_TYPES,
    TEXT_TYPES,
    _ident,
    _string,
    _Type,
)
from rewriter.errors import PlanError
from rewriter.lexer import SqlSyntax

# --- parser ----------------------------------------------------------------------------


class _NotML(Exception):
    """The statement is not ML DDL after all: forward it untouched."""


@dataclass
class _Header:
    """What precedes ALIAS in a CREATE FUNCTION."""

    schema: str | None
    name: str
    args: list[tuple[Argument, _Type, _Tok]]
    close: _Tok
    definer: str | None
    returns: _Type
    security: Security | None


class _Parser:
    """Recursive descent over the tokens of one statement."""

    def __init__(
        self,
        sql: str,
        backslash_escapes: bool = True,
        ansi_quotes: bool = False,
        syntax: SqlSyntax | None = None,
    ) -> None:
        self.sql = sql
        self.tokens = _scan(sql, backslash_escapes, ansi_quotes, syntax)
        self.pos = 0
        last = self.tokens[-2] if len(self.tokens) > 1 else None
        self.stmt_end = (
            last.start if last and last.kind == "punct" and last.text == ";" else len(sql)
        )

    # token helpers

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.pos]

    def advance(self) -> _Tok:
        tok = self.tok
        if tok.kind not in ("end", "error"):
            self.pos += 1
        return tok

    def is_word(self, *words: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.pos + offset, len(self.tokens) - 1)]
        return tok.kind == "word" and tok.text.upper() in words

    def is_punct(self, char: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == char

    def accept_word(self, *words: str) -> bool:
        if self.is_word(*words):
            self.pos += 1
            return True
        return False

    def expect_word(self, *words: str) -> str:
        if not self.is_word(*words):
            raise self.error()
        return self.advance().text.upper()

    def expect_punct(self, char: str) -> None:
        if not self.is_punct(char):
            raise self.error()
        self.pos += 1

    def error(self, tok: _Tok | None = None) -> PlanError:
        """MySQL's syntax error at ``tok`` (the current token by default)."""
        tok = tok or self.tok
        near = "" if tok.kind == "end" else self.sql[tok.start : self.stmt_end][:80]
        line = self.sql.count("\n", 0, tok.start) + 1
        message = (
            "You have an error in your SQL syntax; check the manual that corresponds to "
            f"your MySQL server version for the right syntax to use near '{near}' "
            f"at line {line}"
        )
        if tok.kind == "error" and "\u2019" in self.sql[tok.start :]:
            message += " (\u2019 is a typographic quote: close the string with ')"
        return PlanError(message, ER_PARSE_ERROR)

    # leaves

    def identifier(self) -> str:
        if self.tok.kind not in ("word", "ident"):
            raise self.error()
        return self.advance().text

    def qualified_name(self) -> tuple[str | None, str]:
        first = self.identifier()
        if self.is_punct("."):
            self.pos += 1
            return first, self.identifier()
        return None, first

    def string(self) -> str:
        if self.tok.kind != "string":
            raise self.error()
        return self.advance().text

    def number(self) -> tuple[int, _Tok]:
        if self.tok.kind != "number":
            raise self.error()
        tok = self.advance()
        return int(tok.text), tok

    def definer(self) -> str:
        """``DEFINER = user``, rendered as MySQL shows it (```user```@```host```)."""
        self.expect_word("DEFINER")
        self.expect_punct("=")
        if self.accept_word("CURRENT_USER"):
            if self.is_punct("("):
                self.pos += 1
                self.expect_punct(")")
            return "CURRENT_USER"
        user = self.account_part()
        host = "%"
        if self.is_punct("@"):
            self.pos += 1
            host = self.account_part(host=True)
        return f"{_ident(user)}@{_ident(host)}"

    def account_part(self, host: bool = False) -> str:
        """A user or host name: quoted, or bare (a bare host may be ``10.0.0.%``)."""
        if self.tok.kind in ("string", "ident"):
            return self.advance().text
        glue = ".%-:" if host else ""
        if self.tok.kind not in ("word", "number") and not (host and self.tok.text == "%"):
            raise self.error()
        parts = [self.advance()]
        while self.tok.start == parts[-1].end and (
            self.tok.kind in ("word", "number")
            or (self.tok.kind == "punct" and self.tok.text in glue)
        ):
            parts.append(self.advance())
        return "".join(self.sql[t.start : t.end] for t in parts)

    # types

    def sql_type(self) -> _Type:
        """A MySQL data type with its length, sign and charset attributes."""
        if self.tok.kind != "word":
            raise self.error()
        word = self.tok.text.upper()
        known = NUMERIC_TYPES | CHAR_TYPES | TEXT_TYPES | OTHER_TYPES | {"BOOL", "BOOLEAN"}
        if word not in known and word not in _SYNONYMS:
            raise self.error()
        self.advance()
        if word in ("BOOL", "BOOLEAN"):
            return _Type("TINYINT", ("1",))
        base = _SYNONYMS.get(word, word)
        if base == "DOUBLE":
            self.accept_word("PRECISION")
        elif base in ("CHAR", "NATIONAL", "LONG", "NCHAR") and self.is_word(
            "VARYING", "CHAR", "CHARACTER", "VARCHAR", "VARBINARY"
        ):
            words = [self.advance().text.upper()]
            if self.accept_word("VARYING"):
                words.append("VARYING")
            base = "VARCHAR" if words == ["VARYING"] else " ".join([base, *words])
        params = self.type_params()
        if base == "VARCHAR" and not params:
            raise self.error()
        sql_type = _Type(base, params)
        if base in NUMERIC_TYPES:
            return self.numeric_attrs(sql_type)
        if base in _STRINGY:
            return self.string_attrs(sql_type)
        return sql_type

    def type_params(self) -> tuple[str, ...]:
        if not self.is_punct("("):
            return ()
        self.pos += 1
        params: list[str] = []
        while True:
            if self.tok.kind == "string":
                params.append(_string(self.advance().text))
            else:
                params.append(str(self.number()[0]))
            if not self.is_punct(","):
                break
            self.pos += 1
        self.expect_punct(")")
        return tuple(params)

    def numeric_attrs(self, sql_type: _Type) -> _Type:
        """[UNSIGNED | SIGNED | ZEROFILL]..."""
        while self.is_word("UNSIGNED", "SIGNED", "ZEROFILL"):
            word = self.advance().text.upper()
            if word == "UNSIGNED":
                sql_type = replace(sql_type, unsigned=True)
            elif word == "ZEROFILL":
                sql_type = replace(sql_type, zerofill=True)
        return sql_type

    def string_attrs(self, sql_type: _Type) -> _Type:
        """[BINARY] [CHARACTER SET | CHARSET name] [COLLATE name], in any order."""
        while True:
            if self.accept_word("BINARY"):
                sql_type = replace(sql_type, binary=True)
            elif self.is_word("CHARSET") or (
                self.is_word("CHARACTER", "CHAR") and self.is_word("SET", offset=1)
            ):
                self.pos += 1 if self.is_word("CHARSET") else 2
                sql_type = replace(sql_type, charset=self.charset_name())
            elif self.accept_word("COLLATE"):
                sql_type = replace(sql_type, collate=self.charset_name())
            else:
                return sql_type

    def charset_name(self) -> str:
        if self.tok.kind not in ("word", "ident", "string", "number"):
            raise self.error()
        return self.advance().text.lower()

    # statements

    def drop(self) -> DropFunction:
        self.expect_word("DROP")
        self.expect_word("FUNCTION")
        if_exists = self.is_word("IF") and self.is_word("EXISTS", offset=1)
        self.pos += 2 * if_exists
        schema, name = self.qualified_name()
        self.finish()
        return DropFunction(schema, name, if_exists)

    def finish(self) -> None:
        """The statement must end here (an optional ``;`` and comments allowed)."""
        if self.is_punct(";"):
            self.pos += 1
        if self.tok.kind != "end":
            raise self.error()

    def header(self) -> _Header:
        """CREATE [DEFINER=u] FUNCTION name(args) [DEFINER=u] RETURNS type
        [SQL SECURITY x]; stops before ALIAS. Raises _NotML for other CREATEs."""
        self.expect_word("CREATE")
        definer = self.definer() if self.is_word("DEFINER") else None
        if not self.accept_word("FUNCTION"):
            raise _NotML
        schema, name = self.qualified_name()
        self.expect_punct("(")
        args: list[tuple[Argument, _Type, _Tok]] = []
        while not (self.is_punct(")") and not args):
            tok = self.tok
            arg_name = self.identifier()
            arg_type = self.sql_type()
            args.append((Argument(arg_name, arg_type.render()), arg_type, tok))
            if not self.is_punct(","):
                break
            self.pos += 1
        close = self.tok
        self.expect_punct(")")
        if self.is_word("DEFINER"):
            if definer is not None:
                raise self.error()
            definer = self.definer()
        self.expect_word("RETURNS")
        returns = self.sql_type()
        security: Security | None = None
        if self.is_word("SQL") and self.is_word("SECURITY", offset=1):
            self.pos += 2
            security = (
                "INVOKER" if self.expect_word("DEFINER", "INVOKER") == "INVOKER" else "DEFINER"
            )
        return _Header(schema, name, args, close, definer, returns, security)

    def create(self) -> AliasFunction | None:
        try:
            head = self.header()
        except _NotML:
            return None
        except PlanError:
            if self.has_alias_clause():
                raise
            return None
        if not self.is_word("ALIAS"):
            if self.has_alias_clause():
                raise self.error()
            return None
        self.pos += 1
        alias = self.expect_word(SAGEMAKER_ALIAS, BEDROCK_ALIAS)
        fn = self.sagemaker(head) if alias == SAGEMAKER_ALIAS else self.bedrock(head)
        self.finish()
        _check_types(head, fn.kind)
        return replace(fn, sql=render_create(fn))

    def has_alias_clause(self) -> bool:
        """Whether the statement holds ``ALIAS AWS_...``: then it was meant as ML DDL,
        and an error before that clause must be reported, not forwarded."""
        return any(
            a.kind == "word"
            and a.text.upper() == "ALIAS"
            and b.kind == "word"
            and b.text.upper().startswith("AWS_")
            for a, b in zip(self.tokens, self.tokens[1:], strict=False)
        )

    def base(self, head: _Header, kind: Kind) -> AliasFunction:
        return AliasFunction(
            schema=head.schema,
            name=head.name,
            args=tuple(a for a, _, _ in head.args),
            returns=head.returns.render(),
            kind=kind,
            endpoint=None,
            model_id=None,
            max_batch_size=DEFAULT_MAX_BATCH_SIZE if kind == "sagemaker" else 1,
            content_type=None,
            accept=None,
            timeout_ms=None,
            definer=head.definer,
            security=head.security,
        )

    def sagemaker(self, head: _Header) -> AliasFunction:
        """ENDPOINT NAME 'x' [MAX_BATCH_SIZE n]; at least one argument."""
        if not head.args:
            raise self.error(head.close)
        self.expect_word("ENDPOINT")
        self.expect_word("NAME")
        fn = replace(self.base(head, "sagemaker"), endpoint=self.string())
        if self.accept_word("MAX_BATCH_SIZE"):
            fn = replace(fn, max_batch_size=self.positive("MAX_BATCH_SIZE"))
        return fn

    def bedrock(self, head: _Header) -> AliasFunction:
        """MODEL ID 'x' then CONTENT_TYPE, ACCEPT, TIMEOUT_MS in any order, each once;
        exactly one argument."""
        if len(head.args) != 1:
            raise self.error(head.args[1][2] if head.args else head.close)
        self.expect_word("MODEL")
        self.expect_word("ID")
        fn = replace(self.base(head, "bedrock"), model_id=self.string())
        options: dict[str, str | int] = {}
        while self.is_word("CONTENT_TYPE", "ACCEPT", "TIMEOUT_MS"):
            word = self.tok.text.upper()
            if word in options:
                raise self.error()
            self.pos += 1
            options[word] = self.positive(word) if word == "TIMEOUT_MS" else self.string()
        return replace(
            fn,
            content_type=str(options.get("CONTENT_TYPE", DEFAULT_CONTENT_TYPE)),
            accept=str(options.get("ACCEPT", DEFAULT_CONTENT_TYPE)),
            timeout_ms=int(options["TIMEOUT_MS"]) if "TIMEOUT_MS" in options else None,
        )

    def positive(self, clause: str) -> int:
        """An unsigned integer literal that must be > 0 (0 raises 1210)."""
        value, _ = self.number()
        if value <= 0:
            raise PlanError(
                f"Incorrect arguments to {clause}: {value} (must be a positive integer)",
                ER_WRONG_ARGUMENTS,
            )
        return value


def _check_types(head: _Header, kind: Kind) -> None:
    """Reject argument and return types the backend cannot exchange (1235), and
    duplicate parameter names (1330)."""
    alias = SAGEMAKER_ALIAS if kind == "sagemaker" else BEDROCK_ALIAS
    seen: set[str] = set()
    for arg, arg_type, _ in head.args:
        if arg.name.lower() in seen:
            raise PlanError(f"Duplicate parameter: {arg.name}", ER_SP_DUP_PARAM)
        seen.add(arg.name.lower())
        if arg_type.base not in NUMERIC_TYPES | CHAR_TYPES | TEXT_TYPES:
            raise _unsupported(f"{arg_type.base} as an argument type of an {alias} function")
    allowed = NUMERIC_TYPES | CHAR_TYPES if kind == "sagemaker" else CHAR_TYPES | TEXT_TYPES
    if head.returns.base not in allowed:
        raise _unsupported(f"{head.returns.base} as the return type of an {alias} function")


def _unsupported(what: str) -> PlanError:
    return PlanError(f"This version of MySQL doesn't yet support '{what}'", ER_NOT_SUPPORTED_YET)


def parse_ml_ddl(
    sql: str,
    *,
    backslash_escapes: bool = True,
    ansi_quotes: bool = False,
    syntax: SqlSyntax | None = None,
) -> AliasFunction | DropFunction | None:
    """Parse Aurora ML DDL: an :class:`AliasFunction` for ``CREATE FUNCTION ... ALIAS``,
    a :class:`DropFunction` for any ``DROP FUNCTION``, None for anything else (an
    ordinary stored function included). Malformed ML DDL raises :class:`PlanError`.
    ``backslash_escapes`` is False under the session's NO_BACKSLASH_ESCAPES, and
    ``ansi_quotes`` True under ANSI_QUOTES (double quotes delimit identifiers); ``syntax``
    the session's, when known, whose server's version says which executable comments run
    (else all do)."""
    if not looks_like_ml_ddl(sql):
        return None
    parser = _Parser(sql, backslash_escapes, ansi_quotes, syntax)
    if parser.is_word("DROP"):
        return parser.drop()
    return parser.create()
