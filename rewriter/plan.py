"""Plan how to evaluate the ML calls of one statement, so MySQL keeps every SQL semantic.

Each call site is one of two kinds:

- **constant**: its inputs reference no column (``f('great', 'en')`` in a VALUES list or a
  FROM-less SELECT). All constant inputs are read in one query, inferred, and the answer is
  spliced into the statement as a literal.
- **row-dependent**: a *key query* lists the distinct input tuples the call can need: the
  call's own scope (its SELECT's FROM and JOINs, or an UPDATE's/DELETE's table) with only
  the ML-free, deterministic WHERE conjuncts (a superset of the rows the statement will
  evaluate). Answers go to a session temporary table, and the call's text is replaced by
  a lookup in it, keyed by the inputs' exact utf8mb4 bytes.

Then the rewritten statement runs on the backend as any other: MySQL evaluates WHERE,
GROUP BY, HAVING, ORDER BY, aggregates, joins, subqueries, UNION, CTAS and DML itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token

from rewriter.dialect import MYSQL, dialect_of
from rewriter.errors import PlanError
from rewriter.functions import MLFunction
from rewriter.lexer import ReadStatement, SqlSyntax, read_statement
from rewriter.spans import CallSpan, token_call_spans
from rewriter.sql_text import code_between, input_key, item_alias, item_aliases, text_of

_MARKER = "__mlproxy_keys__"
_NONDETERMINISTIC = {
    "RAND",
    "UUID",
    "UUID_SHORT",
    "SYSDATE",
    "NEXTVAL",
    "LASTVAL",
    "SLEEP",
    # Session state the proxy's own statements change (see MLPlan.state_calls).
    "ROW_COUNT",
    "FOUND_ROWS",
}
#: Functions that report the session's previous statement: the proxy runs statements of
#: its own before the client's, so their values are read first and spliced in.
STATE_FUNCTIONS = frozenset({"row_count", "found_rows"})
_SCOPES = (exp.Select, exp.Update, exp.Delete, exp.SetOperation)


@dataclass
class CallSite:
    """One call in the statement, and how to evaluate it."""

    index: int
    function: MLFunction
    span: CallSpan
    #: SQL text of the inputs sent to the backend, as the client wrote them.
    inputs: list[str]
    batch_size: int | None
    constant: bool
    #: For row-dependent sites: the query listing distinct input tuples (as bytes).
    key_query: str | None = None
    #: For a call in a subquery: the same over the enclosing statements' rows too, for
    #: when the subquery is correlated (its own scope alone does not resolve).
    flat_key_query: str | None = None
    #: The select items around the call whose columns must keep the name the client's
    #: text gives them (an alias is added after each): per item, the start and end
    #: offsets of the pieces of text its name is made of (rewriter.sql_text.item_aliases),
    #: the alias going after the last.
    aliases: list[tuple[int, ...]] = field(default_factory=list)
    #: For a constant site: its key row when its inputs' exact bytes are known from the
    #: statement's text alone (plain literals, rewriter.shaped.plan_cache), so no query reads them.
    known_inputs: tuple[bytes | None, ...] | None = None
    #: Per input: whether it is a literal (the same for every row, in the key query and
    #: in the statement), which an inline lookup need not compare (proxy.ml.answers).
    literal_inputs: tuple[bool, ...] = ()


@dataclass
class MLPlan:
    sql: str
    calls: list[CallSite] = field(default_factory=list)
    #: ROW_COUNT() and FOUND_ROWS() calls of the statement: (function name, span).
    state_calls: list[tuple[str, CallSpan]] = field(default_factory=list)
    #: Its executable comments' openers and ends (ReadStatement.hidden).
    hidden: tuple[tuple[int, int], ...] = ()

    def code(self, start: int, end: int) -> str:
        """The statement's text from ``start`` to ``end`` as code (``code_between``)."""
        return code_between(self.sql, start, end, self.hidden)

    @property
    def constant_calls(self) -> list[CallSite]:
        return [c for c in self.calls if c.constant]

    @property
    def queried_constants(self) -> list[CallSite]:
        """The constant sites whose inputs a query must read (their bytes are not known)."""
        return [c for c in self.calls if c.constant and c.known_inputs is None]

    def constant_query(self) -> str | None:
        """One FROM-less SELECT of the keys of every constant input not known already,
        or None."""
        keys = [input_key(text) for call in self.queried_constants for text in call.inputs]
        return "SELECT " + ", ".join(keys) if keys else None

    def waves(self) -> list[list[CallSite]]:
        """The call sites in the order they can be answered: a site whose key query reads
        another call's answers (a derived table or CTE with a call) comes after it."""
        if len(self.calls) == 1:
            return [self.calls]  # the usual statement: one call, one wave
        by_offset = {c.span.name_start: c for c in self.calls}
        waiting = {c.index: dependencies(c.key_query or "") & set(by_offset) for c in self.calls}
        done: set[int] = set()
        waves = []
        while len(done) < len(self.calls):
            ready = [
                c
                for c in self.calls
                if c.index not in done and all(by_offset[o].index in done for o in waiting[c.index])
            ]
            if not ready:
                raise PlanError("ML calls that depend on each other in a cycle", code=1235)
            waves.append(ready)
            done |= {c.index for c in ready}
        return waves

    def metadata_twin(self) -> str:
        """The statement with each call replaced by a NULL of the call's result type that
        still mentions every argument: preparing it on the backend gives the parameter
        count and the result columns a prepared statement of the original would have."""
        replacements = {}
        for call in self.calls:
            args = " OR ".join(f"({self.code(a, b)}) IS NULL" for a, b in call.span.args) or "1"
            replacements[call.index] = f"CAST(IF({args}, NULL, NULL) AS {call.function.cast_type})"
        return self.rewrite(replacements)

    def rewrite(
        self, replacements: Mapping[int, str], state: Mapping[str, str] | None = None
    ) -> str:
        """The statement with each call (by index) replaced by the given SQL text, aliases
        added where a select item's name must be kept, and ROW_COUNT()/FOUND_ROWS()
        replaced by the values in ``state`` (by function name) when given."""
        edits: Edits = {(c.span.start, 0, c.span.end): replacements[c.index] for c in self.calls}
        for name, span in self.state_calls:
            if state is not None and name in state:
                edits[(span.start, 0, span.end)] = state[name]
        for call in self.calls:
            add_aliases(edits, self.sql, call.aliases)
        return splice(self.sql, edits)


