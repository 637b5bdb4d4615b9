"""The ``mlproxy`` command: ``serve`` (the proxy), ``explain``, ``functions`` (endpoint
aliases) and ``demo`` (everything, locally)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from proxy import __version__
from proxy.cli.functions import SETTINGS as FUNCTION_SETTINGS
from proxy.cli.functions import add_commands as add_function_commands
from proxy.cli.functions import run_functions
from proxy.config import ENV_PREFIX, load_config, settings
from proxy.errors import BackendError, BackendRejected, ConfigError, MLStatementError
from proxy.logs import configure_logging
from proxy.server import run_server
from proxy.transport import event_loop

log = logging.getLogger("mlproxy")

EXIT_CONFIG = 2
EXIT_BACKEND = 1

#: What ``mlproxy explain`` reads: the backend, and what decides the functions and their
#: requests (the serve-only settings would be accepted and ignored, and clutter --help).
EXPLAIN_SETTINGS = (
    *FUNCTION_SETTINGS,
    "app_dir",
    "comprehend_backend",
    "aws_region",
    "aws_endpoint_url",
    "endpoint",
    "ml_max_backend_calls",
)


#: The page of the project's documentation (paths in its repository) each command's
#: --help points to; tests/unit/test_docs.py checks that each exists.
DOCS_PAGES = {
    "mlproxy": "README.md (a quickstart) and docs/",
    "serve": "docs/configuration.md (every setting)",
    "explain": "docs/sql.md (EXPLAIN and mlproxy explain)",
    "demo": "README.md (the 30-second tour)",
    "functions": "docs/aliases.md (endpoint aliases)",
}


def _docs(command: str) -> str:
    return f"Documentation: {DOCS_PAGES[command]}."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlproxy",
        description="Aurora-style ML SQL functions for any MySQL or MariaDB, as a proxy.",
        epilog=_docs("mlproxy"),
    )
    parser.add_argument("--version", action="version", version=f"mlproxy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the proxy in front of a MySQL/MariaDB server", epilog=_docs("serve")
    )
    _add_settings(serve)
    explain = commands.add_parser(
        "explain",
        help="show the statement the proxy would send for one with ML calls, and its cost",
        epilog=_docs("explain"),
    )
    explain.add_argument("sql", help="the statement")
    _add_settings(explain, only=EXPLAIN_SETTINGS)
    demo = commands.add_parser(
        "demo",
        help="start a throwaway MariaDB/MySQL with the example tables, and serve it",
        epilog=_docs("demo"),
    )
    demo.add_argument(
        "--listen", default="127.0.0.1:6033", metavar="HOST:PORT", help="address for clients"
    )
    demo.add_argument(
        "--examples", default=None, metavar="DIR", help="SQL files to load (default: examples/)"
    )
    demo.add_argument(
        "--log-level", default="info", metavar="LEVEL", help="debug, info, warning or error"
    )
    demo.add_argument(
        "--loop",
        default="auto",
        metavar="NAME",
        help="auto (uvloop when installed), asyncio, uvloop",
    )
    demo.add_argument(
        "--endpoint",
        action="append",
        metavar="NAME=TARGET",
        help="route an alias endpoint, as for serve (added to, or overriding, the examples')",
    )
    functions = commands.add_parser(
        "functions",
        help="create, list, show or drop endpoint aliases (CREATE FUNCTION ... ALIAS)",
        epilog=_docs("functions"),
    )
    for action in add_function_commands(functions):
        _add_settings(action, only=FUNCTION_SETTINGS)
    return parser


def _add_settings(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    """A flag per setting (``only`` those named, for commands that read a few)."""
    parser.add_argument(
        "--config", metavar="FILE", help=f"TOML config file (or {ENV_PREFIX}CONFIG)"
    )
    for f in settings():
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        help_text = f"{f.metadata['help']} [{env}; default: {f.default}]"
        if "bool" in str(f.type):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif "tuple" in str(f.type):  # repeatable: --endpoint a=x --endpoint b=y
            parser.add_argument(
                flag, action="append", default=None, metavar=f.metadata["metavar"], help=help_text
            )
        else:
            parser.add_argument(flag, default=None, metavar=f.metadata["metavar"], help=help_text)


def _serve(args: dict[str, Any]) -> int:
    config = load_config(args, config_file=args.get("config"))
    configure_logging(config.log_level, log_format=config.log_format)
    if config.workers > 1:
        from proxy.workers import supervise  # imported lazily: one process does not need it

        return supervise(config)
    event_loop.run(run_server(config), config.loop)
    return 0


def _explain(args: dict[str, Any]) -> int:
    """Print how a statement would run; a statement the proxy would refuse gets the
    client's error as one line (``ERROR code (state): message``) and exit code 1."""
    from proxy.cli.explain import explain  # imported lazily: serve does not need it

    sql = args.pop("sql")
    config = load_config(args, config_file=args.get("config"))
    configure_logging("error")  # the serve log's warnings would repeat the error line
    try:
        print(asyncio.run(explain(config, sql)), end="")
    except (MLStatementError, BackendRejected) as exc:
        print(f"mlproxy explain: ERROR {exc.code} ({exc.sqlstate}): {exc}", file=sys.stderr)
        return EXIT_BACKEND
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    try:
        if command == "explain":
            return _explain(args)
        if command == "demo":
            from proxy.cli.demo import run_demo  # imported lazily: serve does not need it

            return run_demo(args)
        if command == "functions":
            return run_functions(args)
        return _serve(args)
    except ConfigError as exc:
        print(f"mlproxy: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BackendError as exc:
        print(f"mlproxy: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
