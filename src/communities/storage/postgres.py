"""PostgreSQL's execution path: SQLAlchemy Core builds and compiles, asyncpg executes.

Statements are built with SQLAlchemy Core, the same code as for SQLite, and compiled with SQLAlchemy's asyncpg
dialect into `$1..$n` SQL, the order of its parameters and SQLAlchemy's own bind and result conversions (the
Snowflake type's unsigned ids, for one). They run on an asyncpg pool used directly: asyncpg prepares each SQL
text once per connection (its statement cache) and binds values in its binary protocol, and connections go back
to the pool without a reset round trip (our transactions always end in COMMIT or ROLLBACK). SQLAlchemy's
asyncio engine, with its greenlet hop, cursor emulation and result machinery on every statement, is not on the
request path (measured at a quarter to a fifth of a plain asyncpg pool's rate).

- `Prepared` statements are compiled once, on first use.
- Any other Core statement is compiled once per shape: SQLAlchemy's cache key of the statement (its structure,
  without the literal values) finds the compiled form, and the statement's own values are bound to it, exactly
  as SQLAlchemy's engine does with its compiled cache.
- A read-only unit of work runs its plain SELECTs without BEGIN/COMMIT (under READ COMMITTED a statement sees
  the same snapshot inside a transaction or outside one); anything else in it (a write, SELECT ... FOR UPDATE)
  begins the transaction first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import Boolean
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from communities.storage.database import (
    Database,
    Prepared,
    PreparedResult,
    UnitOfWork,
    normalize_url,
    translate_error,
    write_pending_events,
)

# How long a unit of work waits for a free pooled connection (SQLAlchemy's pool_timeout default) before the
# call answers UNAVAILABLE.
POOL_TIMEOUT_S = 30.0
# Server-side prepared statements kept per connection: every distinct SQL text the service runs fits.
STATEMENT_CACHE_SIZE = 1024
# Compiled forms of non-Prepared statements, by SQLAlchemy cache key (the shapes the service builds).
COMPILED_CACHE_SIZE = 2000


def asyncpg_dsn(url: str) -> str:
    return make_url(normalize_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def _unsigned(value):
    """A signed BIGINT back to the unsigned 64-bit id it stores (see tables.Snowflake)."""
    return value + 18446744073709551616 if value is not None and value < 0 else value


def _result_converter(column_type, dialect, exact: bool):
    """How an asyncpg value becomes what SQLAlchemy would return: nothing for types asyncpg already returns as
    Python's (bool, int, str, bytes), SQLAlchemy's own result processor for anything else. Snowflake ids are
    converted back to unsigned by any statement (`exact`) but a Prepared one, which skips it for server-minted
    ids like the SQLite path does (they stay below 2**63)."""
    from communities.storage.tables import Snowflake

    if isinstance(column_type, Snowflake):
        return _unsigned if exact or column_type.client_chosen else None
    if isinstance(column_type, Boolean):
        return None
    return column_type._cached_result_processor(dialect, None)


def _rowcount(status: str) -> int:
    """asyncpg's command status ("UPDATE 3", "INSERT 0 1", "DELETE 0") as a row count."""
    _, _, count = status.rpartition(" ")
    return int(count) if count.isdigit() else -1


class _Compiled:
    """One statement compiled for asyncpg: its SQL, how to bind its parameters, and how to make its rows."""

    __slots__ = (
        "compiled",
        "converters",
        "expanding",
        "needs_transaction",
        "positions",
        "processors",
        "returns_rows",
        "row_type",
        "specs",
        "sql",
    )

    def __init__(self, statement, compiled, *, exact: bool):
        dialect = compiled.dialect
        self.compiled = compiled
        self.sql = compiled.string
        processors = compiled._bind_processors
        names = tuple(compiled.positiontup or ())
        self.positions = names
        self.processors = tuple(processors.get(name) for name in names)
        # For Prepared statements: each positional parameter's name, the value the statement itself gives it
        # (literals) and its conversion, read straight from the caller's dict.
        self.specs = tuple(
            (name, compiled.binds[name].effective_value, processors.get(name) or _identity) for name in names
        )
        # IN (...) of a list: rendered per call (SQLAlchemy's "post-compile" parameters).
        self.expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
        result_columns = compiled._result_columns
        self.returns_rows = bool(result_columns) or bool(getattr(statement, "is_select", False))
        # A plain SELECT may run outside a transaction in a read-only unit of work; FOR UPDATE/SHARE may not.
        self.needs_transaction = not (
            getattr(statement, "is_select", False) and getattr(statement, "_for_update_arg", None) is None
        )
        if result_columns:
            self.row_type = namedtuple("Row", [column[0] for column in result_columns], rename=True)
            self.converters = tuple(
                (index, converter)
                for index, column in enumerate(result_columns)
                if (converter := _result_converter(column[3], dialect, exact)) is not None
            )
        else:
            self.row_type = None
            self.converters = ()

    def prepared_arguments(self, params: dict[str, Any] | None) -> list:
        params = params or {}
        return [process(params[name] if name in params else default) for name, default, process in self.specs]

    def arguments(self, parameters: dict[str, Any]) -> tuple[str, list]:
        """SQL and positional arguments from SQLAlchemy's parameter dict (`construct_params`)."""
        if self.expanding:
            expanded = self.compiled._process_parameters_for_postcompile(parameters)
            processors = expanded.processors
            values = expanded.parameters
            arguments = []
            for name in expanded.positiontup or ():
                value = values[name]
                process = processors.get(name)
                arguments.append(process(value) if process is not None else value)
            return expanded.statement, arguments
        return self.sql, [
            value if process is None else process(value)
            for value, process in zip((parameters[name] for name in self.positions), self.processors, strict=True)
        ]

    def rows(self, records: list) -> list:
        row_type = self.row_type
        if row_type is None:
            if not records:
                return []
            row_type = namedtuple("Row", list(records[0].keys()), rename=True)
        make = row_type._make
        converters = self.converters
        if not converters:
            return [make(record) for record in records]
        rows = []
        for record in records:
            values = list(record)
            for index, convert in converters:
                values[index] = convert(values[index])
            rows.append(make(values))
        return rows


