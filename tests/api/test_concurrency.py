"""Racing calls: only documented outcomes, and the membership counter behind the limit stays exact."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy import func, select

from communities.storage import tables
from communities.v1 import communities_pb2 as pb
from tests.conftest import rpc_error

ROUNDS = 5
LIMIT = 100


def outcome(call, request, metadata) -> str:
    try:
        call(request, metadata=metadata, timeout=30)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def run_together(jobs) -> list[str]:
    """Start every job at the same moment (a barrier), each on its own thread; return their outcomes in order."""
    barrier = threading.Barrier(len(jobs))

    def start(job):
        barrier.wait()
        return outcome(*job)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(start, jobs))


def listed(stub, account) -> list[int]:
    return [c.id for c in stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata).communities]


def memberships(db, user_id) -> int:
    return db.scalar(select(func.count()).select_from(tables.members).where(tables.members.c.user_id == user_id))


def assert_counter_exact(db, *accounts) -> None:
    """users.community_count (what the limit is enforced on) equals the memberships actually held."""
    for account in accounts:
        assert db.stored_community_count(account.id) == memberships(db, account.id), account.name


@pytest.fixture(scope="module")
def delete_race(communities_stub, make_account, create):
    """ROUNDS times: the owner creates a community, then deletes it from 4 calls at once. One owner for all rounds,
    who also owns a community that stays."""
    owner = make_account("racing deleter")
    keep = create(owner, "kept")
    results = []
    for _ in range(ROUNDS):
        community = create(owner, "deleted four times at once")
        request = pb.DeleteCommunity(community_id=community.id)
        results.append(run_together([(communities_stub.DeleteCommunity, request, owner.metadata)] * 4))
    return owner, keep, results


@pytest.fixture(scope="module")
def leave_delete_race(communities_stub, make_account, create, add_member):
    """ROUNDS times: a community with 4 members; they all leave while the owner deletes it. The delete's outcome
    is last in each list."""
    owner = make_account("deleting owner")
    members = [make_account(f"leaving member {i}") for i in range(4)]
    results = []
    for _ in range(ROUNDS):
        community = create(owner, "leave vs delete")
        for member in members:
            add_member(community.id, member)
        leave = pb.LeaveCommunity(community_id=community.id)
        jobs = [(communities_stub.LeaveCommunity, leave, member.metadata) for member in members]
        jobs.append((communities_stub.DeleteCommunity, pb.DeleteCommunity(community_id=community.id), owner.metadata))
        results.append((community.id, run_together(jobs)))
    return owner, members, results


def test_concurrent_deletes_answer_ok_once(delete_race):
    """One of several identical DeleteCommunity calls deletes; the others find nothing left to delete."""
    _, _, results = delete_race
    for outcomes in results:
        assert sorted(outcomes) == ["NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "OK"], results


def test_concurrent_deletes_free_the_slot_once(communities_stub, delete_race, create_many, db):
    """Racing deletes of one community must give its owner back exactly one membership slot, so the limit holds."""
    owner, keep, _ = delete_race
    ids = [c.id for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=owner.metadata).communities]
    assert ids == [keep.id]
    create_many(owner, LIMIT - 1)
    assert len(listed(communities_stub, owner)) == LIMIT
    error = rpc_error(communities_stub.CreateCommunity, pb.CreateCommunity(name="101st"), metadata=owner.metadata)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_counter_exact(db, owner)


def test_leave_racing_delete_answers(leave_delete_race, db):
    """Members leaving while the owner deletes: the delete succeeds, each leave is OK or NOT_FOUND."""
    _, _, results = leave_delete_race
    for _, outcomes in results:
        assert outcomes[-1] == "OK", results
        assert set(outcomes[:-1]) <= {"OK", "NOT_FOUND"}, results


def test_leave_racing_delete_frees_each_slot_once(leave_delete_race, db):
    owner, members, _ = leave_delete_race
    assert_counter_exact(db, owner, *members)


def test_same_member_leaving_twice_at_once(communities_stub, make_account, create, add_member, db):
    owner, member = make_account(), make_account()
    for _ in range(ROUNDS):
        community = create(owner, "double leave")
        add_member(community.id, member)
        request = pb.LeaveCommunity(community_id=community.id)
        outcomes = run_together([(communities_stub.LeaveCommunity, request, member.metadata)] * 3)
        assert "OK" in outcomes and set(outcomes) <= {"OK", "NOT_FOUND"}, outcomes
        assert db.count(tables.members, community_id=community.id) == 1
    assert_counter_exact(db, owner, member)


def test_edits_racing_leave_and_mute(communities_stub, make_account, create, add_member, db):
    owner = make_account()
    members = [make_account() for _ in range(3)]
    community = create(owner, "busy")
    for member in members:
        add_member(community.id, member)
    cid = community.id
    jobs = [
        (communities_stub.EditCommunity, pb.EditCommunity(community_id=cid, name="renamed"), owner.metadata),
        (
            communities_stub.EditSettings,
            pb.EditSettings(
                community_id=cid, settings=pb.CommunitySettings(system_messages=pb.SystemMessages(join_messages=False))
            ),
            owner.metadata,
        ),
        (
            communities_stub.EditSettings,
            pb.EditSettings(
                community_id=cid, settings=pb.CommunitySettings(system_messages=pb.SystemMessages(channel_id=0))
            ),
            owner.metadata,
        ),
        (communities_stub.SetMuted, pb.SetMuted(community_id=cid, muted=True), owner.metadata),
        (communities_stub.LeaveCommunity, pb.LeaveCommunity(community_id=cid), members[0].metadata),
        (communities_stub.SetMuted, pb.SetMuted(community_id=cid, muted=True), members[1].metadata),
        (communities_stub.GetSettings, pb.GetSettings(community_id=cid), members[2].metadata),
        (communities_stub.GetCommunities, pb.GetCommunities(), members[2].metadata),
    ]
    assert run_together(jobs) == ["OK"] * len(jobs)
    [seen] = communities_stub.GetCommunities(pb.GetCommunities(), metadata=owner.metadata).communities
    assert (seen.name, seen.muted) == ("renamed", True)
    system = communities_stub.GetSettings(pb.GetSettings(community_id=cid), metadata=owner.metadata).system_messages
    assert (system.channel_id, system.join_messages) == (0, False)
    assert db.count(tables.members, community_id=cid) == 3
    assert_counter_exact(db, owner, *members)


def test_member_calls_racing_delete(communities_stub, make_account, create, add_member, db):
    """While the owner deletes, a member's calls either see the community or get NOT_FOUND; nothing else."""
    owner, member = make_account(), make_account()
    for _ in range(ROUNDS):
        community = create(owner, "vanishing")
        add_member(community.id, member)
        cid = community.id
        jobs = [
            (communities_stub.DeleteCommunity, pb.DeleteCommunity(community_id=cid), owner.metadata),
            (communities_stub.SetMuted, pb.SetMuted(community_id=cid, muted=True), member.metadata),
            (communities_stub.GetSettings, pb.GetSettings(community_id=cid), member.metadata),
            (communities_stub.EditCommunity, pb.EditCommunity(community_id=cid, name="late"), owner.metadata),
            (
                communities_stub.EditSettings,
                pb.EditSettings(
                    community_id=cid,
                    settings=pb.CommunitySettings(system_messages=pb.SystemMessages(join_messages=False)),
                ),
                owner.metadata,
            ),
        ]
        outcomes = run_together(jobs)
        assert outcomes[0] == "OK", outcomes
        assert set(outcomes[1:]) <= {"OK", "NOT_FOUND"}, outcomes
        assert db.count(tables.communities, id=cid) == 0
    assert_counter_exact(db, owner, member)
