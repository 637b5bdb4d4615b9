"""``mlproxy explain "SQL"``: how the proxy would run a statement, and what it would cost.

It logs in to the backend named by --backend (with that URL's user and password), runs
only the read-only key queries, and prints the rewritten statement, each call site, and
the backend requests the statement would need now (the cache of a fresh process is empty).

The rewritten statement is the one the proxy would send: each call's form is chosen from
the key queries' real rows by the code the run uses (proxy.ml.answers.inline_lookup): few
distinct inputs go inline (``CAST(ELT(FIELD(...)))``), many into a temporary lookup table
(``_mlproxy_ml_N``). Only the answers are unknown (no model is asked): each is written
``<answer>``. A call whose inputs read another call's answers (a derived table with a call)
is shown with its table form: which form it gets depends on those answers.

A statement the proxy would refuse gets the error a client would get, from the same code
(a wrong argument count 1582, an unsupported language 1210, an unusable target, the
backend's own 1054 or 1146...): the CLI prints it as one line and exits 1. A statement
over the request cap is explained, with a line saying the proxy would refuse it (1226).
"""

from __future__ import annotations

from collections.abc import Hashable

from proxy.cli.functions import open_backend
from proxy.config import Config, parse_backend_url
from proxy.errors import MLStatementError
from proxy.ml.answers import UNASKED, backend_input, inline_lookup, typed_literal
from proxy.ml.path import MLRuntime, MLStatement, engine_of, lookup_sql, plan_ml_statement
from proxy.ml.registry import visible_aliases
from proxy.ml.runtime import build_runtime
from proxy.ml.settings import read_settings
from proxy.upstream.internal import Row
from rewriter.calls import register_function_names
from rewriter.errors import PlanError
from rewriter.lexer import UnreadableStatement
from rewriter.plan import CallSite, MLPlan


async def explain(config: Config, sql: str) -> str:
    """The report printed by ``mlproxy explain``."""
    runtime = build_runtime(config)
    backend = await open_backend(config)
    try:
        url = parse_backend_url(config.require_backend())
        functions = {**runtime.functions, **await visible_aliases(backend, url.database)}
        register_function_names(f.name for f in functions.values())
        settings = await read_settings(backend, config.ml_max_backend_calls)
        try:
            plan = plan_ml_statement(sql, functions, settings.syntax)  # the server's sql_mode
        except UnreadableStatement as exc:
            return f"The proxy cannot read {exc}: the statement goes to the backend unchanged.\n"
        if plan is None:
            return "No ML function call: the statement goes to the backend unchanged.\n"
        later = _reading_other_calls(plan)
        statement = MLStatement(runtime, backend, plan, settings)
        # Key queries reading other calls get NULL for them: their answers are unknown.
        inputs = await statement.collect(plan.calls, {site.index: "NULL" for site in plan.calls})
        wanted = await statement.backend_inputs(inputs)
    finally:
        await backend.close()
    forms = {
        s.index: lookup_sql(s)
        if s.index in later
        else _form(s, inputs.by_site[s.index], settings.syntax.mariadb)
        for s in plan.calls
    }
    lines = ["Rewritten statement:", "  " + plan.rewrite(forms), "", "Call sites:"]
    lines += [_describe(site, forms[site.index], site.index in later) for site in plan.calls]
    lines += ["", "Estimated backend requests:"]
    lines += await _estimates(runtime, plan, wanted, settings.max_backend_calls)
    return "\n".join(lines) + "\n"


async def _estimates(
    runtime: MLRuntime, plan: MLPlan, wanted: dict[str, list[Hashable]], cap: int
) -> list[str]:
    """Per family, the requests its inputs need now, and whether the cap would refuse."""
    by_family = {site.function.family: site.function for site in plan.calls}
    batch = min((s.batch_size for s in plan.calls if s.batch_size), default=None)
    lines = []
    for family, asked in wanted.items():
        engine = engine_of(runtime, by_family[family])
        missing, requests = await engine.estimate(asked, namespace=family, batch_size=batch)
        lines.append(
            f"  {family}: {requests} request(s) for {missing} distinct input(s) "
            f"({len(asked)} asked), backend {engine.backend.name!r}"
        )
        if engine.backend.metered and 0 < cap < requests:
            lines.append(
                f"  over ml_max_backend_calls ({cap}): the proxy would refuse the statement (1226)"
            )
    return lines


def _reading_other_calls(plan: MLPlan) -> set[int]:
    """The calls whose inputs read other calls' answers (after the first wave)."""
    try:
        waves = plan.waves()
    except PlanError as exc:  # calls reading each other in a cycle: refused as in a run
        raise MLStatementError(str(exc), exc.code) from exc
    return {site.index for wave in waves[1:] for site in wave}


def _form(site: CallSite, rows: list[Row], mariadb: bool) -> str:
    """What replaces the call in the run, as proxy.ml.path's _materialize decides it,
    with each answer that the model would be asked for unknown."""
    answers: dict[Row, object] = {
        row: None if backend_input(site.function, row) is None else UNASKED for row in rows
    }
    if site.constant:
        (row,) = rows
        return typed_literal(site.function, answers[row], mariadb=mariadb)
    inline = inline_lookup(site, answers)
    return lookup_sql(site) if inline is None else inline


def _describe(site: CallSite, form: str, reads_calls: bool) -> str:
    kind = "constant inputs" if site.constant else "row-dependent"
    text = f"  #{site.index} {site.function.name}({', '.join(site.inputs)}): {kind}"
    if reads_calls:
        text += ", reads other calls' answers: inline or a table depending on them"
    elif not site.constant:
        text += ", answers in a lookup table" if "_mlproxy_ml_" in form else ", answers inline"
    if site.key_query:
        text += f"\n     key query: {site.key_query}"
    return text