#: Changes to a statement's text: (start, 0, end) replaces that stretch; (end, 1, end)
#: inserts after it (an alias), after any replacement that ends there.
Edits = dict[tuple[int, int, int], str]


def add_aliases(edits: Edits, sql: str, aliases: Iterable[tuple[int, ...]]) -> None:
    """An alias after each select item (the offsets of the pieces its name is made of)
    that keeps its column's name as the server names it; an item two calls share gets
    one."""
    for bounds in aliases:
        edits[(bounds[-1], 1, bounds[-1])] = " AS " + item_alias(text_of(sql, bounds))


def splice(sql: str, edits: Edits) -> str:
    """``sql`` with ``edits`` made (they do not overlap)."""
    out, pos = [], 0
    for (start, _, end), text in sorted(edits.items()):
        out.append(sql[pos:start])
        out.append(text)
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def plan_statement(
    sql: str, functions: Mapping[str, MLFunction], syntax: SqlSyntax | None = None
) -> MLPlan | None:
    """The plan for ``sql``, or None when it calls no ML function (or cannot be parsed:
    the backend then answers it, with its own error if it is not SQL).

    sqlglot reads the statement's canonical twin (rewriter.lexer), in which quotes and
    comments end where the server, in the session's ``syntax``, ends them; raises
    UnreadableStatement when the text cannot be read that way."""
    read = read_statement(sql, syntax or SqlSyntax())
    parsable = _parsable(read.canonical)
    try:
        # One tokenization for the parse, the calls' spans and the select items' names.
        dialect = dialect_of(syntax or SqlSyntax())
        tokens = dialect.tokenize(parsable)
        parsed = dialect.parser().parse(tokens, parsable)
    except SqlglotError:
        return None
    statements = [s for s in parsed if s is not None]
    nodes = [
        node
        for statement in statements
        for node in statement.find_all(exp.Anonymous)
        if lookup(node, functions) is not None
    ]
    if not nodes:
        return None
    if len(statements) > 1:
        raise PlanError(
            "ML functions are supported in single statements, not in a multi-statement batch"
        )
    if isinstance(statements[0], exp.Create) and statements[0].kind == "VIEW":
        raise PlanError(
            "a view cannot call ML functions through mlproxy: the proxy evaluates calls per "
            "statement, so put the call in the query that reads the view"
        )
    spans = token_call_spans(tokens, frozenset(f.name for f in functions.values()))
    state_calls = _state_calls(parsable, tokens, spans.values())
    plan = MLPlan(sql, state_calls=state_calls, hidden=tuple(read.hidden))
    for node in sorted(nodes, key=lambda n: n.meta.get("start", 0)):
        site = _call_site(len(plan.calls), node, spans, functions, read, parsable, tokens, dialect)
        site.key_query = site.key_query and read.restore(site.key_query)
        site.flat_key_query = site.flat_key_query and read.restore(site.flat_key_query)
        plan.calls.append(site)
    plan.waves()  # calls that wait for each other: the statement's error, before anything runs
    return plan


