"""Settings: one dataclass, read from the command line, the environment and a TOML file.

Each field is written once, here; its help text, its ``--flag``, its ``MLPROXY_NAME``
variable and its TOML key all come from the field. Precedence: command line, then
environment, then file, then the default.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.errors import ConfigError
from proxy.session.kill import MAX_WORKERS
from proxy.transport.event_loop import resolve as resolve_loop
from proxy.upstream.backend import BackendAddress
from proxy.wire.packets import MAX_PAYLOAD

ENV_PREFIX = "MLPROXY_"

#: ml_max_statement_bytes's range: a command up to it (and its command byte) is read whole,
#: which is one packet at most (a packet carries less than 16 MiB).
MIN_ML_STATEMENT_BYTES = 1 << 10
#: The smallest ml_max_answer_bytes: below it even a small batch's answers would not fit.
MIN_ML_ANSWER_BYTES = 1 << 10
MAX_ML_STATEMENT_BYTES = MAX_PAYLOAD - 2


def _setting(default: Any, help: str, metavar: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "metavar": metavar})


@dataclass(frozen=True)
class Config:
    """Everything `mlproxy serve` can be told."""

    listen: str = _setting(
        "127.0.0.1:6033", "address for MySQL clients (port 0: any free port)", "HOST:PORT"
    )
    backend: str | None = _setting(
        None,
        "the MySQL/MariaDB server: mysql://[user:pass@]host[:port][/db][?unix_socket=PATH]",
        "URL",
    )
    backend_tls: bool = _setting(False, "use TLS to the backend")
    backend_tls_ca: str | None = _setting(
        None, "CA file to verify the backend's certificate", "FILE"
    )
    tls: bool = _setting(
        True, "offer TLS to clients (a self-signed certificate unless one is given)"
    )
    tls_cert: str | None = _setting(None, "certificate (PEM) presented to clients", "FILE")
    tls_key: str | None = _setting(None, "private key (PEM) of --tls-cert", "FILE")
    require_tls: bool = _setting(False, "refuse clients that do not use TLS")
    users_file: str | None = _setting(
        None,
        'TOML file of [users] name = "password", for mysql_native_password-only clients',
        "FILE",
    )
    max_connections: int = _setting(
        1024, "logged-in client sessions served at once; more get error 1040", "N"
    )
    max_pending_logins: int = _setting(
        512, "connections still logging in, at once; more get error 1040 instead of a greeting", "N"
    )
    max_pending_logins_per_address: int = _setting(
        128,
        "connections still logging in from one client address (IPv6: one /64); "
        "more get error 1040 instead of a greeting",
        "N",
    )
    connect_timeout: float = _setting(
        10.0, "seconds to connect and log in to the backend", "SECONDS"
    )
    handshake_timeout: float = _setting(
        10.0, "seconds a client has to log in, however slowly it sends", "SECONDS"
    )
    shutdown_timeout: float = _setting(
        30.0, "seconds running statements get to finish on SIGTERM", "SECONDS"
    )
    log_level: str = _setting("info", "debug, info, warning or error", "LEVEL")
    log_format: str = _setting(
        "text", "text (one line per record) or json (one JSON object per line)", "FORMAT"
    )
    metrics_listen: str | None = _setting(
        None, "address for /metrics, /healthz and /readyz over HTTP (off when unset)", "HOST:PORT"
    )
    loop: str = _setting(
        "auto", "event loop: auto (uvloop when installed, else asyncio), asyncio or uvloop", "NAME"
    )
    workers: int = _setting(
        1, "processes sharing the listening port (SO_REUSEPORT), for hosts with more cores", "N"
    )
    app_dir: str = _setting(
        ".",
        "directory python: targets are imported from, put first on sys.path as python -m "
        "puts the working directory (default: the working directory)",
        "DIR",
    )
    comprehend_backend: str = _setting(
        "local",
        "what answers aws_comprehend_*: local (offline VADER), aws, or python:module:function",
        "NAME",
    )
    aws_region: str | None = _setting(None, "AWS region (else the standard boto3 chain)", "REGION")
    aws_endpoint_url: str | None = _setting(
        None, "AWS endpoint override (a local or private endpoint)", "URL"
    )
    ml_max_in_flight: int = _setting(8, "backend requests in flight at once, per backend", "N")
    ml_rate_limit: float = _setting(
        0.0,
        "the most backend requests per second per service, all sessions: a ceiling over "
        "the rate the proxy finds by itself (0: none)",
        "N",
    )
    ml_max_attempts: int = _setting(
        4,
        "attempts per backend request for 5xx answers, timeouts and unreachable services "
        "(throttled requests are retried within ml_statement_timeout instead)",
        "N",
    )
    ml_request_timeout: float = _setting(60.0, "seconds one backend request may take", "SECONDS")
    ml_statement_timeout: float = _setting(
        300.0,
        "seconds an ML statement's inference may take, throttled retries included; the "
        "session's max_statement_time / max_execution_time when smaller (0: no limit)",
        "SECONDS",
    )
    ml_cache_entries: int = _setting(
        100_000, "answers kept in the shared result cache (0: no cache)", "N"
    )
    ml_cache_ttl: float = _setting(3600.0, "seconds an answer stays in the cache", "SECONDS")
    ml_cache_memory: int = _setting(
        64 << 20, "bytes of answers the shared result cache holds (0: no cache)", "BYTES"
    )
    ml_cache: str | None = _setting(
        None,
        "a Redis or Valkey that replicas share answers through: redis://[:PASSWORD@]HOST:PORT/DB "
        "(rediss:// for TLS); answers are looked up in the process first, then there "
        "(default: in-process only)",
        "URL",
    )
    replica_registry: str | None = _setting(
        None,
        "the Redis through which replicas hand out connection ids and pass on KILLs of each "
        "other's connections: a redis:// or rediss:// URL, or off (default: ml_cache's Redis)",
        "URL",
    )
    ml_plan_cache_entries: int = _setting(
        4096,
        "statement shapes whose ML plan is kept, shared by all sessions (0: plan every statement)",
        "N",
    )
    ml_plan_cache_memory: int = _setting(
        16 << 20, "bytes the kept ML plans may take (0: plan every statement)", "BYTES"
    )
    endpoint: tuple[str, ...] = _setting(
        (),
        "route an alias's endpoint name or model id to a target: NAME=TARGET, repeatable; "
        "TARGET is http(s)://... (SageMaker-compatible), python:module:function, "
        "openai+http(s)://... (chat completions) or another AWS name",
        "NAME=TARGET",
    )
    registry_refresh: float = _setting(
        1.0, "seconds between reads of the backend's alias functions", "SECONDS"
    )
    ml_max_backend_calls: int = _setting(
        1000, "backend requests one statement may need before it is refused (0: no limit)", "N"
    )
    ml_max_statement_bytes: int = _setting(
        1 << 20,
        "largest ML statement the proxy reads and parses (long data of an ML prepared "
        "statement counted); larger commands are relayed as they arrive, never held",
        "BYTES",
    )
    ml_statement_memory: int = _setting(
        64 << 20,
        "bytes of key rows and answers one ML statement may hold in the proxy; "
        "past it the statement fails with 1041",
        "BYTES",
    )
    ml_memory: int = _setting(
        512 << 20,
        "bytes all ML statements of a process may hold together; past it a statement "
        "fails with 1041 and new ones wait up to ml_memory_wait",
        "BYTES",
    )
    ml_max_answer_bytes: int = _setting(
        16 << 20,
        "largest response body one model request may answer; past it the request fails",
        "BYTES",
    )
    ml_memory_wait: float = _setting(
        5.0, "seconds a new ML statement waits for ml_memory before it fails with 1041", "SECONDS"
    )

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, "listen")

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        if not self.metrics_listen:
            return None
        return parse_host_port(self.metrics_listen, "metrics_listen")

    @property
    def backend_address(self) -> BackendAddress:
        return parse_backend_url(self.require_backend()).address

    def require_backend(self) -> str:
        if not self.backend:
            raise ConfigError(
                "no backend configured: pass --backend mysql://host:port or set MLPROXY_BACKEND"
            )
        return self.backend


@dataclass(frozen=True)
class BackendURL:
    address: BackendAddress
    user: str | None
    password: str | None
    database: str | None


def parse_backend_url(url: str) -> BackendURL:
    """Parse mysql://[user:pass@]host[:port][/db][?unix_socket=PATH]."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ConfigError(f"backend URL must start with mysql://, got {url!r}")
    try:
        port = parts.port or 3306
    except ValueError as exc:
        raise ConfigError(f"backend URL has a bad port: {url!r}") from exc
    socket = parse_qs(parts.query).get("unix_socket", [None])[0]
    if not parts.hostname and not socket:
        raise ConfigError(f"backend URL names no host: {url!r}")
    return BackendURL(
        address=BackendAddress(parts.hostname or "localhost", port, socket),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=parts.path.lstrip("/") or None,
    )


