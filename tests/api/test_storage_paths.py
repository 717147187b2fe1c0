"""Both databases' execution paths give the same answers: SQLite's inline path (raw sqlite3 for Prepared
statements, SQLAlchemy for the rest) and PostgreSQL's lean asyncpg path (storage/postgres.py), for every column
type the schema uses (ids >= 2**63 included), row counts, bulk statements, transactions and error mapping."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import pytest
from sqlalchemy import bindparam, delete, func, insert, literal, null, select, update
from sqlalchemy.exc import MultipleResultsFound, NoResultFound

from communities.storage import tables
from communities.storage.database import (
    Prepared,
    StorageConflict,
    StorageUnavailable,
    dialect_insert,
    translate_error,
)

parts = tables.upload_parts
_uploads = itertools.count(1)
BIG_IDS = [2**64 - 1, 2**63, 2**63 - 1, 1]


def _upload_id() -> int:
    """A client-chosen upload id >= 2**63 (stored as a negative BIGINT), new for each test."""
    return 2**63 + 7919 * next(_uploads)


def run(server, work):
    """Run `work(uow)` in one unit of work on the server's loop."""

    async def go(write: bool = True):
        async with server.app.db.unit_of_work(write=write) as uow:
            return await work(uow)

    return server.run(go())


_PART = Prepared(
    select(parts.c.uploader_id, parts.c.upload_id, parts.c.part, parts.c.data, parts.c.size, parts.c.created_at)
    .where(parts.c.upload_id == bindparam("upload_id"))
    .order_by(parts.c.part)
)
_INSERT_PART = Prepared(
    insert(parts).values(
        uploader_id=bindparam("uploader_id"),
        upload_id=bindparam("upload_id"),
        part=bindparam("part"),
        data=bindparam("data"),
        size=bindparam("size"),
        created_at=bindparam("created_at"),
    )
)


def _part_rows(upload_id: int) -> list[dict]:
    return [
        {
            "uploader_id": 5,
            "upload_id": upload_id,
            "part": index,
            "data": bytes([index]) * index + b"\x00\xff",
            "size": index + 2,
            "created_at": 2**62 + index,
        }
        for index in range(4)
    ]


def test_ids_bytes_and_big_integers_round_trip_on_both_paths(server):
    """Client-chosen ids >= 2**63, bytes with NUL bytes, and BIGINT values near 2**63, written and read with a
    Prepared statement and with plain Core statements, come back as they went in."""
    prepared_upload, core_upload = _upload_id(), _upload_id()

    async def write(uow):
        for row in _part_rows(prepared_upload):
            await uow.execute(_INSERT_PART, row)
        await uow.execute(insert(parts), _part_rows(core_upload))

    run(server, write)

    async def read(uow):
        by_prepared = [(await uow.execute(_PART, {"upload_id": u})).all() for u in (prepared_upload, core_upload)]
        by_core = [
            (await uow.execute(select(parts).where(parts.c.upload_id == u).order_by(parts.c.part))).all()
            for u in (prepared_upload, core_upload)
        ]
        return by_prepared, by_core

    by_prepared, by_core = run(server, read)
    for upload_id, prepared_rows, core_rows in zip((prepared_upload, core_upload), by_prepared, by_core, strict=True):
        expected = [tuple(row.values()) for row in _part_rows(upload_id)]
        assert [tuple(row) for row in prepared_rows] == expected
        assert [(r.uploader_id, r.upload_id, r.part, r.data, r.size, r.created_at) for r in core_rows] == expected
        assert all(isinstance(row.data, bytes) for row in prepared_rows + core_rows)
        assert [row.upload_id for row in prepared_rows] == [upload_id] * 4


