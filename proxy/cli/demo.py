"""``mlproxy demo``: a throwaway MariaDB/MySQL, the example tables, and the proxy on it,
with the examples' endpoints routed to their in-process models (so the seed's churn
statements, examples/queries/churn.sql, run as they are)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from proxy.config import endpoint_routes, load_config, parse_backend_url
from proxy.embedded_db import EmbeddedServer, run_sql, start_embedded_server
from proxy.logs import configure_logging
from proxy.server import ProxyServer, run_server
from proxy.transport import event_loop

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
DEMO_DATABASE = "demo"

#: The checkout the demo runs from, and its examples/ folder.
CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_EXAMPLES = CHECKOUT / "examples"
#: examples/ subfolders of statements to run by hand, not tables to load.
QUERY_FOLDERS = ("queries",)
#: The examples' endpoints; the user's --endpoint flags come after, so theirs win.
DEMO_ENDPOINTS = ("tuning-job-123=python:examples.churn.model:predict_batch",)


def create_demo_account(server: EmbeddedServer) -> None:
    run_sql(
        server,
        f"CREATE DATABASE IF NOT EXISTS {DEMO_DATABASE};"
        f"CREATE USER IF NOT EXISTS '{DEMO_USER}'@'%' IDENTIFIED BY '{DEMO_PASSWORD}';"
        f"GRANT ALL ON {DEMO_DATABASE}.* TO '{DEMO_USER}'@'%';",
    )


def table_scripts(folder: Path) -> list[Path]:
    """examples/*.sql, then each example's own (examples/churn/customers.sql), sorted;
    not examples/queries/ (the statements a user runs once the demo is up)."""
    nested = (p for p in sorted(folder.glob("*/*.sql")) if p.parent.name not in QUERY_FOLDERS)
    return [*sorted(folder.glob("*.sql")), *nested]


def load_examples(server: EmbeddedServer, folder: Path) -> list[Path]:
    """Run every table script in the demo database; return the files loaded."""
    files = table_scripts(folder)
    for path in files:
        run_sql(server, path.read_text(encoding="utf-8"), database=DEMO_DATABASE)
    return files


def demo_tables(server: EmbeddedServer) -> dict[str, list[str]]:
    """The demo database's tables and their columns, in order (what the examples query)."""
    out = run_sql(
        server,
        "SELECT TABLE_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR ', ') "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{DEMO_DATABASE}' "
        "GROUP BY TABLE_NAME ORDER BY TABLE_NAME",
    )
    rows = (line.split("\t", 1) for line in out.splitlines()[1:] if "\t" in line)
    return {table: columns.split(", ") for table, columns in rows}


def query_files(folder: Path) -> list[Path]:
    """The statements to try once the demo is up (examples/queries/*.sql)."""
    return sorted(p for name in QUERY_FOLDERS for p in (folder / name).glob("*.sql"))


#: The statement the demo's ``mlproxy explain`` line explains.
EXPLAINED = "SELECT comment_id, aws_comprehend_detect_sentiment(comment_text, 'en') FROM comments"


def _explain_command(server: ProxyServer) -> str:
    """``mlproxy explain`` against the demo's MariaDB, as the demo's account, pasteable."""
    address = parse_backend_url(server.config.require_backend()).address
    url = f"mysql://{DEMO_USER}:{DEMO_PASSWORD}@{address.host}:{address.port}/{DEMO_DATABASE}"
    script = Path(sys.executable).parent / "mlproxy"  # the virtualenv's, as ./dev runs it
    program = _shown(script) if script.exists() else "mlproxy"
    return f"{program} explain --backend {url} {shlex.quote(EXPLAINED)}"


def _announce(server: ProxyServer, tables: dict[str, list[str]], queries: list[Path]) -> None:
    host, _ = server.config.listen_address
    client = f"mariadb -h {host} -P {server.port} -u {DEMO_USER} -p{DEMO_PASSWORD} {DEMO_DATABASE}"
    listed = "".join(f"  {name} ({', '.join(columns)})\n" for name, columns in tables.items())
    listed = listed or "  none\n"
    routes = "".join(f"  {k} -> {v}\n" for k, v in endpoint_routes(server.config).items())
    tries = "".join(f"  {client} < {_shown(path)}\n" for path in queries)
    tries = tries or "  (no examples/queries/*.sql)\n"
    print(
        f"\nmlproxy demo is ready.\n"
        f"Connect with any MySQL client:\n"
        f"  {client}\n"
        f"  mysql://{DEMO_USER}:{DEMO_PASSWORD}@{host}:{server.port}/{DEMO_DATABASE}\n"
        f"Tables in {DEMO_DATABASE} (columns):\n{listed}"
        f"Endpoints of CREATE FUNCTION ... ALIAS:\n{routes}"
        f"Try next:\n{tries}"
        f"See what the proxy would send for a statement (no model is asked):\n"
        f"  {_explain_command(server)}\n"
        f"Stop with Ctrl-C.\n",
        file=sys.stderr,
        flush=True,
    )


def _shown(path: Path) -> str:
    """A path as the user can type it from the checkout (relative when inside it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def make_examples_importable() -> None:
    """Put the checkout first on sys.path, for the ``python:examples...`` endpoints: the
    editable install maps only the proxy's own packages, and a console script (what
    ``./dev demo`` runs) does not put the working directory on the path. First, so an
    unrelated installed package named ``examples`` cannot shadow the checkout's."""
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))


def run_demo(args: dict[str, Any]) -> int:
    configure_logging(args.get("log_level") or "info")
    make_examples_importable()
    folder = Path(args["examples"]) if args.get("examples") else DEFAULT_EXAMPLES
    server = start_embedded_server()
    try:
        create_demo_account(server)
        load_examples(server, folder)
        tables, queries = demo_tables(server), query_files(folder)
        settings = {
            "listen": args["listen"],
            "backend": server.url(),
            "loop": args.get("loop"),
            "endpoint": (*DEMO_ENDPOINTS, *(args.get("endpoint") or ())),
        }
        config = load_config(settings, env={})
        event_loop.run(
            run_server(config, on_ready=lambda proxy: _announce(proxy, tables, queries)),
            config.loop,
        )
    finally:
        server.stop()
    return 0
