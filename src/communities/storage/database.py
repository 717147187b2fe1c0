"""Connections and units of work, one interface over SQLite and PostgreSQL.

Execution model (measured in ARCHITECTURE.md and bench/): an SQLite statement costs less than handing it to
another thread, so SQLite statements run inline on the server's event loop through one SQLAlchemy connection;
an asyncio lock keeps each unit of work whole even if a service awaits something in the middle. PostgreSQL runs
on an asyncpg connection pool (storage/postgres.py), so one slow query never stalls the loop, with statements
compiled by SQLAlchemy and executed by asyncpg directly. Services see one `UnitOfWork.execute(statement)` either
way, and statements are built with SQLAlchemy Core, so the same code serves both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Result, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, MultipleResultsFound, NoResultFound, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.sql import Executable

SQLITE_BUSY_TIMEOUT_S = 10.0
# The server waits for SQLite's write lock (held by the CLI or another process) with asyncio sleeps between
# attempts, never inside SQLite's busy handler, which would block the event loop.
SQLITE_LOCK_RETRY_S = (0.001, 0.05)


class StorageUnavailable(Exception):
    """The database cannot be reached, is locked for too long, or a transaction lost a race to a concurrent one:
    nothing was committed and the call may be retried. Its text is ours (safe to show a client)."""


class StorageConflict(StorageUnavailable):
    """A constraint or a serialization check failed because of a concurrent change (both databases)."""


# SQLite primary result codes: BUSY, LOCKED; READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
_SQLITE_BUSY = (5, 6)
_SQLITE_UNAVAILABLE = (8, 10, 13, 14, 15)
_RETRYABLE_SQLSTATES = ("40001", "40P01")  # serialization failure, deadlock
# Lock not available (lock_timeout), statement cancelled (statement_timeout, or cancelled by the client).
_UNAVAILABLE_SQLSTATES = ("55P03", "57014")


def translate_error(error: BaseException) -> BaseException | None:
    """The one translation of database-level failures, the same for SQLite and PostgreSQL: a StorageUnavailable
    to raise in place of `error`, or None when `error` is not a database failure (a bug, or a domain error)."""
    if isinstance(error, StorageUnavailable):
        return None
    original = getattr(error, "orig", None) if isinstance(error, DBAPIError) else error
    original = original if original is not None else error
    if isinstance(error, SATimeoutError) or isinstance(original, TimeoutError | ConnectionError):
        return StorageUnavailable("The database is busy or unreachable; retry")
    if isinstance(error, IntegrityError) or isinstance(original, sqlite3.IntegrityError) or _is_integrity(original):
        return StorageConflict("The change conflicted with a concurrent one; retry")
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return StorageConflict("The transaction conflicted with a concurrent one; retry")
    if sqlstate in _UNAVAILABLE_SQLSTATES:
        return StorageUnavailable("The database is busy; retry")
    if isinstance(original, sqlite3.OperationalError):
        primary = (getattr(original, "sqlite_errorcode", 0) or 0) & 0xFF
        if primary in _SQLITE_BUSY or _is_busy(original):
            return StorageUnavailable("The database is locked by another process; retry")
        if primary in _SQLITE_UNAVAILABLE:
            return StorageUnavailable("The database file cannot be written or read right now; retry")
        return None  # a wrong statement: a bug
    if isinstance(error, DBAPIError) and (error.connection_invalidated or isinstance(error, OperationalError)):
        return StorageUnavailable("The database is unreachable; retry")
    if isinstance(original, OSError) or _is_connection_error(original):
        return StorageUnavailable("The database or the file store is unreachable; retry")
    return None


def _is_integrity(error: BaseException) -> bool:
    """asyncpg's constraint violations (unique, foreign key, not null, check: SQLSTATE class 23)."""
    import asyncpg

    return isinstance(error, asyncpg.exceptions.IntegrityConstraintViolationError)


def _is_connection_error(error: BaseException) -> bool:
    """asyncpg's connection-level errors (closed connection, server shutting down, too many connections, a
    connection or pool closed under a statement)."""
    import asyncpg

    if isinstance(error, asyncpg.exceptions.InterfaceError):
        text = str(error)
        return "connection is closed" in text or "pool is closed" in text or "pool is closing" in text
    return isinstance(
        error,
        asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.TooManyConnectionsError
        | asyncpg.exceptions.AdminShutdownError,
    )