def _identity(value):
    return value


class _Compiler:
    """Compiles statements for asyncpg: Prepared ones once, others once per SQLAlchemy cache key."""

    def __init__(self, dialect):
        self.dialect = dialect
        self._cache: dict[Any, _Compiled] = {}

    def prepared(self, prepared: Prepared) -> _Compiled:
        compiled = prepared._postgres
        if compiled is None:
            statement = prepared.postgresql
            compiled = prepared._postgres = _Compiled(statement, statement.compile(dialect=self.dialect), exact=False)
        return compiled

    def statement(self, statement, column_keys: Sequence[str], many: bool) -> tuple[_Compiled, dict[str, Any]]:
        """The compiled form of `statement` and SQLAlchemy's parameter dict for its own values."""
        cache_key = statement._generate_cache_key()
        if cache_key is None:  # a construct SQLAlchemy cannot cache: compile it for this call alone
            compiled = _Compiled(
                statement,
                statement.compile(dialect=self.dialect, column_keys=list(column_keys), for_executemany=many),
                exact=True,
            )
            return compiled, None
        key = (cache_key.key, tuple(column_keys), many)
        compiled = self._cache.get(key)
        if compiled is None:
            if len(self._cache) >= COMPILED_CACHE_SIZE:
                self._cache.clear()
            compiled = self._cache[key] = _Compiled(
                statement,
                statement.compile(
                    dialect=self.dialect, cache_key=cache_key, column_keys=list(column_keys), for_executemany=many
                ),
                exact=True,
            )
        return compiled, cache_key

    @staticmethod
    def parameters(compiled: _Compiled, cache_key, params: dict[str, Any] | None) -> dict[str, Any]:
        if cache_key is None:
            return compiled.compiled.construct_params(params, escape_names=False, _no_postcompile=True)
        return compiled.compiled.construct_params(
            params,
            extracted_parameters=cache_key.bindparams,
            escape_names=False,
            _no_postcompile=True,
            _collected_params=cache_key.params,
        )


