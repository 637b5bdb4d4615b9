"""``mlproxy functions create | list | show | drop``: endpoint aliases from the shell.

The same registry the SQL DDL writes (stored-function stubs, see rewriter.registry),
managed on a connection of the --backend URL's account, so MySQL checks the privileges
exactly as for ``CREATE FUNCTION ... ALIAS`` sent through the proxy. ``create`` builds
the Aurora DDL text from its flags and parses it with the proxy's own DDL parser: the
command line and SQL accept and refuse the same definitions, with the same messages.

Exit codes: 0 done; 1 the backend refused (its own message), or the function is not an
alias; 2 a usage mistake (a flag, or a definition the parser refuses).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ml_backends.errors import InvalidTargetName
from ml_backends.targets import check_alias_name
from proxy.config import Config, endpoint_routes, load_config, parse_backend_url
from proxy.errors import BackendRejected
from proxy.ml.registry import definitions
from proxy.transport.tls import backend_context
from proxy.upstream.backend import BackendConnection, service_login
from proxy.upstream.internal import fetch_rows
from rewriter.ddl import AliasFunction, DropFunction, parse_ml_ddl
from rewriter.ddl.types import _ident, _string
from rewriter.errors import PlanError
from rewriter.registry import definitions_query, show_create_text, stub_statement
from rewriter.sql_text import string_literal

#: The settings these commands read (the rest of Config is about serving).
SETTINGS = ("backend", "backend_tls", "backend_tls_ca", "connect_timeout")
EXIT_REFUSED = 1
EXIT_USAGE = 2
#: SERVER_STATUS_NO_BACKSLASH_ESCAPES in the login's OK packet: quote for that sql_mode.
_NO_BACKSLASH_ESCAPES = 0x200


class Refused(Exception):
    """The command cannot be done; the message says why (exit code 1, or ``code``)."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.exit_code = code


# --- the parser ---------------------------------------------------------------------------