def parse_host_port(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name} must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def settings() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(Config)


def _convert(name: str, value: Any, kind: Any) -> Any:
    kinds = str(kind)
    try:
        if "tuple" in kinds:
            return _to_routes(name, value)
        if "bool" in kinds:
            return _to_bool(value)
        if isinstance(value, bool):
            raise ValueError(value)  # TOML true for a number: refuse, never coerce to 1
        if "int" in kinds:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)  # TOML 2.5: refuse, never truncate
            return int(value)
        if "float" in kinds:
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: cannot use {value!r}") from exc
    return None if value is None else str(value)


def _to_routes(name: str, value: Any) -> tuple[str, ...]:
    """NAME=TARGET pairs from a list (flags, TOML), a TOML table, or whitespace-separated
    text (the environment)."""
    if isinstance(value, Mapping):
        items = [f"{key}={target}" for key, target in value.items()]
    elif isinstance(value, str):
        items = value.split()
    else:
        items = [str(item) for item in value]
    for item in items:
        key, sep, target = item.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise ConfigError(f"setting {name}: expected NAME=TARGET, got {item!r}")
    return tuple(items)


def endpoint_routes(config: Config) -> dict[str, str]:
    """The endpoint map: endpoint name or model id -> target (a later entry wins)."""
    routes = {}
    for item in config.endpoint:
        key, _, target = item.partition("=")
        routes[key.strip()] = target.strip()
    return routes


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def read_config_file(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    known = {f.name for f in settings()}
    values = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return values


def load_config(
    cli: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Config:
    """Merge the sources (command line over environment over file over defaults)."""
    env = os.environ if env is None else env
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    merged: dict[str, Any] = read_config_file(config_file) if config_file else {}
    for f in settings():
        variable = ENV_PREFIX + f.name.upper()
        if variable in env:
            merged[f.name] = env[variable]
        if cli.get(f.name) is not None:
            merged[f.name] = cli[f.name]
    values = {name: _convert(name, value, _kind(name)) for name, value in merged.items()}
    config = Config(**values)
    _validate(config)
    return config


def _kind(name: str) -> Any:
    return next(f.type for f in settings() if f.name == name)


def _validate(config: Config) -> None:
    config.listen_address  # noqa: B018 - parses, raising ConfigError when malformed
    config.metrics_address  # noqa: B018 - the same
    if config.log_format not in ("text", "json"):
        raise ConfigError(f"log_format must be text or json, not {config.log_format!r}")
    if config.backend:
        parse_backend_url(config.backend)
    for name in ("max_connections", "max_pending_logins", "max_pending_logins_per_address"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    for name in ("connect_timeout", "handshake_timeout"):
        if not getattr(config, name) > 0:  # also refuses NaN
            raise ConfigError(f"{name} must be a positive number of seconds")
    if not config.shutdown_timeout >= 0:
        raise ConfigError("shutdown_timeout must be zero or a positive number of seconds")
    for name in ("ml_max_in_flight", "ml_max_attempts"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if not config.registry_refresh > 0:
        raise ConfigError("registry_refresh must be a positive number of seconds")
    if not config.ml_request_timeout > 0:
        raise ConfigError("ml_request_timeout must be a positive number of seconds")
    if not config.ml_statement_timeout >= 0:
        raise ConfigError("ml_statement_timeout must be zero or a positive number of seconds")
    if config.ml_rate_limit < 0 or config.ml_cache_entries < 0 or config.ml_max_backend_calls < 0:
        raise ConfigError(
            "ml_rate_limit, ml_cache_entries and ml_max_backend_calls cannot be negative"
        )
    if config.ml_max_answer_bytes < MIN_ML_ANSWER_BYTES:
        raise ConfigError(f"ml_max_answer_bytes must be at least {MIN_ML_ANSWER_BYTES}")
    if not MIN_ML_STATEMENT_BYTES <= config.ml_max_statement_bytes <= MAX_ML_STATEMENT_BYTES:
        raise ConfigError(
            f"ml_max_statement_bytes must be between {MIN_ML_STATEMENT_BYTES}"
            f" and {MAX_ML_STATEMENT_BYTES}"
        )
    for name in ("ml_statement_memory", "ml_memory"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1 byte")
    if config.ml_cache_memory < 0 or not config.ml_memory_wait >= 0:
        raise ConfigError("ml_cache_memory and ml_memory_wait cannot be negative")
    _validate_redis_urls(config)
    if config.ml_plan_cache_entries < 0 or config.ml_plan_cache_memory < 0:
        raise ConfigError("ml_plan_cache_entries and ml_plan_cache_memory cannot be negative")
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("tls_cert and tls_key go together")
    if config.require_tls and not config.tls:
        raise ConfigError("require_tls needs tls")
    if config.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            f"log_level must be debug, info, warning or error, not {config.log_level!r}"
        )
    resolve_loop(config.loop)  # raises ConfigError for an unknown name or a missing uvloop
    _validate_workers(config.workers)


#: The URL schemes of a Redis or Valkey server (plain, TLS, a Unix socket).
REDIS_SCHEMES = ("redis", "rediss", "unix")


def redacted_url(url: str) -> str:
    """A Redis URL without its password (or user), for logs and errors.

    >>> redacted_url("rediss://:s3cret@cache.internal:6380/2")
    'rediss://cache.internal:6380/2'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _validate_redis_urls(config: Config) -> None:
    for name in ("ml_cache", "replica_registry"):
        value = getattr(config, name)
        if value is None or (name == "replica_registry" and value == "off"):
            continue
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ConfigError(f"{name} has a bad port: {redacted_url(value)}") from None
        if parts.scheme not in REDIS_SCHEMES or not (parts.hostname or parts.path):
            raise ConfigError(
                f"{name} must be a redis://HOST:PORT/DB, rediss://... or unix://PATH URL"
                + (", or off" if name == "replica_registry" else "")
                + " (the value is not repeated here: it may hold a password)"
            )


def replica_registry_url(config: Config) -> str | None:
    """The Redis of the replica registry: its own setting, else ml_cache's (None: off)."""
    if config.replica_registry == "off":
        return None
    return config.replica_registry or config.ml_cache


def _validate_workers(workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers must be between 1 and {MAX_WORKERS}")
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("workers above 1 need SO_REUSEPORT, which this platform lacks")


def read_users_file(path: str) -> dict[bytes, bytes]:
    """The users file: a [users] table of name = "password"."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read users file {path}: {exc}") from exc
    users = data.get("users")
    if not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
        raise ConfigError(f'users file {path} needs a [users] table of name = "password"')
    return {name.encode("utf-8"): password.encode("utf-8") for name, password in users.items()}
