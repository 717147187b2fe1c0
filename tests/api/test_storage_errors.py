"""Database failures get one translation on both databases (UNAVAILABLE with ErrorInfo: retry, nothing was
committed), and on SQLite a write lock held by another process never blocks the event loop."""

from __future__ import annotations

import sqlite3
import threading
import time

import grpc
import pytest
import sqlalchemy.exc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import bindparam, insert

from communities.storage import repository as repo
from communities.storage import tables
from communities.storage.database import Prepared, StorageConflict, sqlite_path
from communities.v1 import communities_pb2, users_pb2, users_pb2_grpc
from tests.conftest import rpc_error
from tests.support.errors import assert_error


def _community_names(communities_stub, account) -> list[str]:
    listed = communities_stub.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
    return sorted(community.name for community in listed.communities)


def _raising(error: BaseException):
    async def fail(*args, **kwargs):
        raise error

    return fail


def _pool_timeout() -> BaseException:
    return sqlalchemy.exc.TimeoutError("QueuePool limit of size 8 overflow 0 reached, connection timed out")


def _sqlite_disk_error() -> BaseException:
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = 10  # SQLITE_IOERR
    return error


@pytest.mark.parametrize(
    "failure",
    [
        lambda: OSError(28, "No space left on device"),
        _pool_timeout,
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        lambda: TimeoutError(),
        _sqlite_disk_error,
    ],
    ids=["OSError", "pool timeout", "connection reset", "timeout", "sqlite disk I/O"],
)
def test_failures_inside_a_unit_of_work_are_unavailable_and_commit_nothing(
    server, communities_stub, make_account, monkeypatch, failure
):
    """The same failure, injected half-way through CreateCommunity (after the membership slot and the
    community row were written): UNAVAILABLE on both databases, and the community does not exist."""
    account = make_account()
    # CreateCommunity's third write, after the membership slot and the community row.
    monkeypatch.setattr("communities.storage.channels.insert_channel", _raising(failure()))
    error = rpc_error(
        communities_stub.CreateCommunity, communities_pb2.CreateCommunity(name="doomed"), metadata=account.metadata
    )
    assert_error(error, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")
    monkeypatch.undo()
    assert _community_names(communities_stub, account) == []
    # The membership slot the failed call claimed was rolled back too: the account can still create.
    communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="fine"), metadata=account.metadata)
    assert _community_names(communities_stub, account) == ["fine"]


def test_an_integrity_error_is_one_type_on_both_databases(server, make_account):
    """A unique violation, through SQLAlchemy's execution and through a prepared statement alike, surfaces as
    StorageConflict (UNAVAILABLE to a client) on SQLite and on PostgreSQL."""
    account = make_account()

    async def insert_twice():
        async with server.app.db.unit_of_work(write=True) as uow:
            await uow.execute(insert(tables.users).values(id=account.id, name="again", bot=False, created_at=1))

    with pytest.raises(StorageConflict):
        server.run(insert_twice())

    prepared = Prepared(
        insert(tables.users).values(id=bindparam("id"), name=bindparam("name"), bot=False, created_at=1)
    )

    async def insert_prepared_twice():
        async with server.app.db.unit_of_work(write=True) as uow:
            await uow.execute(prepared, {"id": account.id, "name": "again"})

    with pytest.raises(StorageConflict):
        server.run(insert_prepared_twice())


def test_an_unknown_failure_stays_internal(server, communities_stub, make_account, monkeypatch):
    """Only database failures become UNAVAILABLE: a bug is INTERNAL (and logged), not hidden as retryable."""
    account = make_account()
    monkeypatch.setattr(repo, "insert_community", _raising(KeyError("bug")))
    error = rpc_error(
        communities_stub.CreateCommunity, communities_pb2.CreateCommunity(name="bug"), metadata=account.metadata
    )
    assert_error(error, grpc.StatusCode.INTERNAL, "INTERNAL")


class _LockHolder:
    """Another process's connection (the CLI, a second server) holding SQLite's write lock for a while."""

    def __init__(self, path, seconds: float):
        self._path = path
        self._seconds = seconds
        self.taken = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN IMMEDIATE")
            self.taken.set()
            time.sleep(self._seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    def __enter__(self) -> _LockHolder:
        self._thread.start()
        assert self.taken.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join(30)


@pytest.fixture()
def sqlite_only(server):
    if not server.database_url.startswith("sqlite"):
        pytest.skip("SQLite's file lock; PostgreSQL has row locks and a pool")
    return sqlite_path(server.database_url)


def test_sqlite_write_lock_held_elsewhere_does_not_block_the_loop(
    sqlite_only, grpc_channel, communities_stub, make_account
):
    """While another connection holds the write lock for 3 s, health checks and reads keep being answered
    (it used to take 2.75 s for one health check), and a write waits for the lock and then succeeds."""
    account = make_account()
    health = health_pb2_grpc.HealthStub(grpc_channel)
    users = users_pb2_grpc.UsersStub(grpc_channel)
    users.GetSelf(users_pb2.GetSelf(), metadata=account.metadata)
    write = None
    with _LockHolder(sqlite_only, 3.0):
        write = communities_stub.CreateCommunity.future(
            communities_pb2.CreateCommunity(name="waits for the lock"), metadata=account.metadata, timeout=30
        )
        worst = 0.0
        answered = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            started = time.monotonic()
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert users.GetSelf(users_pb2.GetSelf(), metadata=account.metadata, timeout=10).id == account.id
            worst = max(worst, time.monotonic() - started)
            answered += 1
        assert not write.done(), "the write should still be waiting for the lock"
    # Not a timing benchmark: a blocked loop answers nothing for the lock's whole 3 s; this allows 1 s.
    assert worst < 1.0, f"a health check and a read took {worst:.2f}s while another process held the lock"
    assert answered >= 3
    assert write.result().name == "waits for the lock"


def test_sqlite_write_lock_held_too_long_is_unavailable(sqlite_only, server, communities_stub, make_account):
    account = make_account()
    db = server.app.db
    saved = db.lock_timeout
    db.lock_timeout = 0.3
    try:
        with _LockHolder(sqlite_only, 2.0):
            error = rpc_error(
                communities_stub.CreateCommunity,
                communities_pb2.CreateCommunity(name="late"),
                metadata=account.metadata,
                timeout=30,
            )
    finally:
        db.lock_timeout = saved
    assert_error(error, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")
    assert _community_names(communities_stub, account) == []
