"""The endpoint-alias registry as one proxy sees it (the SQL is in rewriter.registry).

Two questions, answered differently on purpose:

- *Which names may be aliases?* The pass-through path must decide without a round trip,
  so a background task polls the backend for every alias name (every
  ``registry_refresh`` seconds) and the proxy's call detector watches for them. A name
  created through this proxy is watched at once; through another proxy, within one poll.
- *What does this call mean for this client?* Asked at each statement that mentions an
  alias name, on the client's own connection: the definitions the client can see, in its
  current database or the schema it names. So a redefinition applies at once, and MySQL's
  own visibility rules apply to each client.

The poller logs in with the backend URL's account when it has one, else as the most
recent client (its password is known from its login; it only reads the registry). That
account sees only the functions it has privileges on, so the names to watch are the
union of what it sees and what any session has seen (issue 10, item 9): a function
created through this proxy, and the names each account sees, read on the session's own
connection at login (at most once per account per ``registry_refresh``). A poll never
takes away a name a session saw: a name watched for nothing costs a statement that
mentions it one exact check, a name missed makes a call answer 1644. Names seen are kept
up to MAX_SEEN_NAMES (the oldest go first; what the poller sees is always watched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from proxy.errors import BackendError, BackendRejected
from proxy.upstream.backend import BackendConnection
from proxy.upstream.internal import Row, fetch_rows, read_rows
from rewriter.aliases import alias_function
from rewriter.calls import register_function_names
from rewriter.ddl import AliasFunction
from rewriter.functions import MLFunction
from rewriter.registry import (
    FULL_VIEW_QUERY,
    Routine,
    definition_of,
    definitions_query,
    names_query,
)

log = logging.getLogger(f"mlproxy.{__name__}")

#: How many names seen by sessions (beyond the poller's) are watched at most.
MAX_SEEN_NAMES = 10_000

#: Opens a connection for the poller, or None when no account is known yet.
Connector = Callable[[], Awaitable[BackendConnection | None]]


class FunctionRegistry:
    """The alias names to watch for, and the definitions behind them per statement."""

    def __init__(self, connect: Connector | None = None, refresh_interval: float = 1.0) -> None:
        self.connect = connect or _no_account
        self.refresh_interval = refresh_interval
        self.names: frozenset[str] = frozenset()
        #: Counts the changes of ``names`` (a plan made before one may read calls otherwise).
        self.generation = 0
        self._call = re.compile(r"(?!)")
        self.loaded = asyncio.Event()
        self._first_read: asyncio.Task[bool] | None = None
        #: Called with the new name set whenever it changes.
        self.on_change: Callable[[frozenset[str]], None] = lambda names: None
        self._conn: BackendConnection | None = None
        self._lock = asyncio.Lock()
        #: What the last poll read, and names sessions saw (insertion order: oldest first).
        self._polled: frozenset[str] = frozenset()
        self._seen: dict[str, None] = {}
        #: When each account's own view was last read (monotonic seconds), by user name.
        self._learned_at: dict[bytes, float] = {}
        #: The poller's account saw every routine at its last poll: no session need look.
        self.sees_all = False

    # -- names -------------------------------------------------------------------------

    def watch(self, names: Iterable[str]) -> None:
        """Add names a session saw (a function just created through this proxy, or the
        names its account can see): watched until MAX_SEEN_NAMES newer ones push them out,
        whatever the poller's account can see."""
        for name in names:
            key = name.lower()
            self._seen.pop(key, None)
            self._seen[key] = None
        while len(self._seen) > MAX_SEEN_NAMES:
            del self._seen[next(iter(self._seen))]
        self._set_names(self._polled | self._seen.keys())

    async def learn(self, user: bytes, backend: BackendConnection) -> None:
        """Watch the alias names ``user``'s account can see, read on its own ``backend``
        connection: at most once per account per refresh interval (one round trip at a
        login). Functions the poller's account cannot see are then watched too; when it
        sees them all, nothing is read (no statement of the proxy's in the session's
        profile, memory peak or counters)."""
        if self.sees_all:
            return
        now = time.monotonic()
        last = self._learned_at.get(user)
        if last is not None and now - last < self.refresh_interval:
            return
        if len(self._learned_at) >= MAX_SEEN_NAMES:
            self._learned_at.clear()  # a bound, not a cache worth keeping exactly
        self._learned_at[user] = now
        # Pipelined with a one-row SELECT that puts FOUND_ROWS() back to what a new
        # session answers (1): the client's first statement sees no trace of the proxy's.
        names_sql = names_query(backend.greeting.is_mariadb).encode()
        backend.stream.write(backend.query_payload(names_sql), 0)
        await backend.stream.send(backend.query_payload(b"SELECT 1"), 0)
        names, _ = [await _rows_or_nothing(backend) for _ in range(2)]  # both, in step
        self.watch(_text(row[0]) for row in names if row[0] is not None)

    def _set_names(self, names: frozenset[str]) -> None:
        if names == self.names:
            return
        self.names = names
        self.generation += 1
        register_function_names(names)
        pattern = "|".join(re.escape(name) for name in sorted(names)) or "(?!)"
        self._call = re.compile(rf"(?<![\w$])({pattern})`?\s*\(", re.IGNORECASE)
        self.on_change(names)

    def may_call(self, sql: str) -> bool:
        """Whether ``sql`` has an alias name followed by a parenthesis (a call, or a
        false positive such as a name in a string: the exact parse decides)."""
        return self._call.search(sql) is not None

    def called_names(self, sql: str) -> set[str]:
        """The alias names ``sql`` has followed by a parenthesis, lower case."""
        return {name.lower() for name in self._call.findall(sql)}

    async def refresh(self) -> bool:
        """Read every alias name from the backend; False when it cannot be read now."""
        async with self._lock:
            try:
                if self._conn is None:
                    self._conn = await self.connect()
                    if self._conn is None:
                        return False
                rows = await fetch_rows(self._conn, names_query(self._conn.greeting.is_mariadb))
                self.sees_all = await _sees_all(self._conn)
            except BackendError as exc:
                log.info("function registry: cannot read the backend's aliases: %s", exc)
                self.sees_all = False
                await self._drop_connection()
                return False
        self._polled = frozenset(_text(row[0]) for row in rows if row[0] is not None)
        self._set_names(self._polled | self._seen.keys())
        self.loaded.set()
        return True

    async def run(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                await self.refresh()
                await asyncio.sleep(self.refresh_interval)
        finally:
            await self._drop_connection()

    async def ensure_loaded(self) -> None:
        """Read the names before the first client's first statement (until then the
        poller may have had no account to log in with). Tried once: when the registry
        cannot be read, logins do not wait for it again (the poller keeps trying)."""
        if self.loaded.is_set():
            return
        if self._first_read is None:
            self._first_read = asyncio.ensure_future(self.refresh())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._first_read), timeout=5)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    # -- definitions -----------------------------------------------------------------------

    async def visible(
        self, backend: BackendConnection, database: str | None, sql: str
    ) -> dict[str, MLFunction]:
        """The aliases a statement may call, as this client sees them: ``schema.name``
        for each, and the bare name for those of the current database."""
        names = sorted(self.called_names(sql))
        if not names:
            return {}
        return await visible_aliases(backend, database, names)


