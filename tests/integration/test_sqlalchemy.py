"""SQLAlchemy 2 (ORM and Core, pymysql dialect) through the proxy, checked against direct reads.

Covers the dialect's own connection set-up (server version and MariaDB detection, pool
pre-ping, isolation level), a declarative model with a relationship (create_all, add,
commit, query, update, delete, a join, eager loading), rollbacks and savepoints, Core
``text()`` with bound parameters full of quotes, the matched-row counts the dialect asks
for with CLIENT_FOUND_ROWS, and ``engine.dispose()`` closing the backend connections.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, TypeAlias

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy import ForeignKey, String, select, text
from sqlalchemy.dialects.mysql.base import MySQLDialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

from tests.conftest import APP, TEST_DB, RunningProxy, admin_connect, wait_until
from tests.support.backend import BackendInfo

Conn: TypeAlias = "pymysql.Connection[Any]"

SUFFIX = uuid.uuid4().hex[:8]
AWKWARD = 'O\'Brien "the" \\ back\\slash; 100% :colon %s %(x)s -- é😀'


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = f"sa_author_{SUFFIX}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    books: Mapped[list[Book]] = relationship(
        back_populates="author", cascade="all, delete-orphan", order_by="Book.id"
    )


class Book(Base):
    __tablename__ = f"sa_book_{SUFFIX}"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey(f"{Author.__tablename__}.id"))
    author: Mapped[Author] = relationship(back_populates="books")


def url(host: str, port: int) -> str:
    return f"mysql+pymysql://{APP.user}:{APP.password}@{host}:{port}/{TEST_DB}?charset=utf8mb4"


@pytest.fixture
def engine(proxy: RunningProxy) -> Iterator[sa.Engine]:
    through = sa.create_engine(url(proxy.host, proxy.port), pool_pre_ping=True)
    yield through
    through.dispose()


@pytest.fixture
def direct_engine(backend: BackendInfo) -> Iterator[sa.Engine]:
    straight = sa.create_engine(url(backend.host, backend.port), pool_pre_ping=True)
    yield straight
    straight.dispose()


@pytest.fixture
def schema(engine: sa.Engine, direct_engine: sa.Engine) -> Iterator[None]:
    """The model's tables, created through the proxy and dropped direct."""
    Base.metadata.create_all(engine)
    yield
    Base.metadata.drop_all(direct_engine)


def contents(direct: Conn) -> tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...]]:
    """Both tables, read straight from the backend."""
    with direct.cursor() as cur:
        cur.execute(f"SELECT id, name FROM {Author.__tablename__} ORDER BY id")
        authors = tuple(cur.fetchall())
        cur.execute(f"SELECT id, title, author_id FROM {Book.__tablename__} ORDER BY id")
        return authors, tuple(cur.fetchall())


