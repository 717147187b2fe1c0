"""Schema migrations with Alembic, run from code (`communities migrate`, and `serve` on an empty SQLite file)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from communities.storage.database import create_sqlite_engine, is_sqlite, normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant: replicas that start together take turns migrating under this PostgreSQL advisory lock.
_ADVISORY_LOCK_KEY = 0x636F6D6D


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    command.upgrade(_config(connection), "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(url: str) -> None:
    """Bring the database to the newest schema. Safe to run while other replicas do the same."""
    await _run(url, _upgrade)


async def current_revision(url: str) -> str | None:
    return await _run(url, _current)


async def _run(url: str, function):
    if is_sqlite(url):
        engine = create_sqlite_engine(url)
        try:
            with engine.connect() as connection:
                connection.info["begin_statement"] = "BEGIN IMMEDIATE"
                with connection.begin():
                    return function(connection)
        finally:
            engine.dispose()
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(function)
    finally:
        await engine.dispose()