class _PostgresUnitOfWork(UnitOfWork):
    __slots__ = ("_compiler", "_connection", "_database", "_transaction", "pending_events", "published")

    def __init__(self, database: PostgresDatabase, connection, transaction):
        self._database = database
        self._compiler = database._compiler
        self._connection = connection
        self._transaction = transaction  # None while a read-only unit of work has only read
        self.published = False
        self.pending_events = []

    async def _begin(self) -> None:
        transaction = self._connection.transaction()
        await transaction.start()
        self._transaction = transaction

    async def execute(self, statement, params: Any = None):
        compiler = self._compiler
        if isinstance(statement, Prepared):
            compiled = compiler.prepared(statement)
            if compiled.expanding:
                sql, arguments = compiled.arguments(compiled.compiled.construct_params(params, escape_names=False))
            else:
                sql, arguments = compiled.sql, compiled.prepared_arguments(params)
        else:
            if isinstance(params, list | tuple):
                if len(params) > 1:
                    await self._execute_many(statement, params)
                    return PreparedResult([], -1)
                params = params[0] if params else None
            compiled, cache_key = compiler.statement(statement, sorted(params) if params else (), False)
            sql, arguments = compiled.arguments(compiler.parameters(compiled, cache_key, params))
        if self._transaction is None and compiled.needs_transaction:
            await self._begin()
        connection = self._connection
        if self._database._listened:
            self._database._notify(sql, arguments, False)
        if compiled.returns_rows:
            rows = compiled.rows(await connection.fetch(sql, *arguments))
            return PreparedResult(rows, len(rows))
        # The command's status ("UPDATE 3"); without arguments asyncpg sends it as a simple query.
        return PreparedResult([], _rowcount(await connection.execute(sql, *arguments)))

    async def _execute_many(self, statement, rows: Sequence[dict[str, Any]]) -> None:
        compiler = self._compiler
        compiled, cache_key = compiler.statement(statement, sorted(rows[0]), True)
        batches: dict[str, list] = {}
        for row in rows:
            sql, arguments = compiled.arguments(compiler.parameters(compiled, cache_key, row))
            batches.setdefault(sql, []).append(arguments)
        if self._transaction is None:
            await self._begin()
        for sql, arguments in batches.items():
            if self._database._listened:
                self._database._notify(sql, arguments, True)
            await self._connection.executemany(sql, arguments)

    async def execute_many(self, statement: Prepared, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        compiled = self._compiler.prepared(statement)
        if compiled.expanding:
            await self._execute_many(statement.postgresql, rows)
            return
        if self._transaction is None:
            await self._begin()
        arguments = [compiled.prepared_arguments(row) for row in rows]
        if self._database._listened:
            self._database._notify(compiled.sql, arguments, True)
        await self._connection.executemany(compiled.sql, arguments)

    @property
    def dialect(self) -> str:
        return "postgresql"


async def _no_reset(_connection) -> None:
    """Connections go back to the pool as they are: each unit of work ended its transaction (asyncpg still rolls
    back one left open), and nothing else (session settings, LISTEN, advisory locks) is used on them."""


class PostgresDatabase(Database):
    """An asyncpg pool of `pool_size` connections (COMMUNITIES_DB_POOL_SIZE), opened on first use.

    `_engine` is SQLAlchemy's asyncio engine for the same URL. It never connects: its dialect compiles the
    statements, and its `before_cursor_execute` event, when something listens to it (a test counting
    statements), is told of every statement the lean path runs."""

    def __init__(self, url: str, *, pool_size: int, pool_timeout: float = POOL_TIMEOUT_S):
        self.url = url
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self._engine: AsyncEngine = create_async_engine(normalize_url(url), pool_size=1, max_overflow=0)
        self._compiler = _Compiler(self._engine.dialect)
        self._dispatch = self._engine.sync_engine.dispatch
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    @property
    def _listened(self) -> bool:
        return bool(self._dispatch.before_cursor_execute)

    def _notify(self, sql: str, arguments, many: bool) -> None:
        self._dispatch.before_cursor_execute(None, None, sql, arguments, None, many)

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    asyncpg_dsn(self.url),
                    min_size=0,
                    max_size=self.pool_size,
                    statement_cache_size=STATEMENT_CACHE_SIZE,
                    reset=_no_reset,
                )
        return self._pool

    async def _acquire(self):
        pool = self._pool or await self._open()
        # asyncio.timeout rather than acquire(timeout=...), which runs the wait in a task of its own.
        async with asyncio.timeout(self.pool_timeout):
            return await pool.acquire()

    def unit_of_work(self, *, write: bool) -> _PostgresTransaction:
        return _PostgresTransaction(self, write)

    async def read(self, statement: Prepared, params: dict[str, Any]) -> list:
        compiled = self._compiler.prepared(statement)
        try:
            connection = await self._acquire()
            try:
                if self._listened:
                    self._notify(compiled.sql, compiled.prepared_arguments(params), False)
                return compiled.rows(await connection.fetch(compiled.sql, *compiled.prepared_arguments(params)))
            finally:
                await self._pool.release(connection)
        except Exception as error:
            replacement = translate_error(error)
            if replacement is None:
                raise
            raise replacement from error

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, Exception):
                pool.terminate()
        await self._engine.dispose()


class _PostgresTransaction:
    """The unit of work of PostgresDatabase: one pooled connection, in a transaction (begun at once for
    writers, at the first statement that needs one for readers)."""

    __slots__ = ("_connection", "_database", "_uow", "_write")

    def __init__(self, database: PostgresDatabase, write: bool):
        self._database = database
        self._write = write
        self._connection = None
        self._uow: _PostgresUnitOfWork | None = None

    async def __aenter__(self) -> UnitOfWork:
        database = self._database
        try:
            connection = await database._acquire()
        except Exception as error:
            raise translate_error(error) or error from error
        self._connection = connection
        uow = self._uow = _PostgresUnitOfWork(database, connection, None)
        if self._write:
            try:
                await uow._begin()
            except BaseException as error:
                await self._release()
                if isinstance(error, Exception) and (replacement := translate_error(error)) is not None:
                    raise replacement from error
                raise
        return uow

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        uow = self._uow
        try:
            if exc_type is not None:
                await self._rollback()
                if isinstance(exc, Exception) and (replacement := translate_error(exc)) is not None:
                    raise replacement from exc
                return
            try:
                if uow.pending_events:
                    await write_pending_events(uow)
                if uow._transaction is not None:
                    await uow._transaction.commit()
            except BaseException as error:
                await self._rollback()
                if isinstance(error, Exception) and (replacement := translate_error(error)) is not None:
                    raise replacement from error
                raise
        finally:
            await self._release()
        database = self._database
        if uow.published and database.on_publish is not None:
            database.on_publish(uow.pending_events)

    async def _rollback(self) -> None:
        transaction = self._uow._transaction
        if transaction is not None:
            with contextlib.suppress(Exception):
                await transaction.rollback()

    async def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await self._database._pool.release(connection)
            except Exception:  # a broken connection: asyncpg has terminated it and the pool will replace it
                pass
