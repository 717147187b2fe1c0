"""Connections and units of work, one interface over SQLite and PostgreSQL.

Execution model (measured in ARCHITECTURE.md and bench/): an SQLite statement costs less than handing it to
another thread, so SQLite statements run inline on the server's event loop through one SQLAlchemy connection;
an asyncio lock keeps each unit of work whole even if a service awaits something in the middle. PostgreSQL runs
on SQLAlchemy's asyncio engine over asyncpg with a connection pool, so one slow query never stalls the loop.
Services see one `UnitOfWork.execute(statement)` either way, and statements are built with SQLAlchemy Core, so
the same code serves both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Result, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

SQLITE_BUSY_TIMEOUT_S = 10.0


class StorageUnavailable(Exception):
    """The database cannot be reached or is locked for too long; the call may be retried."""


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///path` URLs and pick our drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://")


def sync_url(url: str) -> str:
    """The URL for synchronous tools (Alembic, the CLI): psycopg for PostgreSQL."""
    parsed = make_url(normalize_url(url))
    if parsed.drivername.startswith("postgresql"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(normalize_url(url)).drivername.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(normalize_url(url))
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_sqlite_engine(url: str) -> Engine:
    """A synchronous SQLite engine: WAL, synchronous=NORMAL, foreign keys on, explicit BEGIN handling."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        normalize_url(url),
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # pysqlite's own transaction handling is off (isolation_level=None); we emit BEGIN ourselves so writers
    # take the write lock up front (BEGIN IMMEDIATE) instead of failing to upgrade a read lock later.
    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql(connection.info.pop("begin_statement", "BEGIN"))

    return engine


class UnitOfWork:
    """One transaction. Commits when the block ends without an exception, rolls back otherwise."""

    async def execute(self, statement: Executable, params: Any = None) -> Result:
        raise NotImplementedError

    @property
    def dialect(self) -> str:
        raise NotImplementedError


def dialect_insert(uow: UnitOfWork, table):
    """INSERT with ON CONFLICT support (`on_conflict_do_nothing` / `on_conflict_do_update`), which both
    databases share but SQLAlchemy exposes per dialect."""
    if uow.dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class _SqliteUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection):
        self._connection = connection

    async def execute(self, statement: Executable, params: Any = None) -> Result:
        return self._connection.execute(statement, params)

    @property
    def dialect(self) -> str:
        return "sqlite"


class _AsyncUnitOfWork(UnitOfWork):
    def __init__(self, connection: AsyncConnection):
        self._connection = connection

    async def execute(self, statement: Executable, params: Any = None) -> Result:
        return await self._connection.execute(statement, params)

    @property
    def dialect(self) -> str:
        return "postgresql"


class Database:
    """The server's handle on its database."""

    url: str

    def unit_of_work(self, *, write: bool) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def open(url: str, *, pool_size: int = 8) -> Database:
        if is_sqlite(url):
            return SqliteDatabase(url)
        return PostgresDatabase(url, pool_size=pool_size)


class SqliteDatabase(Database):
    def __init__(self, url: str):
        self.url = url
        self._engine = create_sqlite_engine(url)
        self._connection = self._engine.connect()
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, write: bool) -> AsyncIterator[UnitOfWork]:
        async with self._lock:
            connection = self._connection
            connection.info["begin_statement"] = "BEGIN IMMEDIATE" if write else "BEGIN"
            try:
                with connection.begin():
                    yield _SqliteUnitOfWork(connection)
            except DBAPIError as exc:
                if "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower():
                    raise StorageUnavailable("database is locked") from exc
                raise

    async def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


class PostgresDatabase(Database):
    def __init__(self, url: str, *, pool_size: int):
        self.url = url
        self._engine: AsyncEngine = create_async_engine(
            normalize_url(url),
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            # Each checkout otherwise pays a round trip to reset the connection; our transactions always end
            # in COMMIT or ROLLBACK, so there is nothing to reset.
            pool_reset_on_return=None,
        )

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, write: bool) -> AsyncIterator[UnitOfWork]:
        try:
            async with self._engine.connect() as connection, connection.begin():
                yield _AsyncUnitOfWork(connection)
        except (TimeoutError, OSError) as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self._engine.dispose()


def default_sqlite_url() -> str:
    return "sqlite:///" + os.path.join("data", "communities.db")