@contextlib.contextmanager
def translated_errors():
    """Re-raise database failures as StorageUnavailable (see translate_error)."""
    try:
        yield
    except Exception as error:
        replacement = translate_error(error)
        if replacement is None:
            raise
        raise replacement from error


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

    # pysqlite's own transaction handling is off (isolation_level=None): transactions are begun explicitly.
    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        statement = connection.info.pop("begin_statement", None)
        if statement:  # migrations ask for one; the server's units of work begin on the raw connection instead
            connection.exec_driver_sql(statement)

    return engine


class Prepared:
    """A statement built once, with `bindparam` placeholders, for the hot paths.

    On SQLite it is compiled once and run on the raw sqlite3 connection, with SQLAlchemy's own type processing
    applied to parameters and results: the same rows, without SQLAlchemy's per-call execution overhead (about
    0.4 ms of the 0.5 ms a small query costs through it). On PostgreSQL it is compiled once for asyncpg and run
    on a pooled asyncpg connection, which prepares it once per connection (storage/postgres.py). An IN list is a
    `bindparam(..., expanding=True)`: its SQL is rendered per call for the list's length, on both databases.
    """

    def __init__(self, statement: Executable, *, postgresql: Executable | None = None):
        """`postgresql`: the PostgreSQL form where the two differ (dialect-specific INSERT ... ON CONFLICT)."""
        self.statement = statement
        self.postgresql = statement if postgresql is None else postgresql
        self._sqlite: _CompiledForSqlite | None = None
        self._postgres = None  # storage/postgres.py's compiled form

    @classmethod
    def insert_or_ignore(cls, table, index_elements: list, **values) -> Prepared:
        """INSERT ... ON CONFLICT (index_elements) DO NOTHING, for both databases."""
        return cls(
            sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=index_elements),
            postgresql=postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=index_elements),
        )

    def for_sqlite(self, dialect) -> _CompiledForSqlite:
        if self._sqlite is None:
            self._sqlite = _CompiledForSqlite(self.statement, dialect)
        return self._sqlite


def _identity(value):
    return value


def _unsigned(value):
    """A signed BIGINT back to the unsigned 64-bit id it stores (see tables.Snowflake)."""
    return value + 18446744073709551616 if value is not None and value < 0 else value


def _result_converter(column_type, dialect):
    """How a raw sqlite3 value becomes what SQLAlchemy would return. The two types our hot queries return that
    need it get a fast path; anything else uses SQLAlchemy's own processor."""
    from communities.storage.tables import Snowflake

    if isinstance(column_type, Snowflake):
        return _unsigned if column_type.client_chosen else None
    if isinstance(column_type, Boolean):
        return bool
    return column_type.result_processor(dialect, None)


class _CompiledForSqlite:
    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql = str(compiled)
        # IN (...) of a list (an expanding bindparam): rendered per call, as SQLAlchemy's engine does.
        self.expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
        # Each positional parameter: its name, the value the statement itself gives it (literals), and how
        # SQLAlchemy would convert it for the driver.
        self.parameter_specs = [
            (name, compiled.binds[name].value, compiled.binds[name].type.bind_processor(dialect) or _identity)
            for name in compiled.positiontup or ()
        ]
        columns = list(getattr(statement, "exported_columns", ()) or ())
        self.converters = [
            (index, converter)
            for index, column in enumerate(columns)
            if (converter := _result_converter(column.type, dialect)) is not None
        ]
        self.row_type = namedtuple("Row", [column.key for column in columns]) if columns else None

    def parameters(self, params: dict[str, Any] | None) -> tuple:
        params = params or {}
        return tuple(
            process(params[name] if name in params else default) for name, default, process in self.parameter_specs
        )

    def bind(self, params: dict[str, Any] | None) -> tuple[str, tuple]:
        """The SQL and positional parameters for one execution."""
        if not self.expanding:
            return self.sql, self.parameters(params)
        expanded = self.compiled._process_parameters_for_postcompile(
            self.compiled.construct_params(params, escape_names=False)
        )
        values, processors = expanded.parameters, expanded.processors
        arguments = []
        for name in expanded.positiontup or ():
            process = processors.get(name)
            arguments.append(values[name] if process is None else process(values[name]))
        return expanded.statement, tuple(arguments)

    def rows(self, cursor) -> list:
        if self.row_type is None:
            return []
        make = self.row_type._make
        converters = self.converters
        if not converters:
            return [make(row) for row in cursor]
        rows = []
        for raw in cursor:
            values = list(raw)
            for index, convert in converters:
                values[index] = convert(values[index])
            rows.append(make(values))
        return rows


