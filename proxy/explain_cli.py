"""``mlproxy explain "SQL"``: how the proxy would run a statement, and what it would cost.

It logs in to the backend named by --backend (with that URL's user and password), runs
only the read-only key queries, and prints the rewritten statement, each call site, and
the backend requests the statement would need now (the cache of a fresh process is empty).
"""

from __future__ import annotations

from mysql_mimic.types import Capabilities

from proxy.backend import BackendConnection, Login
from proxy.config import Config, parse_backend_url
from proxy.ml_path import MLStatement, lookup_sql
from proxy.ml_runtime import build_runtime
from proxy.tls import backend_context
from rewriter.calls import register_function_names
from rewriter.plan import CallSite, MLPlan, plan_statement

_CAPABILITIES = int(
    Capabilities.CLIENT_PROTOCOL_41
    | Capabilities.CLIENT_SECURE_CONNECTION
    | Capabilities.CLIENT_PLUGIN_AUTH
    | Capabilities.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capabilities.CLIENT_LONG_PASSWORD
    | Capabilities.CLIENT_TRANSACTIONS
    | Capabilities.CLIENT_MULTI_RESULTS
)
UTF8MB4_GENERAL_CI = 45


async def explain(config: Config, sql: str) -> str:
    """The report printed by ``mlproxy explain``."""
    runtime = build_runtime(config)
    register_function_names(runtime.functions)
    plan = plan_statement(sql, runtime.functions)
    if plan is None:
        return "No ML function call: the statement goes to the backend unchanged.\n"
    backend = await _connect(config)
    try:
        statement = MLStatement(runtime, backend, plan)
        placeholders = {site.index: "NULL" for site in plan.calls}  # no lookup tables here
        wanted = statement.backend_inputs(await statement.collect(plan.calls, placeholders))
    finally:
        await backend.close()
    lines = ["Rewritten statement:", "  " + _rewritten(plan), "", "Call sites:"]
    lines += [_describe(site) for site in plan.calls]
    lines += ["", "Estimated backend requests:"]
    for family, inputs in wanted.items():
        engine = runtime.engines[family]
        batch = min((s.batch_size for s in plan.calls if s.batch_size), default=None)
        missing, requests = engine.estimate(inputs, namespace=family, batch_size=batch)
        lines.append(
            f"  {family}: {requests} request(s) for {missing} distinct input(s) "
            f"({len(inputs)} asked), backend {engine.backend.name!r}"
        )
    return "\n".join(lines) + "\n"


async def _connect(config: Config) -> BackendConnection:
    url = parse_backend_url(config.require_backend())
    login = Login(
        user=(url.user or "").encode(),
        password=(url.password or "").encode(),
        database=url.database.encode() if url.database else None,
        capabilities=_CAPABILITIES,
        collation=UTF8MB4_GENERAL_CI,
    )
    tls = (
        backend_context(config.backend_tls_ca, bool(config.backend_tls_ca))
        if config.backend_tls
        else None
    )
    return await BackendConnection.open(url.address, login, tls=tls, timeout=config.connect_timeout)


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
