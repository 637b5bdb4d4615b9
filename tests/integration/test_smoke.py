"""The shortest end-to-end path: a query through the proxy equals the same query direct."""

from __future__ import annotations

from typing import Any

import pymysql


def test_select_through_proxy_matches_direct(
    conn: pymysql.Connection[Any], direct: pymysql.Connection[Any]
) -> None:
    sql = "SELECT 1 AS one, 'two' AS two, NULL AS three, 4.5 AS four, DATABASE() AS db"
    with conn.cursor() as through, direct.cursor() as straight:
        through.execute(sql)
        straight.execute(sql)
        assert through.fetchall() == straight.fetchall()
        assert through.description == straight.description


def test_server_version_names_the_backend_and_the_proxy(conn: pymysql.Connection[Any]) -> None:
    version = conn.get_server_info()
    assert version.endswith("-mlproxy")
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (backend_version,) = cur.fetchone()
    # MariaDB's greeting keeps the "5.5.5-" prefix that VERSION() omits; clients rely on it.
    assert version.removeprefix("5.5.5-") == backend_version + "-mlproxy"