class PreparedResult:
    """The part of SQLAlchemy's Result that the storage code uses, over already-fetched rows."""

    def __init__(self, rows: list, rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self):
        return iter(self._rows)

    def all(self) -> list:
        return self._rows

    def first(self):
        return self._rows[0] if self._rows else None

    def scalar(self):
        return self._rows[0][0] if self._rows else None

    def one(self):
        if len(self._rows) != 1:
            raise (NoResultFound if not self._rows else MultipleResultsFound)(
                f"expected one row, got {len(self._rows)}"
            )
        return self._rows[0]

    def one_or_none(self):
        if len(self._rows) > 1:
            raise MultipleResultsFound(f"expected at most one row, got {len(self._rows)}")
        return self._rows[0] if self._rows else None

    def scalar_one(self):
        return self.one()[0]

    def scalar_one_or_none(self):
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> list:
        return [row[0] for row in self._rows]


def dialect_insert(uow: UnitOfWork, table):
    """INSERT with ON CONFLICT support (`on_conflict_do_nothing` / `on_conflict_do_update`), which both
    databases share but SQLAlchemy exposes per dialect."""
    if uow.dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class UnitOfWork:
    """One transaction. Commits when the block ends without an exception, rolls back otherwise.

    `published` is set when the transaction wrote events (updates/publish.py): after its commit the database's
    `on_publish` hook wakes the update streams with them."""

    published = False
    # Events published in it (storage/events.py), written just before its commit.
    pending_events: list[dict[str, Any]]

    async def execute(self, statement: Executable | Prepared, params: Any = None) -> Result | PreparedResult:
        raise NotImplementedError

    async def execute_many(self, statement: Prepared, rows: list[dict[str, Any]]) -> None:
        """One statement for many parameter sets (bulk inserts)."""
        raise NotImplementedError

    @property
    def dialect(self) -> str:
        raise NotImplementedError


class _SqliteUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection):
        self._connection = connection
        self._raw = connection.connection.driver_connection
        self._sa_dialect = connection.dialect
        self._dispatch = connection.engine.dispatch
        self.pending_events = []

    async def execute(self, statement, params: Any = None):
        if isinstance(statement, Prepared):
            compiled = statement.for_sqlite(self._sa_dialect)
            sql, arguments = compiled.bind(params)
            if self._dispatch.before_cursor_execute:  # a test counting statements: tell it of this one too
                self._dispatch.before_cursor_execute(None, None, sql, arguments, None, False)
            cursor = self._raw.execute(sql, arguments)
            return PreparedResult(compiled.rows(cursor), cursor.rowcount)
        return self._connection.execute(statement, params)

    async def execute_many(self, statement: Prepared, rows: list[dict[str, Any]]) -> None:
        compiled = statement.for_sqlite(self._sa_dialect)
        arguments = [compiled.parameters(row) for row in rows]
        if self._dispatch.before_cursor_execute:
            self._dispatch.before_cursor_execute(None, None, compiled.sql, arguments, None, True)
        self._raw.executemany(compiled.sql, arguments)

    @property
    def dialect(self) -> str:
        return "sqlite"


class Database:
    """The server's handle on its database."""

    url: str
    # Called after the commit of a unit of work that published events, with them (the server wakes its streams
    # with it). On SQLite they carry their stream positions, so this process's hub need not read them back.
    on_publish: Callable[[list[dict[str, Any]]], None] | None = None

    def unit_of_work(self, *, write: bool) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        raise NotImplementedError

    async def read(self, statement: Prepared, params: dict[str, Any]) -> list:
        """One read-only statement on its own (a single statement is atomic without a surrounding transaction):
        the cheapest read there is, for authentication on every call."""
        async with self.unit_of_work(write=False) as uow:
            return (await uow.execute(statement, params)).all()

    async def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def open(url: str, *, pool_size: int = 8) -> Database:
        if is_sqlite(url):
            return SqliteDatabase(url)
        from communities.storage.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size=pool_size)


