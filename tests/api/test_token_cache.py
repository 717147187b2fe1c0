"""Authentication from a per-server cache, and revocations seen by every replica within a second: two servers
on one database, each with the token cached, and a revocation through one of them."""

from __future__ import annotations

import time

import grpc
import pytest

from communities.services import users as users_service
from communities.v1 import users_pb2, users_pb2_grpc
from tests.support.errors import assert_error

WITHIN = 1.0


def get_self(stub, metadata):
    return stub.GetSelf(users_pb2.GetSelf(), metadata=metadata)


@pytest.fixture(scope="module")
def stubs(users_stub, replica_channel):
    return {"server": users_stub, "replica": users_pb2_grpc.UsersStub(replica_channel)}


def warm(stubs, account) -> None:
    for stub in stubs.values():
        for _ in range(3):
            assert get_self(stub, account.metadata).id == account.id


def refused_within(stub, metadata, seconds: float) -> float:
    """Calls until UNAUTHENTICATED; fails if that takes longer than `seconds`. Returns how long it took."""
    started = time.monotonic()
    while True:
        try:
            get_self(stub, metadata)
        except grpc.RpcError as error:
            assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"the revoked token still worked after {elapsed:.2f}s"
        time.sleep(0.02)


def test_repeated_calls_are_answered_from_the_cache(server, replica, stubs, make_account):
    account = make_account()
    caches = [server.app.credentials, replica.app.credentials]
    before = [cache.hits for cache in caches]
    warm(stubs, account)
    assert all(cache.hits >= hits + 2 for cache, hits in zip(caches, before, strict=True)), [c.hits for c in caches]


@pytest.mark.parametrize("what", ["token", "user id"])
def test_a_revocation_through_one_server_is_seen_by_every_server_within_a_second(
    server, replica, stubs, make_account, what
):
    account, bystander = make_account(), make_account()
    warm(stubs, account)
    warm(stubs, bystander)
    assert server.run(users_service.revoke(server.app, account.token if what == "token" else str(account.id))) == 1
    # The server that revoked drops it at once; the other one with its next poll of the revocation feed.
    assert refused_within(stubs["server"], account.metadata, 0.05) < 0.05
    assert refused_within(stubs["replica"], account.metadata, WITHIN) < WITHIN
    for stub in stubs.values():
        assert get_self(stub, bystander.metadata).id == bystander.id


def test_revoked_on_the_replica_is_refused_here(server, replica, stubs, make_account):
    account = make_account(bot=True)
    warm(stubs, account)
    assert replica.run(users_service.revoke(replica.app, account.token)) == 1
    assert refused_within(stubs["server"], account.metadata, WITHIN) < WITHIN


def test_without_a_recent_poll_the_cache_is_not_trusted(server, stubs, make_account):
    """When the revocation feed cannot be read (here: its poller stopped), every call reads the tokens again."""
    account = make_account()
    warm(stubs, account)
    cache = server.app.credentials
    server.run(cache.stop())
    try:
        misses = cache.misses
        assert get_self(stubs["server"], account.metadata).id == account.id
        assert cache.misses == misses + 1
    finally:
        server.run(_restart(cache))


async def _restart(cache) -> None:
    cache.start()
