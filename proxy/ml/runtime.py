"""Building the ML side from the settings: backends, engines, the shared cache."""

from __future__ import annotations

import logging

from ml_backends.cache import ResultCache
from ml_backends.counters import MLCounters
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import MLBackendError
from ml_backends.registry import alias_backend, sentiment_backend
from ml_backends.targets import resolve_alias_target
from proxy.config import Config, endpoint_routes
from proxy.errors import ConfigError
from proxy.ml.memory import ProcessMemory
from proxy.ml.path import AliasEngineFactory, MLRuntime
from rewriter.ddl import AliasFunction
from rewriter.functions import BUILTINS, SENTIMENT
from rewriter.plan_cache import PlanCache

log = logging.getLogger(__name__)


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


def build_runtime(config: Config) -> MLRuntime:
    """Engines for every function family, sharing one cache and one set of counters."""
    try:
        backend = sentiment_backend(config.comprehend_backend, **_backend_options(config))
    except MLBackendError as exc:
        raise ConfigError(str(exc)) from exc
    policy = BatchPolicy(
        max_batch_size=backend.max_batch_size,
        max_in_flight=config.ml_max_in_flight,
        rate_limit=config.ml_rate_limit or None,
        max_attempts=config.ml_max_attempts,
        request_timeout=config.ml_request_timeout,
    )
    cache = ResultCache(
        config.ml_cache_entries, config.ml_cache_ttl, max_bytes=config.ml_cache_memory
    )
    counters = MLCounters()
    engine = InferenceEngine(backend, policy, cache, counters)
    log.info("comprehend functions answered by the %r backend", backend.name)
    return MLRuntime(
        functions=dict(BUILTINS),
        engines={SENTIMENT: engine},
        counters=counters,
        max_backend_calls=config.ml_max_backend_calls,
        alias_engines=alias_engine_factory(config, cache, counters),
        routes=endpoint_routes(config),
        statement_memory=config.ml_statement_memory,
        memory=ProcessMemory(config.ml_memory, config.ml_memory_wait),
        plans=PlanCache(config.ml_plan_cache_entries, config.ml_plan_cache_memory),
    )


def alias_engine_factory(
    config: Config, cache: ResultCache, counters: MLCounters
) -> AliasEngineFactory:
    """Builds an alias's engine on its first call: its endpoint name or model id goes
    through the endpoint map (``--endpoint NAME=TARGET``), unmapped names are AWS's and
    must be valid AWS names (InvalidTargetName otherwise: checked again here, at call
    time, for definitions stored before the check or written around the proxy)."""
    routes = endpoint_routes(config)

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
        policy = BatchPolicy(
            max_batch_size=min(definition.max_batch_size, backend.max_batch_size),
            max_in_flight=config.ml_max_in_flight,
            rate_limit=config.ml_rate_limit or None,
            max_attempts=config.ml_max_attempts,
            request_timeout=timeout or config.ml_request_timeout,
        )
        log.info("%s answered by %r", name, backend.name)
        return InferenceEngine(backend, policy, cache, counters)

    return build