def _is_busy(error: BaseException) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return "locked" in text or "busy" in text


class SqliteDatabase(Database):
    """One connection used inline on the event loop. Transactions are begun and ended on the raw sqlite3
    connection (BEGIN IMMEDIATE for writers, so they take the write lock up front and never fail to upgrade a
    read lock); SQLAlchemy's connection sees no transaction of its own (pysqlite's implicit transactions are
    off) and only executes statements inside ours.

    SQLite's busy handler is off on this connection: when another process holds the write lock, BEGIN IMMEDIATE
    fails at once and the unit of work waits with asyncio sleeps, letting go of the connection in between, so
    that reads (WAL readers never wait for the writer) and calls that need no database keep flowing."""

    def __init__(self, url: str, *, lock_timeout: float = SQLITE_BUSY_TIMEOUT_S):
        self.url = url
        self.lock_timeout = lock_timeout
        self._engine = create_sqlite_engine(url)
        self._connection = self._engine.connect()
        self._raw = self._connection.connection.driver_connection
        self._raw.execute("PRAGMA busy_timeout=0")
        self._lock = asyncio.Lock()

    def unit_of_work(self, *, write: bool) -> _SqliteTransaction:
        return _SqliteTransaction(self, write)

    async def read(self, statement: Prepared, params: dict[str, Any]) -> list:
        compiled = statement.for_sqlite(self._connection.dialect)
        sql, arguments = compiled.bind(params)
        if self._engine.dispatch.before_cursor_execute:
            self._engine.dispatch.before_cursor_execute(None, None, sql, arguments, None, False)
        async with self._lock:
            with translated_errors():
                return compiled.rows(self._raw.execute(sql, arguments))

    async def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


class _SqliteTransaction:
    """The unit of work of SqliteDatabase, as a plain async context manager (it runs on every call: a
    generator-based one costs measurably more)."""

    __slots__ = ("_database", "_uow", "_write")

    def __init__(self, database: SqliteDatabase, write: bool):
        self._database = database
        self._write = write
        self._uow: _SqliteUnitOfWork | None = None

    async def __aenter__(self) -> UnitOfWork:
        database = self._database
        begin = "BEGIN IMMEDIATE" if self._write else "BEGIN"
        waited = 0.0
        pause = SQLITE_LOCK_RETRY_S[0]
        while True:
            await database._lock.acquire()
            try:
                database._raw.execute(begin)
                self._uow = _SqliteUnitOfWork(database._connection)
                return self._uow
            except BaseException as exc:
                database._lock.release()
                busy = isinstance(exc, sqlite3.OperationalError) and _is_busy(exc)
                if not busy:
                    replacement = translate_error(exc) if isinstance(exc, Exception) else None
                    if replacement is None:
                        raise
                    raise replacement from exc
                if waited >= database.lock_timeout:
                    raise StorageUnavailable("The database is locked by another process; retry") from exc
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, SQLITE_LOCK_RETRY_S[1])

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        database = self._database
        raw = database._raw
        try:
            if exc_type is not None:
                raw.execute("ROLLBACK")
                if isinstance(exc, Exception) and (replacement := translate_error(exc)) is not None:
                    raise replacement from exc
                return
            try:
                if self._uow.pending_events:
                    await write_pending_events(self._uow)
                raw.execute("COMMIT")
            except BaseException as error:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                if isinstance(error, Exception) and (replacement := translate_error(error)) is not None:
                    raise replacement from error
                raise
            if self._uow.published and database.on_publish is not None:
                database.on_publish(self._uow.pending_events)
        finally:
            # SQLAlchemy began a transaction of its own in name only when a statement went through it; end it
            # (a no-op for sqlite3 outside a transaction) so that each unit of work starts clean.
            if database._connection.in_transaction():
                database._connection.rollback()
            database._lock.release()


async def write_pending_events(uow: UnitOfWork) -> None:
    from communities.storage.events import write_pending  # events.py builds on this module

    await write_pending(uow)


def default_sqlite_url() -> str:
    return "sqlite:///" + os.path.join("data", "communities.db")
