"""The client matrix's steps (../README.md) with asyncmy, an asyncio MySQL driver.

Run as a script (``python asyncmy_client.py``); prints one JSON line per step.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any

import asyncmy

EMOJI = "😀 ok 🎉 ünï"
PARAM_TEXT = 'it\'s "q" \\ ünï 😀'
ITEMS_FROM = "SELECT id, name, price FROM items WHERE id >= %s ORDER BY id LIMIT 3"
SENTENCE = "I love this, thank you!"


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return str(value)


def rows_as_text(rows: Sequence[Sequence[Any]]) -> list[list[str | None]]:
    return [[text(value) for value in row] for row in rows]


def error(exc: BaseException) -> dict[str, Any]:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return {"code": code, "sqlstate": None, "error": str(exc), "type": type(exc).__name__}


class Run:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.conn: Any = None

    async def connect(self, tls: bool) -> Any:
        context = None
        if tls:
            context = ssl.create_default_context(cafile=self.env["MX_TLS_CA"])
        return await asyncmy.connect(
            host=self.env["MX_HOST"],
            port=int(self.env["MX_PORT"]),
            user=self.env["MX_USER"],
            password=self.env["MX_PASSWORD"],
            database=self.env["MX_DATABASE"],
            charset="utf8mb4",
            ssl=context,
        )

    async def main(self) -> Any:
        if self.conn is None:
            self.conn = await self.connect(tls=False)
        return self.conn

    async def query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = await self.main()
        async with conn.cursor() as cursor:
            await cursor.execute(statement, tuple(params) or None)
            return list(await cursor.fetchall()) if cursor.description else []

    async def step_connect(self) -> Any:
        self.conn = await self.connect(tls=False)
        return text((await self.query("SELECT CURRENT_USER()"))[0][0])

    async def step_connect_tls(self) -> Any:
        conn = await self.connect(tls=True)
        try:
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT CURRENT_USER()")
                (user,) = await cursor.fetchone()
        finally:
            await conn.ensure_closed()
        return text(user)

    async def step_params(self) -> Any:
        rows = await self.query("SELECT %s AS i, %s AS s, %s AS n", (42, PARAM_TEXT, None))
        return rows_as_text(rows)

    async def step_server_prepared(self) -> Any:
        raise NotImplementedError("asyncmy has no server-side prepared statements")

    async def step_client_prepared(self) -> Any:
        return [rows_as_text(await self.query(ITEMS_FROM, (start,))) for start in (2, 8)]

    async def step_transaction(self) -> Any:
        conn = await self.main()
        await self.query("DELETE FROM scratch")
        await conn.commit()
        await conn.begin()
        await self.query("INSERT INTO scratch (id, txt) VALUES (%s, %s)", (1, "in a transaction"))
        inside = (await self.query("SELECT COUNT(*) FROM scratch"))[0][0]
        await conn.rollback()
        after = (await self.query("SELECT COUNT(*) FROM scratch"))[0][0]
        return [text(inside), text(after)]

    async def step_call(self) -> Any:
        conn = await self.main()
        async with conn.cursor() as cursor:
            await cursor.execute("CALL items_upto(3)")
            rows = rows_as_text(await cursor.fetchall())
            while await cursor.nextset():
                if cursor.description:
                    rows += rows_as_text(await cursor.fetchall())
        return {"rows": rows, "after": text((await self.query("SELECT 1"))[0][0])}

    async def step_big_result(self) -> Any:
        rows = await self.query("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000")
        return {
            "rows": len(rows),
            "sum": sum(int(seq) for seq, _ in rows),
            "chars": sum(len(text(label) or "") for _, label in rows),
        }

    async def step_emoji(self) -> Any:
        conn = await self.main()
        await self.query("DELETE FROM scratch")
        await self.query("INSERT INTO scratch (id, txt) VALUES (%s, %s)", (2, EMOJI))
        await conn.commit()
        rows = await self.query("SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch")
        detail = [text(value) for value in rows[0]]
        return detail, detail[0] == EMOJI

    async def step_ml_constant(self) -> Any:
        rows = await self.query(
            f"SELECT aws_comprehend_detect_sentiment('{SENTENCE}', 'en'),"
            f" aws_comprehend_detect_sentiment_confidence('{SENTENCE}', 'en')"
        )
        return rows_as_text(rows)

    async def step_ml_column(self) -> Any:
        rows = await self.query(
            "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id"
        )
        return {"rows": len(rows), "labels": [text(label) for _, label in rows]}

    async def step_error_1146(self) -> Any:
        try:
            await self.query("SELECT * FROM no_such_table")
        except Exception as exc:
            found = error(exc)
        else:
            return {"error": None}, False
        after = text((await self.query("SELECT 1"))[0][0])
        return {"code": found["code"], "sqlstate": None, "after": after}, found["code"] == 1146

    async def step_close(self) -> Any:
        conn, self.conn = await self.main(), None
        await conn.ensure_closed()
        return None

    async def run(self) -> None:
        steps = [name.removeprefix("step_") for name in vars(Run) if name.startswith("step_")]
        for name in steps:
            try:
                result = await getattr(self, f"step_{name}")()
            except Exception as exc:
                report(name, False, error(exc))
                await self.reset()
                continue
            detail, ok = result if isinstance(result, tuple) else (result, True)
            report(name, ok, detail)

    async def reset(self) -> None:
        if self.conn is None:
            return
        try:
            await self.conn.rollback()
            await self.query("SELECT 1")
        except Exception:
            self.conn.close()
            self.conn = None


def report(step: str, ok: bool, detail: Any) -> None:
    print(json.dumps({"step": step, "ok": ok, "detail": detail}), flush=True)


if __name__ == "__main__":
    asyncio.run(Run(dict(os.environ)).run())
    sys.exit(0)
