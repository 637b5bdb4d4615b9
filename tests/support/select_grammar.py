"""A small grammar of SELECT statements for the differential oracles' generated shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hypothesis import strategies as st


@dataclass(frozen=True)
class Generated:
    sql: str
    #: Whether the statement orders its rows totally (else compare them as a multiset).
    ordered: bool


def selects(
    table: str,
    items: Sequence[str],
    conditions: Sequence[str],
    order_keys: Sequence[str],
    is_call: Callable[[str], bool],
) -> st.SearchStrategy[Generated]:
    """SELECTs over ``table``: items (aliased or not, at least one for which ``is_call``
    holds), WHERE conjuncts, and either DISTINCT or an ORDER BY made total by ``id`` with
    an optional LIMIT/OFFSET."""

    @st.composite
    def draw_select(draw: st.DrawFn) -> Generated:
        first = draw(st.sampled_from([item for item in items if is_call(item)]))
        chosen = draw(st.permutations([first, *draw(st.lists(st.sampled_from(items), max_size=3))]))
        aliased = [f"{it} AS c{i}" if draw(st.booleans()) else it for i, it in enumerate(chosen)]
        where = draw(st.lists(st.sampled_from(conditions), max_size=3))
        sql = f"SELECT {', '.join(aliased)} FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if draw(st.booleans()):
            return Generated(sql.replace("SELECT ", "SELECT DISTINCT ", 1), ordered=False)
        keys = draw(st.lists(st.sampled_from(order_keys), max_size=2, unique=True))
        if not keys and not draw(st.booleans()):
            return Generated(sql, ordered=False)
        sql += " ORDER BY " + ", ".join([*keys, "id"])
        if draw(st.booleans()):
            sql += f" LIMIT {draw(st.integers(0, 8))} OFFSET {draw(st.integers(0, 5))}"
        return Generated(sql, ordered=True)

    return draw_select()
