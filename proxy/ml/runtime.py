"""Building the ML side from the settings: backends, engines, the shared cache."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ml_backends.cache import AnswerCache, ResultCache
from ml_backends.control.adaptive_rate import RateLimits
from ml_backends.counters import MLCounters
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import MLBackendError
from ml_backends.python_callable import PREFIX, add_import_dir
from ml_backends.registry import alias_backend, sentiment_backend
from ml_backends.targets import resolve_alias_target
from proxy.config import Config, endpoint_routes, parse_backend_url
from proxy.errors import ConfigError
from proxy.ml.memory import ProcessMemory
from proxy.ml.path import AliasEngineFactory, MLRuntime
from proxy.ops.metrics import MeteredBackend, Metrics
from proxy.replicas.link import RedisLink
from proxy.replicas.shared_cache import SharedCache
from rewriter.ddl import AliasFunction
from rewriter.functions import BUILTINS, SENTIMENT
from rewriter.shaped.plan_cache import PlanCache

log = logging.getLogger(f"mlproxy.{__name__}")

#: The Comprehend functions' service, in the rate limits and their status rows.
COMPREHEND_SERVICE = "comprehend"


def _backend_options(config: Config) -> dict[str, object]:
    if config.comprehend_backend != "aws":
        return {}
    return {
        "region": config.aws_region,
        "endpoint_url": config.aws_endpoint_url,
        # A request the engine gave up on must not hold its thread much longer.
        "read_timeout": config.ml_request_timeout,
        "max_answer_bytes": config.ml_max_answer_bytes,
    }


#: The cache of an engine, given what the engine's answers depend on besides the
#: namespace and the input (the model it calls).
CacheFor = Callable[[str], AnswerCache]


def cache_factory(config: Config, shared: RedisLink | None) -> CacheFor:
    """Every engine's cache: one in-process ResultCache, and with ``--ml-cache`` a Redis
    layer behind it whose keys also name the backend server this proxy fronts (proxies
    in front of different servers never share answers, whatever their accounts' names)."""
    local = ResultCache(
        config.ml_cache_entries, config.ml_cache_ttl, max_bytes=config.ml_cache_memory
    )
    if shared is None:
        return lambda model: local
    server = str(parse_backend_url(config.backend).address) if config.backend else ""
    return lambda model: SharedCache(local, shared, f"{server}|{model}", config.ml_cache_ttl)


def build_runtime(
    config: Config, *, metrics: Metrics | None = None, shared: RedisLink | None = None
) -> MLRuntime:
    """Engines for every function family, sharing one cache, one set of counters, and one
    adaptive rate per service; with ``metrics``, every backend request is recorded there;
    ``shared``: the Redis of --ml-cache, the cache's second layer."""
    if _names_python_targets(config):
        add_import_dir(config.app_dir)
    try:
        backend = sentiment_backend(config.comprehend_backend, **_backend_options(config))
    except MLBackendError as exc:
        hint = ""
        if config.comprehend_backend.startswith(PREFIX):
            hint = f" (python: targets are imported from app_dir, {config.app_dir!r}, first)"
        raise ConfigError(f"{exc}{hint}") from exc
    if metrics is not None:
        backend = MeteredBackend(backend, metrics)
    policy = BatchPolicy(
        max_batch_size=backend.max_batch_size,
        max_in_flight=config.ml_max_in_flight,
        rate_limit=config.ml_rate_limit or None,
        max_attempts=config.ml_max_attempts,
        request_timeout=config.ml_request_timeout,
    )
    cache_for = cache_factory(config, shared)
    counters = MLCounters()
    rates = RateLimits(config.ml_rate_limit or None)
    model = f"comprehend:{config.comprehend_backend}|{config.aws_region}|{config.aws_endpoint_url}"
    engine = InferenceEngine(
        backend, policy, cache_for(model), counters, rate=rates.for_service(COMPREHEND_SERVICE)
    )
    log.info("comprehend functions answered by the %r backend", backend.name)
    return MLRuntime(
        functions=dict(BUILTINS),
        engines={SENTIMENT: engine},
        counters=counters,
        max_backend_calls=config.ml_max_backend_calls,
        alias_engines=alias_engine_factory(config, cache_for, counters, rates, metrics),
        routes=endpoint_routes(config),
        statement_memory=config.ml_statement_memory,
        memory=ProcessMemory(config.ml_memory, config.ml_memory_wait),
        rates=rates,
        statement_timeout=config.ml_statement_timeout,
        plans=PlanCache(config.ml_plan_cache_entries, config.ml_plan_cache_memory),
    )


def _names_python_targets(config: Config) -> bool:
    """Whether any target of the configuration is a ``python:`` callable."""
    targets = [config.comprehend_backend, *endpoint_routes(config).values()]
    return any(target.startswith(PREFIX) for target in targets)


def alias_engine_factory(
    config: Config,
    cache_for: CacheFor,
    counters: MLCounters,
    rates: RateLimits | None = None,
    metrics: Metrics | None = None,
) -> AliasEngineFactory:
    """Builds an alias's engine on its first call: its endpoint name or model id goes
    through the endpoint map (``--endpoint NAME=TARGET``), unmapped names are AWS's and
    must be valid AWS names (InvalidTargetName otherwise: checked again here, at call
    time, for definitions stored before the check or written around the proxy). Every
    engine of one endpoint name or model id shares that service's adaptive rate."""
    routes = endpoint_routes(config)
    rates = rates if rates is not None else RateLimits(config.ml_rate_limit or None)

    def build(definition: AliasFunction) -> InferenceEngine:
        name = definition.target_name
        resolved = resolve_alias_target(definition.kind, name, routes)
        timeout = definition.timeout_ms / 1000 if definition.timeout_ms else None
        backend = alias_backend(
            definition.kind,
            resolved.target,
            form=resolved.form,
            model_id=definition.model_id,
            max_batch_size=definition.max_batch_size if definition.kind == "sagemaker" else None,
            content_type=definition.content_type,
            accept=definition.accept,
            timeout=timeout or config.ml_request_timeout,
            region=config.aws_region,
            endpoint_url=config.aws_endpoint_url,
            max_concurrency=config.ml_max_in_flight,
            max_answer_bytes=config.ml_max_answer_bytes,
        )
        if metrics is not None:
            backend = MeteredBackend(backend, metrics)
        policy = BatchPolicy(
            max_batch_size=min(definition.max_batch_size, backend.max_batch_size),
            max_in_flight=config.ml_max_in_flight,
            rate_limit=config.ml_rate_limit or None,
            max_attempts=config.ml_max_attempts,
            request_timeout=timeout or config.ml_request_timeout,
        )
        log.info("%s answered by %r", name, backend.name)
        model = f"{definition.kind}:{resolved.form}:{resolved.target}"
        return InferenceEngine(
            backend, policy, cache_for(model), counters, rate=rates.for_service(name)
        )

    return build