async def visible_aliases(
    backend: BackendConnection, database: str | None, names: list[str] | None = None
) -> dict[str, MLFunction]:
    """The aliases (named ``names``, else all) the connection's account can see, keyed
    ``schema.name``, and by bare name too for those of ``database``."""
    functions: dict[str, MLFunction] = {}
    for definition in definitions(await fetch_rows(backend, definitions_query(names))):
        assert definition.schema is not None  # definition_of sets the routine's schema
        function = alias_function(definition, definition.schema)
        functions[f"{definition.schema}.{function.name}"] = function
        if definition.schema == database:
            functions[function.name] = function
    return functions


async def _sees_all(backend: BackendConnection) -> bool:
    """Whether the account sees every routine (FULL_VIEW_QUERY succeeds)."""
    try:
        await fetch_rows(backend, FULL_VIEW_QUERY)
    except BackendRejected:
        return False
    return True


async def _rows_or_nothing(backend: BackendConnection) -> list[Row]:
    """The rows of a statement already sent; none when the backend refused it (a login
    with an expired password may run nothing but SET PASSWORD: that is the client's to
    learn from its own statements)."""
    try:
        return await read_rows(backend)
    except BackendRejected as exc:
        log.debug("function registry: a login's own view is unreadable: %s", exc)
        return []


async def _no_account() -> None:
    return None


def routine_of(row: Row) -> Routine:
    schema, name, comment, security, definer = (_text(v) for v in row)
    return Routine(schema, name, comment, security, definer)


def definitions(rows: list[Row]) -> list[AliasFunction]:
    """The alias definitions among registry rows (unreadable comments skipped)."""
    found = (definition_of(routine_of(row)) for row in rows)
    return [d for d in found if d is not None]


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "surrogateescape")