def _state_calls(
    sql: str, tokens: list[Token], ml_spans: Iterable[CallSpan]
) -> list[tuple[str, CallSpan]]:
    """ROW_COUNT()/FOUND_ROWS() outside the ML calls (those are replaced whole)."""
    inside = [(s.start, s.end) for s in ml_spans]
    found = []
    for span in token_call_spans(tokens, STATE_FUNCTIONS).values():
        if not span.args and not any(a <= span.start < b for a, b in inside):
            name = sql[span.name_start : span.name_start + 10].lower().split("(")[0].strip()
            found.append((name, span))
    return found


_REPLACE = re.compile(r"^(\s*)REPLACE(\s)", re.IGNORECASE)


def _parsable(sql: str) -> str:
    """sqlglot reads REPLACE only as an opaque command; INSERT has the same shape, and
    "INSERT " has the same length, so every offset stays valid."""
    return _REPLACE.sub(lambda m: m.group(1) + "INSERT " + m.group(2), sql, count=1)


def _call_site(
    index: int,
    node: exp.Anonymous,
    spans: Mapping[int, CallSpan],
    functions: Mapping[str, MLFunction],
    read: ReadStatement,
    parsable: str,
    tokens: list[Token],
    dialect: MySQL,
) -> CallSite:
    """``read`` is the client's text as the lexer read it, ``parsable`` its canonical twin
    (same offsets) and ``tokens`` the twin's tokens."""
    sql = read.text
    function = lookup(node, functions)
    assert function is not None
    span = spans.get(node.meta.get("start", -1))
    if span is None:
        raise PlanError(f"cannot locate the call of {function.name}() in the statement")
    if not function.accepts(len(span.args)):
        raise PlanError(
            f"Incorrect parameter count in the call to native function '{function.name}'", code=1582
        )
    if any(_contains_call(arg, functions) for arg in node.expressions):
        raise PlanError(
            f"{function.name}() cannot take another ML function's result as input", code=1235
        )
    inputs = [
        function.input_sql(i, code_between(sql, a, b, read.hidden).strip())
        for i, (a, b) in enumerate(span.args[: function.inputs])
    ]
    site = CallSite(
        index=index,
        function=function,
        span=span,
        inputs=inputs,
        batch_size=_batch_size(node, function),
        constant=not any(_refers_to_rows(arg) for arg in node.expressions[: function.inputs]),
        aliases=item_aliases(node, span, parsable, tokens, read.hidden),
        literal_inputs=tuple(
            isinstance(arg, exp.Literal | exp.Null) for arg in node.expressions[: function.inputs]
        ),
    )
    if not site.constant:
        site.key_query = key_query(node, inputs, functions, dialect)
        site.flat_key_query = flat_key_query(node, inputs, functions, dialect)
    return site


def _batch_size(node: exp.Anonymous, function: MLFunction) -> int | None:
    if len(node.expressions) <= function.inputs:
        return None
    option = node.expressions[function.inputs]
    if isinstance(option, exp.Literal) and option.is_int and int(option.this) > 0:
        return int(option.this)
    raise PlanError(
        f"max_batch_size of {function.name}() must be a positive integer literal", code=1210
    )


def _contains_call(node: exp.Expr, functions: Mapping[str, MLFunction]) -> bool:
    return any(lookup(n, functions) is not None for n in node.find_all(exp.Anonymous))


def lookup(node: exp.Anonymous, functions: Mapping[str, MLFunction]) -> MLFunction | None:
    """The ML function a call names, if any: ``f(...)`` by its bare name (the built-ins,
    and aliases of the current database), ``db.f(...)`` by ``db.f``."""
    name = node.name.lower()
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        return functions.get(f"{parent.this.name}.{name}")
    return functions.get(name)


#: What makes an input depend on the rows: COUNT(*) and COUNT(*) OVER () name no column.
_ROW_DEPENDENT = (exp.Column, exp.Subquery, exp.Select, exp.AggFunc, exp.Window)


def _refers_to_rows(node: exp.Expr) -> bool:
    return any(isinstance(n, _ROW_DEPENDENT) for n in node.walk())