def test_every_snowflake_column_converts_back_in_core_statements(server, create, make_account):
    """Ids >= 2**63 in a non-client-chosen Snowflake column read back unsigned through a Core statement (as
    SQLAlchemy does); None, booleans, strings and bytes survive too."""
    owner = make_account()
    community_id = create(owner).id
    communities = tables.communities
    columns = (
        communities.c.system_channel_id,
        communities.c.photo_file_id,
        communities.c.photo_preview,
        communities.c.join_messages,
        communities.c.name,
    )
    values = [
        (2**64 - 1, 2**63, b"\x00preview\xff", False, "naïve ✓"),
        (None, None, None, True, "plain"),
        (2**63 - 1, 1, b"", True, ""),
    ]
    for system_channel_id, photo_file_id, preview, join_messages, name in values:

        async def write(uow, v=(system_channel_id, photo_file_id, preview, join_messages, name)):
            result = await uow.execute(
                update(communities)
                .where(communities.c.id == community_id)
                .values(system_channel_id=v[0], photo_file_id=v[1], photo_preview=v[2], join_messages=v[3], name=v[4])
            )
            return result.rowcount

        assert run(server, write) == 1

        async def read(uow):
            return (await uow.execute(select(*columns).where(communities.c.id == community_id))).one()

        row = run(server, read)
        assert tuple(row) == (system_channel_id, photo_file_id, preview, join_messages, name)
        assert row.join_messages is join_messages


def test_row_keys_are_sqlalchemys(server):
    """Rows answer by column key, and unnamed expressions get SQLAlchemy's labels (count_1), on both paths."""

    async def read(uow):
        counted = (await uow.execute(select(func.count()).select_from(parts))).first()
        labelled = (await uow.execute(select(literal(3).label("three"), null().label("absent")))).first()
        return counted._fields, labelled.three, labelled.absent

    assert run(
        server,
        read,
    ) == (("count_1",), 3, None)


def test_row_counts_of_writes(server):
    upload_id = _upload_id()

    async def work(uow):
        counts = {}
        await uow.execute_many(_INSERT_PART, _part_rows(upload_id))
        counts["update"] = (
            await uow.execute(update(parts).where(parts.c.upload_id == upload_id, parts.c.part < 3).values(size=1))
        ).rowcount
        counts["update none"] = (
            await uow.execute(update(parts).where(parts.c.upload_id == upload_id, parts.c.part > 9).values(size=1))
        ).rowcount
        ignore = Prepared.insert_or_ignore(
            parts,
            ["uploader_id", "upload_id", "part"],
            uploader_id=bindparam("uploader_id"),
            upload_id=bindparam("upload_id"),
            part=bindparam("part"),
            data=b"x",
            size=1,
            created_at=0,
        )
        counts["ignored"] = (await uow.execute(ignore, {"uploader_id": 5, "upload_id": upload_id, "part": 0})).rowcount
        counts["inserted"] = (await uow.execute(ignore, {"uploader_id": 5, "upload_id": upload_id, "part": 7})).rowcount
        upsert = dialect_insert(uow, parts).values(
            uploader_id=5, upload_id=upload_id, part=7, data=b"y", size=2, created_at=0
        )
        counts["upsert"] = (
            await uow.execute(
                upsert.on_conflict_do_update(
                    index_elements=["uploader_id", "upload_id", "part"], set_={"size": upsert.excluded.size}
                ).returning(parts.c.size, parts.c.upload_id)
            )
        ).all()
        counts["delete"] = (await uow.execute(delete(parts).where(parts.c.upload_id == upload_id))).rowcount
        return counts

    assert run(server, work) == {
        "update": 3,
        "update none": 0,
        "ignored": 0,
        "inserted": 1,
        "upsert": [(2, upload_id)],
        "delete": 5,
    }