def add_commands(functions: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The four subcommands; returns them so the caller adds the backend settings."""
    actions = functions.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an endpoint alias (CREATE FUNCTION ALIAS)")
    create.add_argument("name", help="function name, optionally schema.name")
    create.add_argument("--args", required=True, metavar="LIST", help='e.g. "a INT, b DOUBLE"')
    create.add_argument("--returns", required=True, metavar="TYPE", help="the SQL return type")
    target = create.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint", metavar="NAME", help="SageMaker endpoint name")
    target.add_argument("--model-id", metavar="ID", help="Bedrock model id")
    for flag, metavar in (
        ("--max-batch-size", "N"),
        ("--content-type", "TYPE"),
        ("--accept", "TYPE"),
        ("--timeout-ms", "MS"),
        ("--definer", "USER"),
        ("--sql-security", "DEFINER|INVOKER"),
    ):
        create.add_argument(flag, metavar=metavar, help="as the DDL clause of that name")
    listing = actions.add_parser("list", help="list the alias functions the account can see")
    listing.add_argument("--json", action="store_true", help="one JSON array, every field")
    show = actions.add_parser("show", help="print an alias function's Aurora DDL")
    drop = actions.add_parser("drop", help="drop an alias function (never an ordinary one)")
    drop.add_argument("--if-exists", action="store_true", help="no error when it does not exist")
    for parser in (show, drop):
        parser.add_argument("name", help="function name, optionally schema.name")
    for parser in (create, show, drop):
        parser.add_argument("--database", metavar="NAME", help="schema (default: the URL's)")
    listing.add_argument("--database", metavar="NAME", help="only this schema (default: all)")
    return [create, listing, show, drop]


# --- running ------------------------------------------------------------------------------


def run_functions(args: dict[str, Any]) -> int:
    """Run one subcommand; prints its output, or one error line on stderr."""
    action = args.pop("action")
    # Only the backend settings: ``create --endpoint NAME`` is not the serve setting.
    config = load_config({k: args[k] for k in SETTINGS}, config_file=args.get("config"))
    try:
        print(asyncio.run(_with_backend(config, ACTIONS[action], args)), end="")
    except PlanError as exc:  # the SQLSTATE the proxy sends for the same DDL
        return _fail(f"ERROR {exc.code} (42000): {exc}", EXIT_USAGE)
    except BackendRejected as exc:
        return _fail(f"ERROR {exc.code} ({exc.sqlstate}): {exc}", EXIT_REFUSED)
    except Refused as exc:
        return _fail(str(exc), exc.exit_code)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"mlproxy functions: {message}", file=sys.stderr)
    return code


Action = Callable[["Target", dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Target:
    """An open backend connection and the schema names default to."""

    conn: BackendConnection
    database: str | None
    #: The endpoint map of the config file / environment: names an alias may use
    #: besides AWS names (the same rule as CREATE FUNCTION through the proxy).
    routes: Mapping[str, str] = field(default_factory=dict)


async def _with_backend(config: Config, action: Action, args: dict[str, Any]) -> str:
    url = parse_backend_url(config.require_backend())
    conn = await open_backend(config)
    try:
        database = args.get("database") or url.database
        return await action(Target(conn, database, endpoint_routes(config)), args)
    finally:
        await conn.close()


async def open_backend(config: Config) -> BackendConnection:
    """Log in as the --backend URL's account, with the configured backend TLS."""
    url = parse_backend_url(config.require_backend())
    login = service_login(
        (url.user or "").encode(),
        (url.password or "").encode(),
        url.database.encode() if url.database else None,
    )
    tls = (
        backend_context(config.backend_tls_ca, bool(config.backend_tls_ca))
        if config.backend_tls
        else None
    )
    return await BackendConnection.open(url.address, login, tls=tls, timeout=config.connect_timeout)


# --- the four actions ---------------------------------------------------------------------


async def create(target: Target, args: dict[str, Any]) -> str:
    """Parse the DDL the flags spell, then store its stub on the account's connection."""
    fn = parse_alias(create_ddl(args))
    try:
        check_alias_name(fn.kind, fn.target_name, target.routes)
    except InvalidTargetName as exc:
        raise Refused(f"ERROR 1210 (HY000): {exc}", EXIT_USAGE) from None
    if fn.schema is None:
        fn = replace(fn, schema=_require_schema(target, fn.name))
    escapes = not target.conn.status & _NO_BACKSLASH_ESCAPES
    await fetch_rows(target.conn, stub_statement(fn, backslash_escapes=escapes))
    return f"created {_qualified(fn.schema, fn.name)}: {_kind(fn)} {_target(fn)!r}\n"


async def list_aliases(target: Target, args: dict[str, Any]) -> str:
    """Every alias the account can see (in --database only, when given)."""
    rows = await fetch_rows(target.conn, definitions_query(None, args.get("database")))
    found = definitions(rows)
    if args.get("json"):
        return json.dumps([_as_json(fn) for fn in found], indent=1) + "\n"
    return format_table(found)


async def show(target: Target, args: dict[str, Any]) -> str:
    """The Aurora DDL of one alias (as SHOW CREATE FUNCTION through the proxy shows it)."""
    fn = await _find_alias(target, args["name"])
    return show_create_text(fn) + ";\n" if fn else ""


async def drop(target: Target, args: dict[str, Any]) -> str:
    """Drop an alias; an ordinary stored function of that name is refused, untouched.
    (Between the check and the DROP another session could swap the function: DDL cannot
    share a transaction, and the window is one round trip.)"""
    fn = await _find_alias(target, args["name"], if_exists=args.get("if_exists", False))
    if fn is None:
        return ""
    name = _qualified(fn.schema, fn.name)
    await fetch_rows(target.conn, f"DROP FUNCTION {_ident(fn.schema or '')}.{_ident(fn.name)}")
    return f"dropped {name}\n"


ACTIONS: dict[str, Action] = {"create": create, "list": list_aliases, "show": show, "drop": drop}


# --- helpers ------------------------------------------------------------------------------


def create_ddl(args: dict[str, Any]) -> str:
    """The Aurora ``CREATE FUNCTION ... ALIAS`` the flags spell. Strings are quoted here;
    names, types and numbers go in as typed, for the parser to judge."""
    definer = f"DEFINER={args['definer']} " if args.get("definer") else ""
    head = f"CREATE {definer}FUNCTION {args['name']}({args['args']}) RETURNS {args['returns']}"
    if args.get("sql_security"):
        head += f" SQL SECURITY {args['sql_security']}"
    if args.get("endpoint") is not None:
        clauses = [f"ALIAS AWS_SAGEMAKER_INVOKE_ENDPOINT ENDPOINT NAME {_string(args['endpoint'])}"]
    else:
        clauses = [f"ALIAS AWS_BEDROCK_INVOKE_MODEL MODEL ID {_string(args['model_id'])}"]
    for flag, quote in (
        ("max_batch_size", False),
        ("content_type", True),
        ("accept", True),
        ("timeout_ms", False),
    ):
        value = args.get(flag)
        if value is not None:
            clauses.append(f"{flag.upper()} {_string(value) if quote else value}")
    return " ".join([head, *clauses])


def parse_alias(ddl: str) -> AliasFunction:
    """The parsed alias; PlanError (the parser's own) when the flags spell bad DDL."""
    parsed = parse_ml_ddl(ddl)
    if not isinstance(parsed, AliasFunction):  # a flag's text swallowed the ALIAS clause
        raise Refused(f"these flags do not make an alias function: {ddl}", EXIT_USAGE)
    return parsed


async def _find_alias(
    target: Target, name_text: str, *, if_exists: bool = False
) -> AliasFunction | None:
    """The alias ``name_text`` names; None only with ``if_exists`` when nothing has that
    name; Refused when it does not exist or is an ordinary stored function."""
    schema, name = _parse_name(name_text)
    schema = schema or _require_schema(target, name)
    rows = await fetch_rows(target.conn, definitions_query([name], schema))
    found = definitions(rows)
    if found:
        return found[0]
    exists = await fetch_rows(target.conn, _routine_exists(schema, name))
    if exists:
        raise Refused(
            f"{_qualified(schema, name)} is an ordinary stored function, not an mlproxy "
            "alias: drop or show it with SQL"
        )
    if if_exists:
        return None
    raise Refused(f"ERROR 1305 (42000): FUNCTION {schema}.{name} does not exist")


def _parse_name(text: str) -> tuple[str | None, str]:
    """``name`` or ``schema.name`` with MySQL's quoting rules (the DDL parser's own)."""
    parsed = parse_ml_ddl(f"DROP FUNCTION {text}")
    assert isinstance(parsed, DropFunction)
    return parsed.schema, parsed.name


def _routine_exists(schema: str, name: str) -> str:
    return (
        "SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' "
        f"AND ROUTINE_SCHEMA = {string_literal(schema)} AND ROUTINE_NAME = {string_literal(name)}"
    )


def _require_schema(target: Target, name: str) -> str:
    if target.database is None:
        raise Refused(
            f"no database for {name!r}: write schema.name, pass --database, "
            "or put a database in the --backend URL",
            EXIT_USAGE,
        )
    return target.database


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _kind(fn: AliasFunction) -> str:
    return "SageMaker endpoint" if fn.kind == "sagemaker" else "Bedrock model"


def _target(fn: AliasFunction) -> str:
    return fn.target_name


COLUMNS = ("schema", "name", "kind", "endpoint/model id", "returns", "args")


def format_table(found: Sequence[AliasFunction]) -> str:
    """An aligned table, one alias a line; the argument list last (it is the longest)."""
    if not found:
        return "no alias functions\n"
    rows = [COLUMNS, *map(_row, found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = ("  ".join([*map(str.ljust, row, widths), row[-1]]) for row in rows)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _row(fn: AliasFunction) -> tuple[str, ...]:
    args = ", ".join(f"{a.name} {a.sql_type}" for a in fn.args)
    return (fn.schema or "", fn.name, fn.kind, _target(fn), fn.returns, args)


def _as_json(fn: AliasFunction) -> dict[str, Any]:
    return {
        "schema": fn.schema,
        "name": fn.name,
        "kind": fn.kind,
        "endpoint": fn.endpoint,
        "model_id": fn.model_id,
        "args": [{"name": a.name, "type": a.sql_type} for a in fn.args],
        "returns": fn.returns,
        "max_batch_size": fn.max_batch_size,
        "content_type": fn.content_type,
        "accept": fn.accept,
        "timeout_ms": fn.timeout_ms,
        "definer": fn.definer,
        "security": fn.security,
        "ddl": show_create_text(fn),
    }