def _scope(node: exp.Expr) -> exp.Expr:
    parent = node.parent
    while parent is not None and not isinstance(parent, _SCOPES):
        parent = parent.parent
    if parent is None:
        raise PlanError("this placement of an ML function is not supported", code=1235)
    return parent


def key_query(
    node: exp.Anonymous,
    inputs: list[str],
    functions: Mapping[str, MLFunction],
    dialect: MySQL = MYSQL,
) -> str:
    """SELECT DISTINCT of the inputs' keys over the call's scope (see the module docstring).
    ML calls the query still contains (in a derived table or CTE it reads) stand as
    placeholders, filled in once those calls are answered (see ``render``)."""
    scope = _scope(node)
    if isinstance(scope, exp.Select):
        query = _select_scope(scope, node, functions)
    elif isinstance(scope, exp.SetOperation):
        query = _union_scope(scope)
    else:
        query = _dml_scope(scope, functions)
    _attach_ctes(query, scope)
    return _with_placeholders(query, functions, inputs, dialect)


def _with_placeholders(
    query: exp.Select,
    functions: Mapping[str, MLFunction],
    inputs: list[str],
    dialect: MySQL = MYSQL,
) -> str:
    for call in list(query.find_all(exp.Anonymous)):
        if lookup(call, functions) is not None:
            qualified = isinstance(call.parent, exp.Dot) and call.parent.expression is call
            whole = call.parent if qualified else call
            assert whole is not None
            whole.replace(exp.column(placeholder(call.meta.get("start", -1))))
    keys = ", ".join(input_key(text) for text in inputs)
    return query.sql(dialect=dialect).replace(_MARKER, keys, 1)


def placeholder(offset: int) -> str:
    """Stands for the ML call at ``offset`` of the statement in a key query."""
    return f"__mlproxy_call_at_{offset}__"


#: A call's placeholder in a key query (``placeholder``); group 1 its offset.
PLACEHOLDER = re.compile(r"__mlproxy_call_at_(-?[0-9]+)__")


def dependencies(key_query: str) -> set[int]:
    """Offsets of the calls a key query waits for."""
    return {int(m) for m in PLACEHOLDER.findall(key_query)}


def render(key_query: str, answers_at: Mapping[int, str]) -> str:
    """A key query with each placeholder replaced by its call's answer (SQL text)."""
    return PLACEHOLDER.sub(lambda m: answers_at[int(m.group(1))], key_query)


def _union_scope(union: exp.SetOperation) -> exp.Select:
    """A UNION's ORDER BY sees the union's rows: read them as a derived table."""
    rows = union.copy()
    for arg in ("order", "limit", "offset"):
        rows.set(arg, None)
    source = exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("_mlproxy_u")))
    return exp.select(exp.column(_MARKER)).distinct().from_(source)


def flat_key_query(
    node: exp.Anonymous,
    inputs: list[str],
    functions: Mapping[str, MLFunction],
    dialect: MySQL = MYSQL,
) -> str | None:
    """The key query over the chain of scopes from the outermost statement down to the
    call's (each one's rows and ML-free conditions, cross-joined outermost first): the
    inputs of a correlated subquery, or a superset of them. None outside subqueries."""
    chain = _scope_chain(node)
    if len(chain) < 2:
        return None
    sources: list[exp.Expr] = []
    conditions: list[exp.Expr] = []
    for scope in reversed(chain):
        sources += _sources(scope)
        where = _ml_free(scope.args.get("where"), functions, exp.Where)
        if where is not None:
            conditions.append(where.this)
    query = exp.select(exp.column(_MARKER)).distinct().from_(sources[0])
    joins = [s if isinstance(s, exp.Join) else exp.Join(this=s) for s in sources[1:]]
    query.set("joins", joins)
    if conditions:
        query.set("where", exp.Where(this=exp.and_(*conditions)))
    _strip_ml_from_joins(query, functions)
    _attach_ctes(query, chain[0])
    return _with_placeholders(query, functions, inputs, dialect)


def _scope_chain(node: exp.Expr) -> list[exp.Expr]:
    """The call's scope and the scopes around it, up to a FROM source (a derived table
    or a CTE is not correlated to what reads it)."""
    chain = [_scope(node)]
    while True:
        child, parent = chain[-1], chain[-1].parent
        while parent is not None and not isinstance(parent, _SCOPES):
            child, parent = parent, parent.parent
        if parent is None or child.arg_key in ("from_", "joins", "with_", "this"):
            return chain
        chain.append(parent)


