"""Temporary membership (CreateInvite.temporary): a member who joined with it is removed, with member_left
TEMPORARY_EXPIRED, once none of its update streams has been open for the grace period, unless it was given a role
since. Presence is in the database, so the rule holds across replicas (a stream on one server keeps the member
on every server)."""

from __future__ import annotations

import time

import pytest

from communities.services import members as members_service
from communities.v1 import communities_pb2, invites_pb2, members_pb2, roles_pb2, updates_pb2
from tests.support.updates import UpdateStream

GRACE_MS = 1500
EXPIRED = updates_pb2.MEMBER_LEFT_REASON_TEMPORARY_EXPIRED


@pytest.fixture()
def session(communities_stub, invites_stub, make_account):
    owner = make_account("host")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Match"), metadata=owner.metadata)
    general = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    ).system_messages.channel_id
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, temporary=True, unique=True), metadata=owner.metadata
    )
    return owner, community, invite


def expire(server) -> None:
    """One sweep (the server runs it every few seconds with its own grace period, 60 s by default)."""
    server.run(members_service.expire_temporary_members(server.app, GRACE_MS))


def member_ids(members_stub, owner, community_id) -> set[int]:
    listed = members_stub.ListMembers(members_pb2.ListMembers(community_id=community_id), metadata=owner.metadata)
    return {member.id for member in listed.members}


def test_temporary_invite_and_join_say_so(grpc_channel, session, make_account, invites_stub):
    owner, _, invite = session
    assert invite.temporary
    player = make_account("player")
    with UpdateStream(grpc_channel, owner.metadata) as stream:
        invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
        joined = stream.expect("member_joined").member_joined
    assert joined.temporary and joined.member.id == player.id and joined.invite_code == invite.code


def test_offline_temporary_member_is_removed_after_the_grace_period(
    grpc_channel, server, session, make_account, invites_stub, members_stub
):
    owner, community, invite = session
    player = make_account("player")
    invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
    expire(server)
    assert player.id in member_ids(members_stub, owner, community.id)  # joined just now: within the grace period
    time.sleep(GRACE_MS / 1000 + 0.2)
    with UpdateStream(grpc_channel, owner.metadata) as stream:
        expire(server)
        left = stream.expect("member_left")
    assert left.member_left.user_id == player.id and left.member_left.reason == EXPIRED
    assert member_ids(members_stub, owner, community.id) == {owner.id}


def test_an_open_stream_keeps_a_temporary_member_and_closing_it_starts_the_grace_period(
    grpc_channel, server, session, make_account, invites_stub, members_stub
):
    owner, community, invite = session
    player = make_account("player")
    invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
    with UpdateStream(grpc_channel, player.metadata):
        time.sleep(GRACE_MS / 1000 + 0.2)
        expire(server)
        assert player.id in member_ids(members_stub, owner, community.id)
    expire(server)  # closed just now: still within the grace period
    assert player.id in member_ids(members_stub, owner, community.id)
    time.sleep(GRACE_MS / 1000 + 0.2)
    expire(server)
    assert player.id not in member_ids(members_stub, owner, community.id)


def test_a_role_given_since_joining_makes_the_membership_permanent(
    server, session, make_account, invites_stub, members_stub, roles_stub
):
    owner, community, invite = session
    player = make_account("player")
    invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Regular", priority=1), metadata=owner.metadata
    )
    members_stub.EditMember(
        members_pb2.EditMember(
            community_id=community.id, member_id=player.id, role_ids=members_pb2.RoleIds(ids=[role.id])
        ),
        metadata=owner.metadata,
    )
    time.sleep(GRACE_MS / 1000 + 0.2)
    expire(server)
    assert player.id in member_ids(members_stub, owner, community.id)


def test_a_stream_on_another_replica_keeps_the_member(
    replica, replica_channel, server, session, make_account, invites_stub, members_stub
):
    owner, community, invite = session
    player = make_account("player")
    invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
    with UpdateStream(replica_channel, player.metadata):
        time.sleep(GRACE_MS / 1000 + 0.2)
        expire(server)  # swept on the first server, stream on the second
        assert player.id in member_ids(members_stub, owner, community.id)
    time.sleep(GRACE_MS / 1000 + 0.2)
    replica.run(members_service.expire_temporary_members(replica.app, GRACE_MS))
    assert player.id not in member_ids(members_stub, owner, community.id)
