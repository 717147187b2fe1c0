"""communities.v1.Communities: creation, reading, editing, settings, mute, leave and delete."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import empty_pb2
from sqlalchemy import insert, select

from communities.domain.channels import ChannelType
from communities.storage import tables
from communities.v1 import communities_pb2 as pb
from tests.api.conftest import ALL_PERMISSIONS, DEFAULT_PERMISSIONS, P
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details

TEXT, VOICE = ChannelType.TEXT, ChannelType.VOICE


def settings_of(stub, account, community_id) -> pb.SystemMessages:
    return stub.GetSettings(pb.GetSettings(community_id=community_id), metadata=account.metadata).system_messages


def listed(stub, account) -> pb.CommunityList:
    return stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata)


def listed_ids(stub, account) -> list[int]:
    return [c.id for c in listed(stub, account).communities]


def edit_settings(stub, account, community_id, **system):
    request = pb.EditSettings(community_id=community_id, settings=pb.CommunitySettings())
    if system:
        request.settings.system_messages.CopyFrom(pb.SystemMessages(**system))
    return stub.EditSettings(request, metadata=account.metadata)


def test_permission_constants_match_the_contract():
    assert ALL_PERMISSIONS == 57343  # bits 0..15 without the reserved bit 13 (MENTION_EVERYONE is 1 << 15)
    assert DEFAULT_PERMISSIONS == 2 + 4 + 8 + 256 + 32 + 4096 + 16384


# ------------------------------------------------------------------------------------------------ create


def test_create_makes_caller_owner_with_all_permissions(communities_stub, make_account):
    owner = make_account()
    community = communities_stub.CreateCommunity(pb.CreateCommunity(name="Guild"), metadata=owner.metadata)
    assert community.id != 0
    assert community.name == "Guild"
    assert community.owner is True
    assert community.permissions == ALL_PERMISSIONS
    assert community.muted is False
    assert not community.HasField("photo")


def test_create_makes_general_text_channel_the_system_channel(communities_stub, make_account, create, db):
    owner = make_account()
    community = create(owner)
    system = settings_of(communities_stub, owner, community.id)
    assert system.channel_id != 0
    assert system.join_messages is True
    channels = db.rows(
        select(tables.channels.c.id, tables.channels.c.name, tables.channels.c.type).where(
            tables.channels.c.community_id == community.id
        )
    )
    assert [(row.id, row.name, row.type) for row in channels] == [(system.channel_id, "general", TEXT)]


def test_each_community_gets_distinct_ids(communities_stub, make_account, create):
    owner = make_account()
    first, second = create(owner, "one"), create(owner, "two")
    assert first.id != second.id
    assert (
        settings_of(communities_stub, owner, first.id).channel_id
        != settings_of(communities_stub, owner, second.id).channel_id
    )


# ------------------------------------------------------------------------------------------- get communities


def test_get_communities_lists_memberships_in_join_order(communities_stub, make_account, create, add_member):
    me, other = make_account(), make_account()
    older = create(other, "older, joined last")  # created first, joined later
    mine = [create(me, f"mine {i}") for i in range(3)]
    time.sleep(0.005)  # joined_at has millisecond resolution
    add_member(older.id, me)
    answer = listed(communities_stub, me)
    assert [c.id for c in answer.communities] == [c.id for c in mine] + [older.id]
    assert [info.community_id for info in answer.community_user_info] == [c.id for c in answer.communities]
    assert all(info.unread_count == 0 and info.unread_mention_count == 0 for info in answer.community_user_info)
    assert list(answer.unavailable) == []
    by_id = {c.id: c for c in answer.communities}
    assert by_id[older.id].owner is False
    assert by_id[older.id].permissions == DEFAULT_PERMISSIONS
    assert by_id[older.id].name == "older, joined last"
    assert all(by_id[c.id].owner and by_id[c.id].permissions == ALL_PERMISSIONS for c in mine)


def test_get_communities_empty_for_newcomer(communities_stub, make_account):
    answer = listed(communities_stub, make_account())
    assert list(answer.communities) == []
    assert list(answer.community_user_info) == []
    assert list(answer.unavailable) == []


def test_get_communities_shows_only_own(communities_stub, make_account, create):
    alice, bob = make_account(), make_account()
    mine = create(alice)
    create(bob)
    assert listed_ids(communities_stub, alice) == [mine.id]


# ------------------------------------------------------------------------------------------------ members


def test_member_sees_default_permissions(communities_stub, make_account, create, add_member):
    owner, member = make_account(), make_account()
    community = create(owner, "Shared")
    add_member(community.id, member)
    [seen] = listed(communities_stub, member).communities
    assert seen.id == community.id
    assert seen.owner is False
    assert seen.permissions == DEFAULT_PERMISSIONS
    assert seen.name == "Shared"
    assert seen.muted is False


def test_member_with_role_gets_its_permissions(communities_stub, make_account, create, add_member, db):
    owner, member = make_account(), make_account()
    community = create(owner)
    add_member(community.id, member)
    role_id = db.new_id()
    db.write(
        insert(tables.roles).values(
            id=role_id,
            community_id=community.id,
            name="mods",
            permissions=P.COMMUNITY_PERMISSION_MODIFY_COMMUNITY,
            priority=1,
        ),
        insert(tables.member_roles).values(community_id=community.id, user_id=member.id, role_id=role_id),
    )
    [seen] = listed(communities_stub, member).communities
    assert seen.permissions == DEFAULT_PERMISSIONS | P.COMMUNITY_PERMISSION_MODIFY_COMMUNITY
    edited = communities_stub.EditCommunity(
        pb.EditCommunity(community_id=community.id, name="by a mod"), metadata=member.metadata
    )
    assert edited.name == "by a mod" and edited.owner is False
    result = edit_settings(communities_stub, member, community.id, join_messages=False)
    assert result.system_messages.join_messages is False


def test_administrator_role_means_all_permissions_but_not_delete(
    communities_stub, make_account, create, add_member, db
):
    owner, admin = make_account(), make_account()
    community = create(owner)
    add_member(community.id, admin)
    role_id = db.new_id()
    db.write(
        insert(tables.roles).values(
            id=role_id,
            community_id=community.id,
            name="admins",
            permissions=P.COMMUNITY_PERMISSION_ADMINISTRATOR,
            priority=5,
        ),
        insert(tables.member_roles).values(community_id=community.id, user_id=admin.id, role_id=role_id),
    )
    [seen] = listed(communities_stub, admin).communities
    assert seen.permissions == ALL_PERMISSIONS
    assert seen.owner is False
    error = rpc_error(
        communities_stub.DeleteCommunity, pb.DeleteCommunity(community_id=community.id), metadata=admin.metadata
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert listed_ids(communities_stub, owner) == [community.id]


def test_member_cannot_edit_community(communities_stub, make_account, create, add_member):
    owner, member = make_account(), make_account()
    community = create(owner, "Original")
    add_member(community.id, member)
    error = rpc_error(
        communities_stub.EditCommunity,
        pb.EditCommunity(community_id=community.id, name="Hijacked"),
        metadata=member.metadata,
    )
    assert_error(
        error,
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_PERMISSIONS",
        metadata={"permission": "MODIFY_COMMUNITY"},
    )
    assert [c.name for c in listed(communities_stub, owner).communities] == ["Original"]
    assert [c.name for c in listed(communities_stub, member).communities] == ["Original"]


def test_member_cannot_edit_settings_but_can_read_them(communities_stub, make_account, create, add_member):
    owner, member = make_account(), make_account()
    community = create(owner)
    add_member(community.id, member)
    before = settings_of(communities_stub, owner, community.id)
    for system in ({"join_messages": False}, {"channel_id": 0}, {}):
        error = rpc_error(edit_settings, communities_stub, member, community.id, **system)
        assert_error(
            error,
            grpc.StatusCode.PERMISSION_DENIED,
            "MISSING_PERMISSIONS",
            metadata={"permission": "MODIFY_COMMUNITY"},
        )
    seen_by_member = settings_of(communities_stub, member, community.id)
    assert seen_by_member == before
    assert seen_by_member.channel_id != 0 and seen_by_member.join_messages is True


def test_member_cannot_delete_community(communities_stub, make_account, create, add_member):
    owner, member = make_account(), make_account()
    community = create(owner)
    add_member(community.id, member)
    error = rpc_error(
        communities_stub.DeleteCommunity, pb.DeleteCommunity(community_id=community.id), metadata=member.metadata
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    info, _ = details(error)
    assert info is not None and info.domain == "communities.v1" and info.reason
    assert listed_ids(communities_stub, owner) == [community.id]
    assert listed_ids(communities_stub, member) == [community.id]


# ---------------------------------------------------------------------------------------------------- mute


def test_set_muted_is_per_caller(communities_stub, make_account, create, add_member):
    owner, member = make_account(), make_account()
    community = create(owner, "Noisy")
    add_member(community.id, member)
    muted = communities_stub.SetMuted(pb.SetMuted(community_id=community.id, muted=True), metadata=member.metadata)
    assert muted.muted is True
    assert (muted.id, muted.owner, muted.name, muted.permissions) == (
        community.id,
        False,
        "Noisy",
        DEFAULT_PERMISSIONS,
    )
    assert [c.muted for c in listed(communities_stub, member).communities] == [True]
    assert [c.muted for c in listed(communities_stub, owner).communities] == [False]

    again = communities_stub.SetMuted(pb.SetMuted(community_id=community.id, muted=True), metadata=member.metadata)
    assert again.muted is True
    unmuted = communities_stub.SetMuted(pb.SetMuted(community_id=community.id, muted=False), metadata=member.metadata)
    assert unmuted.muted is False
    assert [c.muted for c in listed(communities_stub, member).communities] == [False]


def test_owner_can_mute_and_edit_keeps_mute(communities_stub, make_account, create):
    owner = make_account()
    community = create(owner)
    muted = communities_stub.SetMuted(pb.SetMuted(community_id=community.id, muted=True), metadata=owner.metadata)
    assert muted.muted is True and muted.owner is True and muted.permissions == ALL_PERMISSIONS
    edited = communities_stub.EditCommunity(
        pb.EditCommunity(community_id=community.id, name="Renamed"), metadata=owner.metadata
    )
    assert (edited.id, edited.name, edited.owner, edited.permissions, edited.muted) == (
        community.id,
        "Renamed",
        True,
        ALL_PERMISSIONS,
        True,
    )


# --------------------------------------------------------------------------------------------------- edit


def test_edit_community_renames_and_returns_whole_resource(communities_stub, make_account, create, add_member):
    owner, member = make_account(), make_account()
    community = create(owner, "Before")
    add_member(community.id, member)
    edited = communities_stub.EditCommunity(
        pb.EditCommunity(community_id=community.id, name="  After  "), metadata=owner.metadata
    )
    assert edited.id == community.id
    assert edited.name == "After"
    assert edited.owner is True
    assert edited.permissions == ALL_PERMISSIONS
    assert edited.muted is False
    assert [c.name for c in listed(communities_stub, owner).communities] == ["After"]
    assert [c.name for c in listed(communities_stub, member).communities] == ["After"]


def test_edit_community_without_name_changes_nothing(communities_stub, make_account, create):
    owner = make_account()
    community = create(owner, "Stable")
    request = pb.EditCommunity(community_id=community.id)
    assert not request.HasField("name")
    edited = communities_stub.EditCommunity(request, metadata=owner.metadata)
    assert edited == community
    assert [c.name for c in listed(communities_stub, owner).communities] == ["Stable"]


# ----------------------------------------------------------------------------------------------- settings


def test_edit_settings_merges(communities_stub, make_account, create):
    owner = make_account()
    community = create(owner)
    general = settings_of(communities_stub, owner, community.id).channel_id

    result = edit_settings(communities_stub, owner, community.id, join_messages=False)
    assert result.system_messages.channel_id == general
    assert result.system_messages.join_messages is False
    assert settings_of(communities_stub, owner, community.id) == result.system_messages

    result = edit_settings(communities_stub, owner, community.id, channel_id=0)
    assert result.system_messages.channel_id == 0
    assert result.system_messages.join_messages is False
    assert settings_of(communities_stub, owner, community.id) == result.system_messages

    result = edit_settings(communities_stub, owner, community.id, join_messages=True)
    assert result.system_messages.channel_id == 0
    assert result.system_messages.join_messages is True

    result = edit_settings(communities_stub, owner, community.id, channel_id=general)
    assert result.system_messages.channel_id == general
    assert result.system_messages.join_messages is True

    # No settings at all, and an empty SystemMessages: nothing changes.
    assert edit_settings(communities_stub, owner, community.id).system_messages == result.system_messages
    empty = pb.EditSettings(community_id=community.id)
    assert communities_stub.EditSettings(empty, metadata=owner.metadata).system_messages == result.system_messages
    assert settings_of(communities_stub, owner, community.id) == result.system_messages


def test_edit_settings_both_fields_at_once(communities_stub, make_account, create):
    owner = make_account()
    community = create(owner)
    general = settings_of(communities_stub, owner, community.id).channel_id
    result = edit_settings(communities_stub, owner, community.id, channel_id=0, join_messages=False)
    assert (result.system_messages.channel_id, result.system_messages.join_messages) == (0, False)
    result = edit_settings(communities_stub, owner, community.id, channel_id=general, join_messages=True)
    assert (result.system_messages.channel_id, result.system_messages.join_messages) == (general, True)


def test_edit_settings_rejects_channel_of_another_community(communities_stub, make_account, create):
    owner = make_account()
    community, elsewhere = create(owner, "here"), create(owner, "there")
    before = settings_of(communities_stub, owner, community.id)
    foreign = settings_of(communities_stub, owner, elsewhere.id).channel_id
    assert foreign != before.channel_id
    error = rpc_error(edit_settings, communities_stub, owner, community.id, channel_id=foreign, join_messages=False)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_CHANNEL")
    assert settings_of(communities_stub, owner, community.id) == before
    assert settings_of(communities_stub, owner, elsewhere.id).channel_id == foreign


@pytest.mark.parametrize("channel_id", ["fresh", 1, 2**64 - 1])
def test_edit_settings_rejects_unknown_channel(communities_stub, make_account, create, db, channel_id):
    owner = make_account()
    community = create(owner)
    if channel_id == "fresh":
        channel_id = db.new_id()
    edit_settings(communities_stub, owner, community.id, join_messages=False)
    before = settings_of(communities_stub, owner, community.id)
    error = rpc_error(edit_settings, communities_stub, owner, community.id, channel_id=channel_id, join_messages=True)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_CHANNEL")
    assert settings_of(communities_stub, owner, community.id) == before


def test_edit_settings_rejects_community_id_as_channel(communities_stub, make_account, create):
    owner = make_account()
    community = create(owner)
    before = settings_of(communities_stub, owner, community.id)
    error = rpc_error(edit_settings, communities_stub, owner, community.id, channel_id=community.id)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_CHANNEL")
    assert settings_of(communities_stub, owner, community.id) == before


def test_edit_settings_rejects_voice_channel(communities_stub, make_account, create, db):
    owner = make_account()
    community = create(owner)
    voice = db.new_id()
    db.write(
        insert(tables.channels).values(
            id=voice, community_id=community.id, name="voice", type=VOICE, position=1, created_at=0
        )
    )
    before = settings_of(communities_stub, owner, community.id)
    error = rpc_error(edit_settings, communities_stub, owner, community.id, channel_id=voice, join_messages=False)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _ = details(error)
    assert info is not None and info.reason
    assert settings_of(communities_stub, owner, community.id) == before


# -------------------------------------------------------------------------------------------------- leave


def test_owner_cannot_leave(communities_stub, make_account, create):
    owner = make_account()
    community = create(owner)
    error = rpc_error(
        communities_stub.LeaveCommunity, pb.LeaveCommunity(community_id=community.id), metadata=owner.metadata
    )
    assert_error(error, grpc.StatusCode.FAILED_PRECONDITION, "OWNER_CANNOT_LEAVE")
    assert listed_ids(communities_stub, owner) == [community.id]
    assert settings_of(communities_stub, owner, community.id).channel_id != 0


def test_member_leaves(communities_stub, make_account, create, add_member, db):
    owner, member, stays = make_account(), make_account(), make_account()
    community = create(owner)
    add_member(community.id, member)
    add_member(community.id, stays)
    own = create(member, "member's own")
    assert db.stored_community_count(member.id) == 2

    assert (
        communities_stub.LeaveCommunity(pb.LeaveCommunity(community_id=community.id), metadata=member.metadata)
        == empty_pb2.Empty()
    )
    assert listed_ids(communities_stub, member) == [own.id]
    error = rpc_error(communities_stub.GetSettings, pb.GetSettings(community_id=community.id), metadata=member.metadata)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_COMMUNITY")
    error = rpc_error(
        communities_stub.LeaveCommunity, pb.LeaveCommunity(community_id=community.id), metadata=member.metadata
    )
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_COMMUNITY")
    # The community itself is untouched for the others.
    assert listed_ids(communities_stub, owner) == [community.id]
    assert listed_ids(communities_stub, stays) == [community.id]
    assert db.count(tables.members, community_id=community.id) == 2
    assert db.stored_community_count(member.id) == 1


# ------------------------------------------------------------------------------------------------- delete


def test_delete_community_removes_everything(communities_stub, make_account, create, add_member, db):
    owner, first, second = make_account(), make_account(), make_account()
    community = create(owner, "Doomed")
    survivor = create(owner, "Survivor")
    add_member(community.id, first)
    add_member(community.id, second)
    add_member(survivor.id, first)
    channel_id = settings_of(communities_stub, owner, community.id).channel_id
    role_id = db.new_id()
    db.write(
        insert(tables.roles).values(id=role_id, community_id=community.id, name="r", permissions=0, priority=1),
        insert(tables.member_roles).values(community_id=community.id, user_id=first.id, role_id=role_id),
        insert(tables.channel_overrides).values(channel_id=channel_id, target_id=role_id, allow=4, deny=2),
    )
    counts_before = {a.id: db.stored_community_count(a.id) for a in (owner, first, second)}

    assert (
        communities_stub.DeleteCommunity(pb.DeleteCommunity(community_id=community.id), metadata=owner.metadata)
        == empty_pb2.Empty()
    )

    for account in (owner, first, second):
        for call, request in (
            (communities_stub.GetSettings, pb.GetSettings(community_id=community.id)),
            (communities_stub.EditCommunity, pb.EditCommunity(community_id=community.id, name="x")),
            (communities_stub.DeleteCommunity, pb.DeleteCommunity(community_id=community.id)),
        ):
            assert_error(
                rpc_error(call, request, metadata=account.metadata), grpc.StatusCode.NOT_FOUND, "UNKNOWN_COMMUNITY"
            )
    assert listed_ids(communities_stub, owner) == [survivor.id]
    assert listed_ids(communities_stub, first) == [survivor.id]
    assert listed_ids(communities_stub, second) == []
    assert {a.id: db.stored_community_count(a.id) for a in (owner, first, second)} == {
        account_id: count - 1 for account_id, count in counts_before.items()
    }

    assert db.count(tables.communities, id=community.id) == 0
    assert db.count(tables.channels, community_id=community.id) == 0
    assert db.count(tables.members, community_id=community.id) == 0
    assert db.count(tables.roles, community_id=community.id) == 0
    assert db.count(tables.member_roles, community_id=community.id) == 0
    assert db.count(tables.channel_overrides, channel_id=channel_id) == 0
    # The other community is intact.
    assert db.count(tables.channels, community_id=survivor.id) == 1
    assert db.count(tables.members, community_id=survivor.id) == 2
    assert settings_of(communities_stub, first, survivor.id).channel_id != 0