def _sources(scope: exp.Expr) -> list[exp.Expr]:
    """A scope's row sources: a SELECT's FROM and joins, an UPDATE's/DELETE's tables."""
    if isinstance(scope, exp.Select):
        from_ = scope.args.get("from_")
        first = [from_.this.copy()] if from_ is not None else []
        return first + [join.copy() for join in scope.args.get("joins") or []]
    using = scope.args.get("using")
    return [(using if isinstance(using, exp.Expr) else scope.this).copy()]


def _select_scope(
    scope: exp.Select, node: exp.Anonymous, functions: Mapping[str, MLFunction]
) -> exp.Select:
    query = scope.copy()
    aggregated = any(isinstance(n, exp.AggFunc) for n in node.walk())
    drop = ["order", "limit", "offset", "windows", "qualify", "into", "locks"]
    if not aggregated:
        drop += ["group", "having"]
    for arg in drop:
        query.set(arg, None)
    if aggregated and query.args.get("having") is not None:
        query.set("having", _ml_free(query.args["having"], functions, exp.Having))
    query.set("where", _ml_free(query.args.get("where"), functions, exp.Where))
    _strip_ml_from_joins(query, functions)
    query.set("expressions", [exp.column(_MARKER)])
    query.set("distinct", None if aggregated else exp.Distinct())
    return query


def _dml_scope(scope: exp.Expr, functions: Mapping[str, MLFunction]) -> exp.Select:
    """An UPDATE's or DELETE's rows: its table with its joins (sqlglot keeps a multi-table
    statement's joins on the table node), or DELETE ... USING's tables."""
    using = scope.args.get("using")
    source = using if isinstance(using, exp.Expr) else scope.this
    query = exp.select(exp.column(_MARKER)).distinct().from_(source.copy())
    query.set("where", _ml_free(scope.args.get("where"), functions, exp.Where))
    _strip_ml_from_joins(query, functions)
    return query


def _attach_ctes(query: exp.Select, scope: exp.Expr) -> None:
    """Give the key query the CTEs (of the scope and of the statements around it) that
    its FROM refers to, directly or through other CTEs, and no others: a CTE holding
    the call itself must stay out."""
    available: dict[str, exp.Expr] = {}
    recursive = False
    node: exp.Expr | None = scope.parent
    query_with = query.args.get("with_")
    withs = [query_with] if query_with is not None else []
    while node is not None:
        if node.args.get("with_") is not None:
            withs.append(node.args["with_"])
        node = node.parent
    for with_ in reversed(withs):  # inner definitions shadow outer ones
        for cte in with_.expressions:
            available[cte.alias_or_name.lower()] = cte
        recursive = recursive or bool(with_.args.get("recursive"))
    needed = _referenced_ctes(query, available)
    if needed:
        ordered = [cte.copy() for cte in available.values() if cte in needed]
        query.set("with_", exp.With(expressions=ordered, recursive=recursive))
    else:
        query.set("with_", None)


def _referenced_ctes(query: exp.Expr, available: Mapping[str, exp.Expr]) -> list[exp.Expr]:
    needed: list[exp.Expr] = []
    pending = [query]
    while pending:
        node = pending.pop()
        for table in node.find_all(exp.Table):
            cte = available.get(table.name.lower())
            if cte is not None and not table.db and cte not in needed:
                needed.append(cte)
                pending.append(cte.this)
    return needed


def _ml_free(
    clause: exp.Expr | None, functions: Mapping[str, MLFunction], kind: type[exp.Expression]
) -> exp.Expr | None:
    """The clause with only its conjuncts that call no ML function and are deterministic."""
    if clause is None:
        return None
    condition = clause.this
    conjuncts = list(condition.flatten()) if isinstance(condition, exp.And) else [condition]
    keep = [c for c in conjuncts if not _contains_call(c, functions) and _deterministic(c)]
    return kind(this=exp.and_(*keep)) if keep else None


def _deterministic(node: exp.Expr) -> bool:
    for n in node.walk():
        if isinstance(n, (exp.Rand, exp.Parameter)) or (
            isinstance(n, exp.Func) and n.sql_name().upper() in _NONDETERMINISTIC
        ):
            return False
        if isinstance(n, exp.Anonymous) and n.name.upper() in _NONDETERMINISTIC:
            return False
    return True


def _strip_ml_from_joins(query: exp.Select, functions: Mapping[str, MLFunction]) -> None:
    """Drop ML-calling ON conjuncts: the join then keeps a superset of its rows."""
    for join in query.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None and _contains_call(on, functions):
            conjuncts = list(on.flatten()) if isinstance(on, exp.And) else [on]
            keep = [c for c in conjuncts if not _contains_call(c, functions)]
            join.set("on", exp.and_(*keep) if keep else exp.true())