def test_in_lists_and_reused_shapes(server):
    """The same statement shape with other values (PostgreSQL's compiled cache binds the new ones), and IN lists
    of any length."""
    uploads = [_upload_id() for _ in range(3)]

    async def work(uow):
        for upload_id in uploads:
            await uow.execute_many(_INSERT_PART, _part_rows(upload_id))
        one_by_one = [
            (await uow.execute(select(func.count()).where(parts.c.upload_id == u, parts.c.part >= n))).scalar_one()
            for n, u in enumerate(uploads)
        ]
        lists = [
            sorted((await uow.execute(select(parts.c.upload_id).where(parts.c.upload_id.in_(chosen)))).scalars())
            for chosen in (uploads[:1], uploads, [], uploads[1:])
        ]
        return one_by_one, lists

    one_by_one, lists = run(server, work)
    assert one_by_one == [4, 3, 2]
    assert lists == [[uploads[0]] * 4, sorted(uploads * 4), [], sorted(uploads[1:] * 4)]


def test_result_interface(server):
    upload_id = _upload_id()
    run(server, lambda uow: uow.execute_many(_INSERT_PART, _part_rows(upload_id)))

    query = select(parts.c.part).where(parts.c.upload_id == upload_id).order_by(parts.c.part)
    none = query.where(parts.c.part > 9)

    async def work(uow):
        # SQLAlchemy's results (SQLite's non-Prepared path) are read once: one statement per answer.
        answers = {
            "all": [tuple(row) for row in (await uow.execute(query)).all()],
            "first": (await uow.execute(query)).first().part,
            "scalar": (await uow.execute(query)).scalar(),
            "scalars": list((await uow.execute(query)).scalars()),
            "iterated": [row.part for row in await uow.execute(query)],
            "none first": (await uow.execute(none)).first(),
            "none scalar": (await uow.execute(none)).scalar(),
            "none one_or_none": (await uow.execute(none)).one_or_none(),
        }
        with pytest.raises(MultipleResultsFound):
            (await uow.execute(query)).one()
        with pytest.raises(NoResultFound):
            (await uow.execute(none)).scalar_one()
        return answers

    assert run(server, work) == {
        "all": [(0,), (1,), (2,), (3,)],
        "first": 0,
        "scalar": 0,
        "scalars": [0, 1, 2, 3],
        "iterated": [0, 1, 2, 3],
        "none first": None,
        "none scalar": None,
        "none one_or_none": None,
    }


def test_a_failed_unit_of_work_commits_nothing_read_only_or_not(server):
    """A write in a unit of work that then fails is rolled back, also in a read-only one (PostgreSQL begins its
    transaction at the first statement that is not a plain SELECT)."""
    for write in (True, False):
        upload_id = _upload_id()

        async def fail(write=write, upload_id=upload_id):
            async with server.app.db.unit_of_work(write=write) as uow:
                await uow.execute(select(func.count()).select_from(parts))
                await uow.execute_many(_INSERT_PART, _part_rows(upload_id))
                raise KeyError("bug")

        with pytest.raises(KeyError):
            server.run(fail())
        count = run(server, lambda uow, u=upload_id: uow.execute(select(func.count()).where(parts.c.upload_id == u)))
        assert count.scalar_one() == 0


def test_published_units_of_work_call_on_publish_after_commit_only(server):
    db = server.app.db
    seen = []
    original = db.on_publish

    def on_publish(events):
        seen.append("published")
        if original is not None:
            original(events)

    async def publish(fail: bool):
        async with db.unit_of_work(write=True) as uow:
            await uow.execute(select(literal(1)))
            uow.published = True
            if fail:
                raise KeyError("bug")

    async def quiet():
        async with db.unit_of_work(write=True) as uow:
            await uow.execute(select(literal(1)))

    db.on_publish = on_publish
    try:
        server.run(quiet())
        assert seen == []
        with pytest.raises(KeyError):
            server.run(publish(True))
        assert seen == []
        server.run(publish(False))
        assert seen == ["published"]
    finally:
        db.on_publish = original


