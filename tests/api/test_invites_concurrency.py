"""Racing UseInvite calls: max_uses is never passed, every success is a membership, every use a success that
did something, on SQLite and PostgreSQL, every time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy import select

from communities.storage import tables
from communities.v1 import communities_pb2, invites_pb2, members_pb2, roles_pb2

ROUNDS = 3


def outcome(future) -> str:
    try:
        future.result()
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def use_all_at_once(invites_stub, code: str, accounts) -> list[str]:
    """Every account calls UseInvite at the same time (all calls in flight before any answer is read)."""
    request = invites_pb2.UseInvite(code=code)
    futures = [invites_stub.UseInvite.future(request, metadata=a.metadata, timeout=120) for a in accounts]
    return [outcome(future) for future in futures]


def new_community(communities_stub, owner) -> tuple[int, int]:
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Race"), metadata=owner.metadata)
    settings = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    )
    return community.id, settings.system_messages.channel_id


def member_ids(members_stub, owner, community_id: int) -> list[int]:
    ids, token = [], ""
    while True:
        page = members_stub.ListMembers(
            members_pb2.ListMembers(community_id=community_id, page_size=1000, page_token=token),
            metadata=owner.metadata,
        )
        ids.extend(m.id for m in page.members)
        token = page.next_page_token
        if not token:
            return ids


def shown(invites_stub, owner, community_id: int, code: str) -> invites_pb2.Invite:
    listed = invites_stub.ListInvites(
        invites_pb2.ListInvites(community_id=community_id, include_inactive=True), metadata=owner.metadata
    )
    [invite] = [i for i in listed.invites if i.code == code]
    return invite


def stored_community_counts(server, accounts) -> dict[int, int]:
    """users.community_count, the counter the 100-communities limit is enforced with."""

    async def run():
        async with server.app.db.unit_of_work(write=False) as uow:
            rows = await uow.execute(
                select(tables.users.c.id, tables.users.c.community_count).where(
                    tables.users.c.id.in_([a.id for a in accounts])
                )
            )
            return {row.id: row.community_count for row in rows}

    return server.run(run())


@pytest.fixture(scope="module")
def accounts_of(make_account):
    def make(count: int, prefix: str):
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda i: make_account(f"{prefix} {i}"), range(count)))

    return make


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_200_users_race_for_100_uses(
    round_, server, communities_stub, members_stub, invites_stub, make_account, accounts_of
):
    owner = make_account("Owner")
    community_id, general = new_community(communities_stub, owner)
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, max_uses=100, max_age=0), metadata=owner.metadata
    )
    racers = accounts_of(200, f"racer {round_}")
    outcomes = use_all_at_once(invites_stub, invite.code, racers)
    assert outcomes.count("OK") == 100, {o: outcomes.count(o) for o in set(outcomes)}
    assert outcomes.count("NOT_FOUND") == 100, {o: outcomes.count(o) for o in set(outcomes)}

    members = member_ids(members_stub, owner, community_id)
    assert len(members) == len(set(members)) == 101
    winners = {a.id for a, o in zip(racers, outcomes, strict=True) if o == "OK"}
    assert set(members) == winners | {owner.id}
    final = shown(invites_stub, owner, community_id, invite.code)
    assert (final.uses, final.state) == (100, invites_pb2.INVITE_STATE_USED_UP)
    active = invites_stub.ListInvites(invites_pb2.ListInvites(community_id=community_id), metadata=owner.metadata)
    assert invite.code not in [i.code for i in active.invites]
    # The losers hold no membership slot; the winners exactly one.
    counts = stored_community_counts(server, racers)
    assert {a.id: counts[a.id] for a in racers} == {a.id: int(a.id in winners) for a in racers}


@pytest.mark.parametrize("with_role", [False, True], ids=["no-role", "role"])
def test_one_user_racing_itself_counts_one_use(
    with_role, server, communities_stub, roles_stub, members_stub, invites_stub, make_account
):
    owner = make_account("Owner")
    community_id, general = new_community(communities_stub, owner)
    role_ids = []
    if with_role:
        role = roles_stub.CreateRole(
            roles_pb2.CreateRole(community_id=community_id, name="Player", priority=1), metadata=owner.metadata
        )
        role_ids = [role.id]
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, max_uses=5, role_ids=role_ids), metadata=owner.metadata
    )
    user = make_account("Eager")
    outcomes = use_all_at_once(invites_stub, invite.code, [user] * 20)
    assert outcomes == ["OK"] * 20, outcomes
    assert sorted(member_ids(members_stub, owner, community_id)) == sorted([owner.id, user.id])
    final = shown(invites_stub, owner, community_id, invite.code)
    assert (final.uses, final.state) == (1, invites_pb2.INVITE_STATE_ACTIVE)
    [member] = members_stub.GetMembers(
        members_pb2.GetMembers(community_id=community_id, member_ids=[user.id]), metadata=owner.metadata
    ).members
    assert list(member.role_ids) == role_ids and member.invite_code == invite.code
    assert stored_community_counts(server, [user]) == {user.id: 1}


def test_100_users_on_an_unlimited_invite(communities_stub, members_stub, invites_stub, make_account, accounts_of):
    owner = make_account("Owner")
    community_id, general = new_community(communities_stub, owner)
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, max_uses=0, max_age=0), metadata=owner.metadata
    )
    racers = accounts_of(100, "crowd")
    with ThreadPoolExecutor(64) as pool:
        request = invites_pb2.UseInvite(code=invite.code)

        def use(account) -> str:
            try:
                invites_stub.UseInvite(request, metadata=account.metadata, timeout=120)
                return "OK"
            except grpc.RpcError as error:
                return error.code().name

        outcomes = list(pool.map(use, racers))
    assert outcomes == ["OK"] * 100, {o: outcomes.count(o) for o in set(outcomes)}
    assert len(member_ids(members_stub, owner, community_id)) == 101
    final = shown(invites_stub, owner, community_id, invite.code)
    assert (final.uses, final.state) == (100, invites_pb2.INVITE_STATE_ACTIVE)
