"""Unit tests of proxy.config: where settings come from and how they are checked.

Covers the precedence (command line > environment > TOML file > defaults) through the
real argparse parser of ``mlproxy serve``, TOML key spelling, type conversion errors,
validation, backend URL parsing, and that ``mlproxy serve --help`` documents every setting.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proxy.cli.main import build_parser
from proxy.config import (
    ENV_PREFIX,
    Config,
    load_config,
    parse_backend_url,
    parse_host_port,
    read_users_file,
    settings,
)
from proxy.errors import ConfigError


def cli_args(*argv: str) -> dict[str, Any]:
    """What `mlproxy serve ARGV` hands to load_config (the real parser, not a dict by hand)."""
    args = vars(build_parser().parse_args(["serve", *argv]))
    args.pop("command")
    return args


def load(*argv: str, env: dict[str, str] | None = None) -> Config:
    args = cli_args(*argv)
    return load_config(args, env=env or {}, config_file=args.get("config"))


def write_toml(tmp_path: Path, text: str, name: str = "mlproxy.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- defaults and precedence --------------------------------------------------------------


def test_defaults_when_nothing_is_given() -> None:
    config = load()
    for f in settings():
        assert getattr(config, f.name) == f.default, f.name


def test_environment_overrides_the_defaults() -> None:
    config = load(
        env={
            "MLPROXY_LISTEN": "0.0.0.0:7000",
            "MLPROXY_BACKEND": "mysql://db:3307",
            "MLPROXY_MAX_CONNECTIONS": "17",
            "MLPROXY_REQUIRE_TLS": "true",
            "MLPROXY_HANDSHAKE_TIMEOUT": "2.5",
        }
    )
    assert config.listen == "0.0.0.0:7000"
    assert config.listen_address == ("0.0.0.0", 7000)
    assert config.backend == "mysql://db:3307"
    assert config.max_connections == 17
    assert config.require_tls is True
    assert config.handshake_timeout == 2.5


def test_command_line_overrides_the_environment() -> None:
    env = {
        "MLPROXY_LISTEN": "0.0.0.0:7000",
        "MLPROXY_MAX_CONNECTIONS": "17",
        "MLPROXY_REQUIRE_TLS": "true",
        "MLPROXY_TLS": "true",
    }
    config = load(
        "--listen", "127.0.0.1:7001", "--max-connections", "3", "--no-require-tls", env=env
    )
    assert config.listen == "127.0.0.1:7001"
    assert config.max_connections == 3
    assert config.require_tls is False
    assert config.tls is True  # not on the command line: the environment's value stays


def test_environment_overrides_the_file_and_the_file_overrides_defaults(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        'listen = "127.0.0.1:7100"\nmax_connections = 40\nlog_level = "debug"\n',
    )
    config = load("--config", path, env={"MLPROXY_MAX_CONNECTIONS": "41"})
    assert config.listen == "127.0.0.1:7100"  # file over default
    assert config.max_connections == 41  # environment over file
    assert config.log_level == "debug"
    assert config.shutdown_timeout == 30.0  # default


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "max_connections = 40\ntls = false\n")
    config = load("--config", path, "--max-connections", "5", "--tls")
    assert config.max_connections == 5
    assert config.tls is True


def test_config_file_named_by_environment_variable(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "max_connections = 12\n")
    assert load(env={"MLPROXY_CONFIG": path}).max_connections == 12


def test_config_flag_wins_over_config_environment_variable(tmp_path: Path) -> None:
    from_flag = write_toml(tmp_path, "max_connections = 12\n", "flag.toml")
    from_env = write_toml(tmp_path, "max_connections = 13\n", "env.toml")
    assert load("--config", from_flag, env={"MLPROXY_CONFIG": from_env}).max_connections == 12


@pytest.mark.parametrize("key", ["max-connections", "max_connections"])
def test_toml_keys_may_use_dashes_or_underscores(tmp_path: Path, key: str) -> None:
    path = write_toml(tmp_path, f"{key} = 9\nhandshake-timeout = 1.5\n")
    config = load("--config", path)
    assert config.max_connections == 9
    assert config.handshake_timeout == 1.5


def test_unknown_toml_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "max_connections = 9\nmax_conections = 10\n")
    with pytest.raises(ConfigError, match="max_conections"):
        load("--config", path)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "max_connections = = 9\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load("--config", path)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load("--config", str(tmp_path / "missing.toml"))


# -- type conversion -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_boolean_spellings_in_the_environment(text: str, expected: bool) -> None:
    assert load(env={"MLPROXY_BACKEND_TLS": text}).backend_tls is expected


@pytest.mark.parametrize(
    "env",
    [
        {"MLPROXY_MAX_CONNECTIONS": "many"},
        {"MLPROXY_MAX_CONNECTIONS": "2.5"},
        {"MLPROXY_MAX_CONNECTIONS": ""},
        {"MLPROXY_HANDSHAKE_TIMEOUT": "soon"},
        {"MLPROXY_REQUIRE_TLS": "maybe"},
        {"MLPROXY_TLS": ""},
    ],
)
def test_unconvertible_environment_values_are_config_errors(env: dict[str, str]) -> None:
    (name,) = env
    setting = name.removeprefix(ENV_PREFIX).lower()
    with pytest.raises(ConfigError, match=setting):
        load(env=env)


def test_unconvertible_command_line_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_connections"):
        load("--max-connections", "lots")


@pytest.mark.parametrize(
    "line",
    [
        'max_connections = "many"',
        "max_connections = 2.5",
        "max_connections = true",
        "handshake_timeout = false",
        'require_tls = "maybe"',
        "tls = 2",
    ],
)
def test_wrongly_typed_toml_values_are_config_errors(tmp_path: Path, line: str) -> None:
    """A TOML value of the wrong type is refused, not silently coerced (2.5 -> 2, true -> 1)."""
    path = write_toml(tmp_path, line + "\n")
    with pytest.raises(ConfigError, match=line.split()[0]):
        load("--config", path)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-connections", "0"], "max_connections"),
        (["--max-connections", "-3"], "max_connections"),
        (["--listen", "localhost"], "listen"),
        (["--listen", "127.0.0.1:65536"], "listen"),
        (["--listen", "127.0.0.1:http"], "listen"),
        (["--backend", "postgres://db:5432"], "mysql://"),
        (["--backend", "mysql://db:port"], "port"),
        (["--backend", "mysql://"], "no host"),
        (["--tls-cert", "cert.pem"], "tls_key"),
        (["--tls-key", "key.pem"], "tls_cert"),
        (["--require-tls", "--no-tls"], "require_tls"),
        (["--log-level", "chatty"], "log_level"),
        (["--handshake-timeout", "0"], "handshake_timeout"),
        (["--handshake-timeout", "-1"], "handshake_timeout"),
        (["--connect-timeout", "-5"], "connect_timeout"),
        (["--shutdown-timeout", "-1"], "shutdown_timeout"),
        (["--handshake-timeout", "nan"], "handshake_timeout"),
        (["--workers", "0"], "workers"),
        (["--workers", "65"], "workers"),
        (["--loop", "trio"], "loop"),
        (["--ml-max-statement-bytes", "1023"], "ml_max_statement_bytes"),
        (["--ml-max-statement-bytes", str(0xFFFFFF - 1)], "ml_max_statement_bytes"),
    ],
)
def test_invalid_settings_are_config_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(*argv)


def test_ml_statement_limit_bounds_are_allowed() -> None:
    """From 1 KiB to the most one packet carries with its command byte."""
    assert load("--ml-max-statement-bytes", "1024").ml_max_statement_bytes == 1024
    top = str(0xFFFFFF - 2)
    assert load("--ml-max-statement-bytes", top).ml_max_statement_bytes == 0xFFFFFF - 2


def test_zero_shutdown_timeout_is_allowed() -> None:
    """0 means: cut running statements at once on SIGTERM."""
    assert load("--shutdown-timeout", "0").shutdown_timeout == 0


def test_missing_backend_is_reported_only_when_needed() -> None:
    config = load()
    assert config.backend is None
    with pytest.raises(ConfigError, match="--backend"):
        config.require_backend()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:6033", ("127.0.0.1", 6033)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        (":3307", ("127.0.0.1", 3307)),
        ("[::1]:3308", ("::1", 3308)),
        ("db.example:3309", ("db.example", 3309)),
    ],
)
def test_host_port_parsing(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value, "listen") == expected


# -- backend URLs ----------------------------------------------------------------------------


def test_backend_url_with_everything() -> None:
    url = parse_backend_url("mysql://ad%40min:p%3Aw%2Fd%25@db.example:3307/sales")
    assert url.user == "ad@min"
    assert url.password == "p:w/d%"
    assert (url.address.host, url.address.port, url.address.unix_socket) == (
        "db.example",
        3307,
        None,
    )
    assert url.database == "sales"
    assert str(url.address) == "db.example:3307"


def test_backend_url_defaults_to_port_3306() -> None:
    url = parse_backend_url("mysql://db.example")
    assert url.address.port == 3306
    assert url.user is None and url.password is None and url.database is None


def test_mariadb_scheme_is_accepted() -> None:
    assert parse_backend_url("mariadb://db.example:3310").address.port == 3310


def test_backend_url_with_unix_socket_and_no_host() -> None:
    url = parse_backend_url("mysql:///?unix_socket=/run/mysqld/mysqld.sock")
    assert url.address.unix_socket == "/run/mysqld/mysqld.sock"
    assert str(url.address) == "/run/mysqld/mysqld.sock"


def test_backend_url_ipv6_host() -> None:
    url = parse_backend_url("mysql://[::1]:3311")
    assert (url.address.host, url.address.port) == ("::1", 3311)


@pytest.mark.parametrize(
    "url",
    ["http://db:3306", "db.example:3306", "mysql://db:99999", "mysql://db:-1", "mysql:///db"],
)
def test_bad_backend_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_backend_url(url)


def test_config_backend_address_comes_from_the_url() -> None:
    config = load("--backend", "mysql://u:p@db.example:3312/x")
    assert str(config.backend_address) == "db.example:3312"


# -- users file ------------------------------------------------------------------------------


def test_users_file_is_read_as_bytes(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[users]\napp = "app-pw"\n"jürgen" = "pässword"\n', "u.toml")
    assert read_users_file(path) == {
        b"app": b"app-pw",
        "jürgen".encode(): "pässword".encode(),
    }


@pytest.mark.parametrize("text", ['app = "pw"\n', "[users]\napp = 5\n", "[users\n"])
def test_malformed_users_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = write_toml(tmp_path, text, "u.toml")
    with pytest.raises(ConfigError, match="users file"):
        read_users_file(path)


# -- documentation ---------------------------------------------------------------------------


def test_serve_help_documents_every_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--help"],
        env={**os.environ, "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # argparse wraps lines; join them so that a name split across lines still matches.
    text = " ".join(result.stdout.split())
    assert "--config" in text and "MLPROXY_CONFIG" in text
    for f in settings():
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert ENV_PREFIX + f.name.upper() in text, f.name
        assert " ".join(f.metadata["help"].split()) in text, f.name


def _help_flags(*command: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", *command, "--help"],
        env={**os.environ, "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(re.findall(r"(--[a-z][a-z-]+)", result.stdout)) - {"--help", "--no-tls"}


def test_each_subcommand_shows_only_the_settings_it_reads() -> None:
    """``explain`` and ``functions`` read the backend (and explain the ML functions), not
    serve's listener, TLS, workers or limits: their --help lists what they use."""
    serve_only = {"--listen", "--tls", "--workers", "--max-connections", "--require-tls"}
    explain = _help_flags("explain")
    assert "--backend" in explain and "--comprehend-backend" in explain
    assert explain & serve_only == set()
    for action in ("create", "list", "show", "drop"):
        flags = _help_flags("functions", action)
        assert "--backend" in flags and flags & serve_only == set(), action
    assert serve_only <= _help_flags("serve")