def seed(engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.add_all(
            [
                Author(name="Ursula", books=[Book(title="Lathe"), Book(title="Dispossessed")]),
                Author(name=AWKWARD, books=[Book(title="Quotes: 'single' \"double\"")]),
                Author(name="Nobody"),
            ]
        )
        session.commit()


# -- the dialect's view of the server -----------------------------------------------------


def test_dialect_sees_the_same_server_through_the_proxy(
    engine: sa.Engine, direct_engine: sa.Engine
) -> None:
    with engine.connect() as through, direct_engine.connect() as straight:
        assert isinstance(through.dialect, MySQLDialect)
        assert isinstance(straight.dialect, MySQLDialect)
        assert through.dialect.server_version_info == straight.dialect.server_version_info
        assert through.dialect.is_mariadb == straight.dialect.is_mariadb
        assert through.get_isolation_level() == straight.get_isolation_level()
        assert through.scalar(text("SELECT DATABASE()")) == TEST_DB


def test_engine_isolation_level_reaches_the_backend(proxy: RunningProxy) -> None:
    through = sa.create_engine(url(proxy.host, proxy.port), isolation_level="READ COMMITTED")
    try:
        with through.connect() as connection:
            assert connection.get_isolation_level() == "READ COMMITTED"
    finally:
        through.dispose()


# -- ORM ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("schema")
def test_orm_add_commit_and_query(engine: sa.Engine, direct: Conn) -> None:
    seed(engine)
    with Session(engine) as session:
        names = session.scalars(select(Author.name).order_by(Author.id)).all()
        assert names == ["Ursula", AWKWARD, "Nobody"]
        ursula = session.scalars(select(Author).where(Author.name == "Ursula")).one()
        assert [book.title for book in ursula.books] == ["Lathe", "Dispossessed"]
    authors, books = contents(direct)
    assert [name for _, name in authors] == ["Ursula", AWKWARD, "Nobody"]
    assert [title for _, title, _ in books] == [
        "Lathe",
        "Dispossessed",
        "Quotes: 'single' \"double\"",
    ]


@pytest.mark.usefixtures("schema")
def test_orm_update_and_delete(engine: sa.Engine, direct: Conn) -> None:
    seed(engine)
    with Session(engine) as session:
        ursula = session.scalars(select(Author).where(Author.name == "Ursula")).one()
        ursula.name = "Ursula K."
        ursula.books[0].title = "The Lathe of Heaven"
        del ursula.books[1]  # delete-orphan
        nobody = session.scalars(select(Author).where(Author.name == "Nobody")).one()
        session.delete(nobody)
        session.commit()
    with Session(engine) as session:
        through = (
            session.execute(select(Author.id, Author.name).order_by(Author.id)).all(),
            session.execute(select(Book.id, Book.title, Book.author_id).order_by(Book.id)).all(),
        )
    authors, books = contents(direct)
    assert (tuple(map(tuple, through[0])), tuple(map(tuple, through[1]))) == (authors, books)
    assert [name for _, name in authors] == ["Ursula K.", AWKWARD]
    assert [title for _, title, _ in books] == [
        "The Lathe of Heaven",
        "Quotes: 'single' \"double\"",
    ]


@pytest.mark.usefixtures("schema")
def test_orm_rollback_discards_the_changes(engine: sa.Engine, direct: Conn) -> None:
    seed(engine)
    before = contents(direct)
    with Session(engine) as session:
        session.add(Author(name="Ghost", books=[Book(title="Never written")]))
        ursula = session.scalars(select(Author).where(Author.name == "Ursula")).one()
        ursula.name = "Changed"
        session.flush()
        assert session.scalar(select(sa.func.count()).select_from(Author)) == 4
        assert contents(direct) == before  # flushed, not committed: invisible elsewhere
        session.rollback()
        assert session.scalar(select(sa.func.count()).select_from(Author)) == 3
    assert contents(direct) == before


@pytest.mark.usefixtures("schema")
def test_orm_savepoint_rolls_back_only_the_nested_part(engine: sa.Engine, direct: Conn) -> None:
    with Session(engine) as session:
        session.add(Author(name="Kept"))
        nested = session.begin_nested()
        session.add(Author(name="Dropped"))
        session.flush()
        nested.rollback()
        session.commit()
    authors, _ = contents(direct)
    assert [name for _, name in authors] == ["Kept"]


@pytest.mark.usefixtures("schema")
def test_relationship_join_and_eager_load_match_direct(
    engine: sa.Engine, direct_engine: sa.Engine
) -> None:
    seed(engine)
    query = (
        select(Book.title, Author.name)
        .join(Book.author)
        .where(Author.name.in_(["Ursula", AWKWARD]))
        .order_by(Book.id)
    )
    eager = select(Author).options(selectinload(Author.books)).order_by(Author.id)
    answers = []
    for which in (engine, direct_engine):
        with Session(which) as session:
            joined = [tuple(row) for row in session.execute(query)]
            loaded = [
                (author.name, [book.title for book in author.books])
                for author in session.scalars(eager)
            ]
            answers.append((joined, loaded))
    assert answers[0] == answers[1]
    joined, loaded = answers[0]
    assert joined[0] == ("Lathe", "Ursula") and joined[2][1] == AWKWARD
    assert loaded[2] == ("Nobody", [])


# -- Core ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("schema")
def test_core_text_with_quoted_bound_parameters(engine: sa.Engine, direct: Conn) -> None:
    values = [AWKWARD, "it''s", "\\'; DROP TABLE x; --", "\x00nul", "%", "%%", ":name"]
    with engine.begin() as connection:
        for number, value in enumerate(values, start=1):
            connection.execute(
                text(f"INSERT INTO {Author.__tablename__} (id, name) VALUES (:id, :name)"),
                {"id": number, "name": value},
            )
        found = connection.execute(
            text(f"SELECT id FROM {Author.__tablename__} WHERE name = :name"), {"name": AWKWARD}
        ).scalar_one()
        assert found == 1
    authors, _ = contents(direct)
    assert [name for _, name in authors] == values


@pytest.mark.usefixtures("schema")
def test_core_update_counts_matched_rows_like_direct(
    engine: sa.Engine, direct_engine: sa.Engine
) -> None:
    """The dialect negotiates CLIENT_FOUND_ROWS: an UPDATE that changes nothing still matches."""
    seed(engine)
    counts = []
    for which in (engine, direct_engine):
        with which.begin() as connection:
            unchanged = connection.execute(
                sa.update(Author).where(Author.name == "Ursula").values(name="Ursula")
            )
            missing = connection.execute(
                sa.update(Author).where(Author.name == "Nobody at all").values(name="x")
            )
            counts.append((unchanged.rowcount, missing.rowcount))
    assert counts == [(1, 0), (1, 0)]


def test_dispose_closes_the_backend_connections(proxy: RunningProxy, backend: BackendInfo) -> None:
    through = sa.create_engine(url(proxy.host, proxy.port), pool_size=3)
    connections = [through.connect() for _ in range(3)]
    threads = {connection.scalar(text("SELECT CONNECTION_ID()")) for connection in connections}
    for connection in connections:
        connection.close()  # back to the pool: still open

    def open_threads() -> set[int]:
        with admin_connect(backend) as admin, admin.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST")
            return {int(row[0]) for row in cur.fetchall()} & threads

    assert len(threads) == 3 and open_threads() == threads
    through.dispose()
    assert wait_until(lambda: not open_threads())
