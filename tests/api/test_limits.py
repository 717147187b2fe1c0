"""The per-user community limit: 100 for people, none for bots, exact under concurrent calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from communities.v1 import communities_pb2 as pb
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details

LIMIT = 100


def listed_ids(stub, account) -> list[int]:
    return [c.id for c in stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata).communities]


def create_call(stub, account, name="one too many"):
    return stub.CreateCommunity(pb.CreateCommunity(name=name), metadata=account.metadata)


def assert_limit_reached(error) -> None:
    assert_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED", metadata={"max": str(LIMIT)})
    info, _ = details(error)
    assert info.metadata.get("limit"), dict(info.metadata)


def test_101st_community_is_refused(communities_stub, make_account, create_many, db):
    person = make_account()
    create_many(person, LIMIT - 1, through_service=True)
    last = create_call(communities_stub, person, "the hundredth")
    assert last.owner is True
    error = rpc_error(create_call, communities_stub, person)
    assert_limit_reached(error)
    ids = listed_ids(communities_stub, person)
    assert len(ids) == LIMIT and ids[-1] == last.id
    assert db.stored_community_count(person.id) == LIMIT
    # Refusals are not counted.
    assert_limit_reached(rpc_error(create_call, communities_stub, person))
    assert len(listed_ids(communities_stub, person)) == LIMIT


def test_deleting_one_frees_a_slot(communities_stub, make_account, create_many):
    person = make_account()
    ids = create_many(person, LIMIT)
    assert_limit_reached(rpc_error(create_call, communities_stub, person))
    communities_stub.DeleteCommunity(pb.DeleteCommunity(community_id=ids[10]), metadata=person.metadata)
    again = create_call(communities_stub, person, "after delete")
    assert again.owner is True
    assert len(listed_ids(communities_stub, person)) == LIMIT
    assert_limit_reached(rpc_error(create_call, communities_stub, person))


def test_memberships_count_and_deletion_by_owner_frees_the_members_slot(
    communities_stub, make_account, create, create_many, add_member
):
    """Membership in someone else's community counts; when its owner deletes it, the member gets the slot back."""
    owner, member = make_account(), make_account()
    shared = create(owner, "Shared")
    add_member(shared.id, member)
    create_many(member, LIMIT - 1)
    assert_limit_reached(rpc_error(create_call, communities_stub, member))
    communities_stub.DeleteCommunity(pb.DeleteCommunity(community_id=shared.id), metadata=owner.metadata)
    assert create_call(communities_stub, member, "room again").owner is True
    assert len(listed_ids(communities_stub, member)) == LIMIT
    assert_limit_reached(rpc_error(create_call, communities_stub, member))


def test_leaving_frees_a_slot(communities_stub, make_account, create, create_many, add_member):
    owner, member = make_account(), make_account()
    shared = create(owner, "Shared")
    add_member(shared.id, member)
    create_many(member, LIMIT - 1)
    assert_limit_reached(rpc_error(create_call, communities_stub, member))
    communities_stub.LeaveCommunity(pb.LeaveCommunity(community_id=shared.id), metadata=member.metadata)
    assert create_call(communities_stub, member, "room again").owner is True
    assert_limit_reached(rpc_error(create_call, communities_stub, member))


def test_failed_creations_do_not_use_slots(communities_stub, make_account, create_many):
    person = make_account()
    create_many(person, LIMIT - 1)
    for bad in ("", "x" * 101, "a\x00b"):
        error = rpc_error(create_call, communities_stub, person, bad)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert create_call(communities_stub, person, "the hundredth").owner is True
    assert_limit_reached(rpc_error(create_call, communities_stub, person))


def test_bots_are_exempt(communities_stub, make_account, create_many):
    bot = make_account("Busy Bot", bot=True)
    create_many(bot, LIMIT)
    created = [create_call(communities_stub, bot, f"bot community {i}") for i in range(3)]
    assert all(c.owner for c in created)
    ids = listed_ids(communities_stub, bot)
    assert len(ids) == LIMIT + 3
    assert ids[-3:] == [c.id for c in created]


def test_concurrent_creations_stop_exactly_at_the_limit(communities_stub, make_account, create_many):
    person = make_account()
    create_many(person, LIMIT - 5)

    def attempt(index: int):
        try:
            return create_call(communities_stub, person, f"race {index}")
        except grpc.RpcError as error:
            return error

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    created = [o for o in outcomes if isinstance(o, pb.Community)]
    refused = [o for o in outcomes if not isinstance(o, pb.Community)]
    for error in refused:
        assert_limit_reached(error)
    assert len(created) == 5
    assert len(refused) == 15
    ids = listed_ids(communities_stub, person)
    assert len(ids) == LIMIT
    assert {c.id for c in created} <= set(ids)


def test_concurrent_creations_with_futures(communities_stub, make_account, create_many):
    """Same race through the stub's .future(): every call is in flight before any answer is read."""
    person = make_account()
    create_many(person, LIMIT - 3)
    futures = [
        communities_stub.CreateCommunity.future(pb.CreateCommunity(name=f"future {i}"), metadata=person.metadata)
        for i in range(12)
    ]
    ok = refused = 0
    for future in futures:
        try:
            future.result(timeout=60)
            ok += 1
        except grpc.RpcError as error:
            assert_limit_reached(error)
            refused += 1
    assert (ok, refused) == (3, 9)
    assert len(listed_ids(communities_stub, person)) == LIMIT


def test_concurrent_bot_creations_all_succeed(communities_stub, make_account, create_many):
    bot = make_account(bot=True)
    create_many(bot, LIMIT - 2)
    with ThreadPoolExecutor(max_workers=10) as pool:
        created = list(pool.map(lambda i: create_call(communities_stub, bot, f"bot race {i}"), range(10)))
    assert len({c.id for c in created}) == 10
    assert len(listed_ids(communities_stub, bot)) == LIMIT + 8
