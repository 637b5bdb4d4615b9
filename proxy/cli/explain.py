"""``mlproxy explain "SQL"``: how the proxy would run a statement, and what it would cost.

It logs in to the backend named by --backend (with that URL's user and password), runs
only the read-only key queries, and prints the rewritten statement, each call site, and
the backend requests the statement would need now (the cache of a fresh process is empty).

A statement the proxy would refuse gets the error a client would get, from the same code
(a wrong argument count 1582, an unsupported language 1210, an unusable target, the
backend's own 1054 or 1146...): the CLI prints it as one line and exits 1. A statement
over the request cap is explained, with a line saying the proxy would refuse it (1226).
"""

from __future__ import annotations

from proxy.cli.functions import open_backend
from proxy.config import Config, parse_backend_url
from proxy.ml.path import MLStatement, engine_of, lookup_sql, plan_ml_statement
from proxy.ml.registry import visible_aliases
from proxy.ml.runtime import build_runtime
from proxy.ml.settings import read_settings
from rewriter.calls import register_function_names
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
        statement = MLStatement(runtime, backend, plan, settings)
        placeholders = {site.index: "NULL" for site in plan.calls}  # no lookup tables here
        wanted = await statement.backend_inputs(await statement.collect(plan.calls, placeholders))
    finally:
        await backend.close()
    by_family = {site.function.family: site.function for site in plan.calls}
    lines = ["Rewritten statement:", "  " + _rewritten(plan), "", "Call sites:"]
    lines += [_describe(site) for site in plan.calls]
    lines += ["", "Estimated backend requests:"]
    for family, inputs in wanted.items():
        engine = engine_of(runtime, by_family[family])
        batch = min((s.batch_size for s in plan.calls if s.batch_size), default=None)
        missing, requests = await engine.estimate(inputs, namespace=family, batch_size=batch)
        lines.append(
            f"  {family}: {requests} request(s) for {missing} distinct input(s) "
            f"({len(inputs)} asked), backend {engine.backend.name!r}"
        )
        cap = settings.max_backend_calls
        if engine.backend.metered and 0 < cap < requests:
            lines.append(
                f"  over ml_max_backend_calls ({cap}): the proxy would refuse the statement (1226)"
            )
    return "\n".join(lines) + "\n"


def _rewritten(plan: MLPlan) -> str:
    return plan.rewrite(
        {
            s.index: f"<answer of call {s.index}>" if s.constant else lookup_sql(s)
            for s in plan.calls
        }
    )


def _describe(site: CallSite) -> str:
    kind = "constant inputs" if site.constant else "row-dependent"
    text = f"  #{site.index} {site.function.name}({', '.join(site.inputs)}): {kind}"
    if site.key_query:
        text += f"\n     key query: {site.key_query}"
    return text
