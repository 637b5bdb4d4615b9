"""``mlproxy demo``: a throwaway MariaDB/MySQL, the example tables, and the proxy on it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from proxy.cli import configure_logging, run_server
from proxy.config import load_config
from proxy.embedded_db import EmbeddedServer, run_sql, start_embedded_server
from proxy.server import ProxyServer

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
DEMO_DATABASE = "demo"

#: The repository's examples/ folder (the demo runs from a checkout).
DEFAULT_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def create_demo_account(server: EmbeddedServer) -> None:
    run_sql(
        server,
        f"CREATE DATABASE IF NOT EXISTS {DEMO_DATABASE};"
        f"CREATE USER IF NOT EXISTS '{DEMO_USER}'@'%' IDENTIFIED BY '{DEMO_PASSWORD}';"
        f"GRANT ALL ON {DEMO_DATABASE}.* TO '{DEMO_USER}'@'%';",
    )


def load_examples(server: EmbeddedServer, folder: Path) -> list[Path]:
    """Run every examples/*.sql (sorted) in the demo database; return the files loaded."""
    files = sorted(folder.glob("*.sql"))
    for path in files:
        run_sql(server, path.read_text(encoding="utf-8"), database=DEMO_DATABASE)
    return files


def _announce(server: ProxyServer, loaded: list[Path]) -> None:
    host, _ = server.config.listen_address
    tables = ", ".join(p.stem for p in loaded) or "none"
    print(
        f"\nmlproxy demo is ready (example files loaded: {tables}).\n"
        f"Connect with any MySQL client:\n"
        f"  mariadb -h {host} -P {server.port} -u {DEMO_USER} -p{DEMO_PASSWORD} {DEMO_DATABASE}\n"
        f"  mysql://{DEMO_USER}:{DEMO_PASSWORD}@{host}:{server.port}/{DEMO_DATABASE}\n"
        f"Stop with Ctrl-C.\n",
        file=sys.stderr,
        flush=True,
    )


def run_demo(args: dict[str, Any]) -> int:
    configure_logging(args.get("log_level") or "info")
    folder = Path(args["examples"]) if args.get("examples") else DEFAULT_EXAMPLES
    server = start_embedded_server()
    try:
        create_demo_account(server)
        loaded = load_examples(server, folder)
        config = load_config({"listen": args["listen"], "backend": server.url()}, env={})
        asyncio.run(run_server(config, on_ready=lambda proxy: _announce(proxy, loaded)))
    finally:
        server.stop()
    return 0