def test_unique_violations_are_conflicts_on_every_path(server):
    upload_id = _upload_id()
    row = _part_rows(upload_id)[0]
    run(server, lambda uow: uow.execute(_INSERT_PART, row))
    attempts = [
        lambda uow: uow.execute(_INSERT_PART, row),
        lambda uow: uow.execute(insert(parts).values(**row)),
        lambda uow: uow.execute_many(_INSERT_PART, [row]),
        lambda uow: uow.execute(insert(parts), [row, {**row, "part": 99}]),
    ]
    for attempt in attempts:
        with pytest.raises(StorageConflict):
            run(server, attempt)


@pytest.mark.parametrize(
    "error, expected",
    [
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), StorageConflict),
        (asyncpg.exceptions.ForeignKeyViolationError("no such row"), StorageConflict),
        (asyncpg.exceptions.SerializationError("could not serialize"), StorageConflict),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), StorageConflict),
        (asyncpg.exceptions.LockNotAvailableError("lock timeout"), StorageUnavailable),
        (asyncpg.exceptions.QueryCanceledError("statement timeout"), StorageUnavailable),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"), StorageUnavailable),
        (asyncpg.exceptions.AdminShutdownError("shutting down"), StorageUnavailable),
        (asyncpg.exceptions.TooManyConnectionsError("too many"), StorageUnavailable),
        (asyncpg.exceptions.InterfaceError("connection is closed"), StorageUnavailable),
        (TimeoutError(), StorageUnavailable),  # asyncpg's pool.acquire(timeout=...)
        (ConnectionRefusedError(111, "refused"), StorageUnavailable),
        (asyncpg.exceptions.UndefinedColumnError("no such column"), None),
        (asyncpg.exceptions.InterfaceError("another operation is in progress"), None),
    ],
)
def test_asyncpg_errors_are_translated(error, expected):
    replacement = translate_error(error)
    if expected is None:
        assert replacement is None
    else:
        assert type(replacement) is expected


@pytest.fixture()
def postgres_only(server):
    if server.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's connection pool")
    return server.app.db


def test_waiting_too_long_for_a_pooled_connection_is_unavailable(postgres_only, server):
    """Every pooled connection held by a unit of work: the next one waits `pool_timeout` and fails with
    StorageUnavailable; once they are let go, units of work run again."""
    db = postgres_only
    saved = db.pool_timeout
    db.pool_timeout = 0.2

    async def scenario():
        release = asyncio.Event()
        all_held = asyncio.Event()
        holding = 0

        async def hold():
            nonlocal holding
            async with db.unit_of_work(write=False) as uow:
                await uow.execute(select(literal(1)))
                holding += 1
                if holding == db.pool_size:
                    all_held.set()
                await release.wait()

        holders = [asyncio.ensure_future(hold()) for _ in range(db.pool_size)]
        await asyncio.wait_for(all_held.wait(), 30)
        try:
            with pytest.raises(StorageUnavailable):
                async with db.unit_of_work(write=False) as uow:
                    await uow.execute(select(literal(1)))
        finally:
            release.set()
            await asyncio.gather(*holders)
        async with db.unit_of_work(write=True) as uow:
            return (await uow.execute(select(literal(2)))).scalar_one()

    try:
        assert server.run(scenario()) == 2
    finally:
        db.pool_timeout = saved


def test_a_transaction_sees_its_own_writes_and_others_do_not_until_commit(postgres_only, server):
    upload_id = _upload_id()
    db = postgres_only

    async def scenario():
        counts = []
        query = select(func.count()).where(parts.c.upload_id == upload_id)
        async with db.unit_of_work(write=True) as writer:
            await writer.execute_many(_INSERT_PART, _part_rows(upload_id))
            counts.append((await writer.execute(query)).scalar_one())
            async with db.unit_of_work(write=False) as reader:
                counts.append((await reader.execute(query)).scalar_one())
        async with db.unit_of_work(write=False) as reader:
            counts.append((await reader.execute(query)).scalar_one())
        return counts

    assert server.run(scenario()) == [4, 0, 4]
