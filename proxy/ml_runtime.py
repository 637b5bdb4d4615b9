"""Building the ML side from the settings: backends, engines, the shared cache."""

from __future__ import annotations

import logging

from ml_backends.cache import ResultCache
from ml_backends.counters import MLCounters
from ml_backends.engine import BatchPolicy, InferenceEngine
from ml_backends.errors import MLBackendError
from ml_backends.registry import sentiment_backend
from proxy.config import Config
from proxy.errors import ConfigError
from proxy.ml_path import MLRuntime
from rewriter.functions import BUILTINS, SENTIMENT

log = logging.getLogger(__name__)


def _backend_options(config: Config) -> dict[str, object]:
    if config.comprehend_backend != "aws":
        return {}
    return {
        "region": config.aws_region,
        "endpoint_url": config.aws_endpoint_url,
        # A request the engine gave up on must not hold its thread much longer.
        "read_timeout": config.ml_request_timeout,
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
    cache = ResultCache(config.ml_cache_entries, config.ml_cache_ttl)
    counters = MLCounters()
    engine = InferenceEngine(backend, policy, cache, counters)
    log.info("comprehend functions answered by the %r backend", backend.name)
    return MLRuntime(
        functions=dict(BUILTINS),
        engines={SENTIMENT: engine},
        counters=counters,
        max_backend_calls=config.ml_max_backend_calls,
    )
