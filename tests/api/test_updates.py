"""Updates.Subscribe on both databases: every event type, who sees what, resuming from a cursor, expiry,
revocation, and the audit log written from the same rows."""

from __future__ import annotations

import time

import grpc
import pytest

from communities.services import updates as updates_service
from communities.services import users as users_service
from communities.v1 import (
    channels_pb2,
    communities_pb2,
    invites_pb2,
    members_pb2,
    permissions_pb2,
    roles_pb2,
    updates_pb2,
    updates_pb2_grpc,
)
from tests.conftest import rpc_error
from tests.support.errors import assert_error
from tests.support.updates import UpdateStream, settle

P = permissions_pb2.CommunityPermission
REASON = updates_pb2.MemberLeftReason


@pytest.fixture()
def world(communities_stub, roles_stub, invites_stub, make_account):
    """An owner's community with a Player role, and a way to bring members in through an invite."""
    owner = make_account("owner")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Live"), metadata=owner.metadata)
    general = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    ).system_messages.channel_id
    player_role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Player", priority=1), metadata=owner.metadata
    )

    class World:
        pass

    w = World()
    w.owner, w.community, w.general, w.player_role = owner, community, general, player_role

    def invite(inviter=owner, **fields):
        return invites_stub.CreateInvite(
            invites_pb2.CreateInvite(channel_id=fields.pop("channel_id", general), **fields), metadata=inviter.metadata
        )

    def join(account, code=None):
        code = code or invite(unique=True).code
        invites_stub.UseInvite(invites_pb2.UseInvite(code=code), metadata=account.metadata)
        return code

    w.invite, w.join = invite, join
    return w


def kinds(updates) -> list[str]:
    return [update.WhichOneof("event") for update in updates]


def test_empty_cursor_starts_live_after_ready(grpc_channel, communities_stub, world):
    communities_stub.EditCommunity(
        communities_pb2.EditCommunity(community_id=world.community.id, name="Before"), metadata=world.owner.metadata
    )
    with UpdateStream(grpc_channel, world.owner.metadata) as stream:
        assert stream.ready.cursor and stream.ready.community_id == 0
        assert stream.events(0.3) == []  # nothing from before the subscription
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="After"), metadata=world.owner.metadata
        )
        update = stream.expect("community_updated")
        assert update.community_id == world.community.id and update.cursor
        assert update.community_updated.name == "After"
        assert update.community_updated.owner and update.community_updated.permissions
        assert abs(update.at.ToMilliseconds() - time.time() * 1000) < 60_000


def test_join_attribution_in_member_joined(grpc_channel, world, make_account, invites_stub):
    """The game server's view: who joined, with which invite, from whom, with which roles."""
    player = make_account("player")
    code = world.invite(role_ids=[world.player_role.id], unique=True).code
    with UpdateStream(grpc_channel, world.owner.metadata) as stream:
        world.join(player, code)
        joined = stream.expect("member_joined").member_joined
    assert joined.member.id == player.id and joined.member.community_id == world.community.id
    assert joined.invite_code == code and joined.member.invite_code == code
    assert joined.inviter_id == world.owner.id
    assert list(joined.granted_role_ids) == [world.player_role.id]
    assert list(joined.member.role_ids) == [world.player_role.id]
    assert not joined.temporary


def test_an_existing_member_gaining_roles_from_an_invite_is_member_updated(grpc_channel, world, make_account):
    player = make_account("player")
    world.join(player)
    code = world.invite(role_ids=[world.player_role.id], unique=True).code
    with UpdateStream(grpc_channel, world.owner.metadata) as stream:
        world.join(player, code)
        updated = stream.expect("member_updated").member_updated
    assert updated.member.id == player.id and updated.invite_code == code
    assert updated.inviter_id == world.owner.id and list(updated.granted_role_ids) == [world.player_role.id]


def test_simultaneous_joins_are_each_attributed_to_their_own_invite(grpc_channel, world, make_account):
    players = [make_account(f"p{i}") for i in range(6)]
    codes = [world.invite(unique=True, max_uses=1).code for _ in players]
    import concurrent.futures

    with UpdateStream(grpc_channel, world.owner.metadata) as stream:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(world.join, players, codes))
        joined = [update.member_joined for update in stream.events(1.0) if update.HasField("member_joined")]
    assert {(j.member.id, j.invite_code) for j in joined} == set(zip([p.id for p in players], codes, strict=True))


def test_every_event_type_reaches_the_owner(
    grpc_channel, world, make_account, communities_stub, roles_stub, channels_stub, members_stub, invites_stub
):
    owner, cid = world.owner.metadata, world.community.id
    kicked, banned, leaver = make_account("kicked"), make_account("banned"), make_account("leaver")
    for account in (kicked, banned, leaver):
        world.join(account)
    with UpdateStream(grpc_channel, owner) as stream:
        communities_stub.EditSettings(
            communities_pb2.EditSettings(
                community_id=cid,
                settings=communities_pb2.CommunitySettings(
                    system_messages=communities_pb2.SystemMessages(join_messages=False)
                ),
            ),
            metadata=owner,
        )
        role = roles_stub.CreateRole(roles_pb2.CreateRole(community_id=cid, name="Mod", priority=2), metadata=owner)
        roles_stub.EditRole(roles_pb2.EditRole(community_id=cid, role_id=role.id, name="Moderator"), metadata=owner)
        roles_stub.EditDefaultPermissions(
            roles_pb2.EditDefaultPermissions(
                community_id=cid, permissions=P.COMMUNITY_PERMISSION_VIEW_CHANNEL | P.COMMUNITY_PERMISSION_CREATE_INVITE
            ),
            metadata=owner,
        )
        channel = channels_stub.CreateChannel(channels_pb2.CreateChannel(community_id=cid, name="ops"), metadata=owner)
        channels_stub.EditChannel(channels_pb2.EditChannel(channel_id=channel.id, name="ops-2"), metadata=owner)
        channels_stub.CreateChannelOverride(
            channels_pb2.CreateChannelOverride(
                channel_id=channel.id,
                role_id=role.id,
                overrides=channels_pb2.PermissionOverrides(pos=P.COMMUNITY_PERMISSION_SEND_MESSAGES),
            ),
            metadata=owner,
        )
        channels_stub.DeleteChannelOverride(
            channels_pb2.DeleteChannelOverride(channel_id=channel.id, role_id=role.id), metadata=owner
        )
        members_stub.EditMember(
            members_pb2.EditMember(community_id=cid, member_id=kicked.id, nickname="K"), metadata=owner
        )
        invite = world.invite(unique=True)
        invites_stub.DeleteInvite(invites_pb2.DeleteInvite(code=invite.code), metadata=owner)
        members_stub.RemoveMembers(members_pb2.RemoveMembers(community_id=cid, member_ids=[kicked.id]), metadata=owner)
        ban = members_pb2.RemoveMembers(community_id=cid, member_ids=[banned.id])
        ban.until.FromMilliseconds(0)
        members_stub.RemoveMembers(ban, metadata=owner)
        members_stub.UnbanMembers(members_pb2.UnbanMembers(community_id=cid, user_ids=[banned.id]), metadata=owner)
        communities_stub.LeaveCommunity(communities_pb2.LeaveCommunity(community_id=cid), metadata=leaver.metadata)
        channels_stub.DeleteChannel(channels_pb2.DeleteChannel(channel_id=channel.id), metadata=owner)
        roles_stub.DeleteRole(roles_pb2.DeleteRole(community_id=cid, role_id=role.id), metadata=owner)
        communities_stub.DeleteCommunity(communities_pb2.DeleteCommunity(community_id=cid), metadata=owner)
        updates = stream.take(18)
        assert stream.events(0.3) == []
    assert kinds(updates) == [
        "settings_updated",
        "role_created",
        "role_updated",
        "default_permissions_updated",
        "channel_created",
        "channel_updated",
        "override_updated",
        "override_deleted",
        "member_updated",
        "invite_created",
        "invite_deleted",
        "member_left",
        "member_left",
        "member_unbanned",
        "member_left",
        "channel_deleted",
        "role_deleted",
        "community_deleted",
    ]
    by_kind = {}
    for update in updates:
        by_kind.setdefault(update.WhichOneof("event"), []).append(update)
    assert not by_kind["settings_updated"][0].settings_updated.system_messages.join_messages
    assert by_kind["role_updated"][0].role_updated.name == "Moderator"
    assert by_kind["channel_created"][0].channel_created.permissions  # the owner's own, filled per receiver
    assert by_kind["channel_updated"][0].channel_updated.name == "ops-2"
    assert by_kind["override_updated"][0].override_updated.overrides.pos == P.COMMUNITY_PERMISSION_SEND_MESSAGES
    assert by_kind["member_updated"][0].member_updated.member.nickname == "K"
    assert by_kind["invite_created"][0].invite_created.code == invite.code
    assert by_kind["invite_deleted"][0].invite_deleted.code == invite.code
    assert [u.member_left.reason for u in by_kind["member_left"]] == [
        REASON.MEMBER_LEFT_REASON_KICKED,
        REASON.MEMBER_LEFT_REASON_BANNED,
        REASON.MEMBER_LEFT_REASON_LEFT,
    ]
    assert [u.member_left.user_id for u in by_kind["member_left"]] == [kicked.id, banned.id, leaver.id]
    assert by_kind["member_unbanned"][0].member_unbanned.user_id == banned.id
    assert by_kind["channel_deleted"][0].channel_deleted.channel_id == channel.id
    assert by_kind["role_deleted"][0].role_deleted.role_id == role.id
    cursors = [update.cursor for update in updates]
    assert len(set(cursors)) == len(cursors) and all(cursors)


def test_a_failed_call_publishes_nothing(grpc_channel, world, communities_stub, roles_stub, make_account):
    member = make_account("member")
    world.join(member)
    with UpdateStream(grpc_channel, world.owner.metadata) as stream:
        rpc_error(
            roles_stub.CreateRole,
            roles_pb2.CreateRole(community_id=world.community.id, name="x"),
            metadata=member.metadata,
        )
        rpc_error(
            communities_stub.EditCommunity,
            communities_pb2.EditCommunity(community_id=world.community.id, name=" "),
            metadata=world.owner.metadata,
        )
        assert stream.events(0.5) == []


def test_channel_events_only_for_those_who_can_view_the_channel(
    grpc_channel, world, make_account, channels_stub, members_stub
):
    member = make_account("member")
    world.join(member)
    owner, cid = world.owner.metadata, world.community.id
    hidden = channels_stub.CreateChannel(channels_pb2.CreateChannel(community_id=cid, name="staff"), metadata=owner)
    channels_stub.CreateChannelOverride(
        channels_pb2.CreateChannelOverride(
            channel_id=hidden.id,
            role_id=cid,  # everyone
            overrides=channels_pb2.PermissionOverrides(neg=P.COMMUNITY_PERMISSION_VIEW_CHANNEL),
        ),
        metadata=owner,
    )
    with UpdateStream(grpc_channel, member.metadata) as seen_by_member, UpdateStream(grpc_channel, owner) as by_owner:
        channels_stub.EditChannel(channels_pb2.EditChannel(channel_id=hidden.id, name="staff-2"), metadata=owner)
        invite_to_hidden = world.invite(channel_id=hidden.id, unique=True)
        channels_stub.DeleteChannel(channels_pb2.DeleteChannel(channel_id=hidden.id), metadata=owner)
        visible = channels_stub.CreateChannel(channels_pb2.CreateChannel(community_id=cid, name="open"), metadata=owner)
        owner_updates, member_updates = settle(members_stub, cid, world.owner, by_owner, seen_by_member)
        assert kinds(owner_updates) == [
            "channel_updated",
            "invite_created",
            "channel_deleted",
            "channel_created",
        ]
    assert kinds(member_updates) == ["channel_created"]
    assert member_updates[0].channel_created.id == visible.id
    assert member_updates[0].channel_created.permissions & P.COMMUNITY_PERMISSION_VIEW_CHANNEL
    assert invite_to_hidden.code


def test_invite_events_only_for_the_inviter_and_managers(grpc_channel, world, make_account, roles_stub, members_stub):
    inviter, bystander, manager = make_account("inviter"), make_account("bystander"), make_account("manager")
    for account in (inviter, bystander, manager):
        world.join(account)
    managers = roles_stub.CreateRole(
        roles_pb2.CreateRole(
            community_id=world.community.id,
            name="Managers",
            priority=5,
            permissions=P.COMMUNITY_PERMISSION_MODIFY_COMMUNITY,
        ),
        metadata=world.owner.metadata,
    )
    members_stub.EditMember(
        members_pb2.EditMember(
            community_id=world.community.id, member_id=manager.id, role_ids=members_pb2.RoleIds(ids=[managers.id])
        ),
        metadata=world.owner.metadata,
    )
    with (
        UpdateStream(grpc_channel, inviter.metadata) as by_inviter,
        UpdateStream(grpc_channel, bystander.metadata) as by_bystander,
        UpdateStream(grpc_channel, manager.metadata) as by_manager,
    ):
        code = world.invite(inviter=inviter, unique=True).code
        got = settle(members_stub, world.community.id, world.owner, by_inviter, by_manager, by_bystander)
    assert [u.invite_created.code for u in got[0]] == [code]
    assert [u.invite_created.code for u in got[1]] == [code]
    assert got[2] == []


def test_member_unbanned_only_with_remove_members(grpc_channel, world, make_account, members_stub):
    member, banned = make_account("member"), make_account("banned")
    world.join(member)
    world.join(banned)
    ban = members_pb2.RemoveMembers(community_id=world.community.id, member_ids=[banned.id])
    ban.until.FromMilliseconds(0)
    members_stub.RemoveMembers(ban, metadata=world.owner.metadata)
    with (
        UpdateStream(grpc_channel, member.metadata) as by_member,
        UpdateStream(grpc_channel, world.owner.metadata) as by_owner,
    ):
        members_stub.UnbanMembers(
            members_pb2.UnbanMembers(community_id=world.community.id, user_ids=[banned.id]),
            metadata=world.owner.metadata,
        )
        by_owner_updates, by_member_updates = settle(members_stub, world.community.id, member, by_owner, by_member)
    assert kinds(by_owner_updates) == ["member_unbanned"]
    assert by_member_updates == []


def test_joining_starts_a_communitys_updates_and_removal_ends_them(
    grpc_channel, world, make_account, communities_stub, members_stub
):
    player = make_account("player")
    with UpdateStream(grpc_channel, player.metadata) as stream:
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="Not yet"),
            metadata=world.owner.metadata,
        )
        code = world.join(player)
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="Now"),
            metadata=world.owner.metadata,
        )
        members_stub.RemoveMembers(
            members_pb2.RemoveMembers(community_id=world.community.id, member_ids=[player.id]),
            metadata=world.owner.metadata,
        )
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="Gone"),
            metadata=world.owner.metadata,
        )
        updates = stream.events(1.0)
    # The join posts its join message (join messages are on by default) right after member_joined.
    assert kinds(updates) == ["member_joined", "message_created", "community_updated", "member_left"]
    assert updates[0].member_joined.invite_code == code
    assert updates[1].message_created.author_id == player.id
    assert updates[2].community_updated.name == "Now" and not updates[2].community_updated.owner
    assert updates[3].member_left.user_id == player.id
    assert updates[3].member_left.reason == REASON.MEMBER_LEFT_REASON_KICKED


def test_resume_gets_exactly_the_missed_updates_in_order(grpc_channel, world, communities_stub):
    owner = world.owner.metadata
    with UpdateStream(grpc_channel, owner) as stream:
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="n0"), metadata=owner
        )
        cursor = stream.expect("community_updated").cursor
    for index in range(1, 6):
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name=f"n{index}"), metadata=owner
        )
    with UpdateStream(grpc_channel, owner, cursor, wait_ready=False) as resumed:
        missed = [resumed.expect("community_updated").community_updated.name for _ in range(5)]
        resumed.expect("ready")
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="live"), metadata=owner
        )
        live = resumed.expect("community_updated")
        assert resumed.events(0.3) == []
    assert missed == ["n1", "n2", "n3", "n4", "n5"]
    assert live.community_updated.name == "live"
    # The last cursor of a caught-up stream resumes with nothing but ready.
    with UpdateStream(grpc_channel, owner, live.cursor, wait_ready=False) as again:
        again.expect("ready")
        assert again.events(0.3) == []


def test_bad_and_expired_cursors(grpc_channel, server, world, communities_stub):
    owner = world.owner.metadata
    stub = updates_pb2_grpc.UpdatesStub(grpc_channel)
    for bad in ("garbage", "dTox", "x" * 300):
        request = updates_pb2.Subscribe(cursor=bad)
        error = rpc_error(lambda request=request: list(stub.Subscribe(request, metadata=owner, timeout=5)))
        assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="cursor")
    ahead = updates_service.encode_cursor(10**15)
    error = rpc_error(lambda: list(stub.Subscribe(updates_pb2.Subscribe(cursor=ahead), metadata=owner, timeout=5)))
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="cursor")

    with UpdateStream(grpc_channel, owner) as stream:
        communities_stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=world.community.id, name="old"), metadata=owner
        )
        old = stream.expect("community_updated").cursor
    communities_stub.EditCommunity(
        communities_pb2.EditCommunity(community_id=world.community.id, name="newer"), metadata=owner
    )
    # A retention of 0: everything committed so far is swept.
    server.run(updates_service.sweep_events(server.app, -60_000))
    error = rpc_error(lambda: list(stub.Subscribe(updates_pb2.Subscribe(cursor=old), metadata=owner, timeout=5)))
    assert_error(error, grpc.StatusCode.FAILED_PRECONDITION, "CURSOR_EXPIRED")


def test_a_revoked_token_ends_its_streams_within_5_seconds(grpc_channel, server, make_account):
    account = make_account("revoked")
    with UpdateStream(grpc_channel, account.metadata) as stream:
        revoked_at = time.monotonic()
        assert server.run(users_service.revoke(server.app, account.token)) == 1
        error = stream.ended(timeout=10)
        took = time.monotonic() - revoked_at
    assert error is not None
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert took < 5, f"the stream ended {took:.1f}s after the revocation"


def test_subscribe_needs_a_token(grpc_channel):
    stub = updates_pb2_grpc.UpdatesStub(grpc_channel)
    error = rpc_error(lambda: list(stub.Subscribe(updates_pb2.Subscribe(), timeout=5)))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


# ------------------------------------------------------------------------------------------------ audit log


def test_audit_log_from_the_same_rows_with_reasons(world, make_account, communities_stub, roles_stub, members_stub):
    owner, cid = world.owner, world.community.id
    player = make_account("player")
    world.join(player)
    reason = (("x-audit-log-reason", "spamming%20in%20%23general%20%E2%9C%94"),)
    members_stub.RemoveMembers(
        members_pb2.RemoveMembers(community_id=cid, member_ids=[player.id]), metadata=owner.metadata + reason
    )
    role = roles_stub.CreateRole(roles_pb2.CreateRole(community_id=cid, name="Later"), metadata=owner.metadata)
    log = communities_stub.GetAuditLog(communities_pb2.GetAuditLog(community_id=cid), metadata=owner.metadata)
    actions = [entry.action for entry in log.entries]
    assert actions[:2] == ["role_created", "member_kicked"], actions
    assert "member_joined" in actions and actions[-1] == "member_joined"  # the owner's own, oldest
    created, kicked = log.entries[0], log.entries[1]
    assert created.target_id == role.id and created.actor_id == owner.id and created.reason == ""
    assert kicked.target_id == player.id and kicked.reason == "spamming in #general \u2714"
    ids = [entry.id for entry in log.entries]
    assert ids == sorted(ids, reverse=True)

    only = communities_stub.GetAuditLog(
        communities_pb2.GetAuditLog(community_id=cid, action="member_kicked"), metadata=owner.metadata
    )
    assert [entry.target_id for entry in only.entries] == [player.id]
    by_player = communities_stub.GetAuditLog(
        communities_pb2.GetAuditLog(community_id=cid, actor_id=player.id), metadata=owner.metadata
    )
    assert {entry.action for entry in by_player.entries} == {"member_joined"}

    pages, token = [], ""
    while True:
        page = communities_stub.GetAuditLog(
            communities_pb2.GetAuditLog(community_id=cid, page_size=1, page_token=token), metadata=owner.metadata
        )
        pages.extend(entry.id for entry in page.entries)
        token = page.next_page_token
        if not token:
            break
    assert pages == ids


def test_audit_log_needs_modify_community_and_valid_input(world, make_account, communities_stub, members_stub):
    member, outsider = make_account("member"), make_account("outsider")
    world.join(member)
    cid = world.community.id
    error = rpc_error(
        communities_stub.GetAuditLog, communities_pb2.GetAuditLog(community_id=cid), metadata=member.metadata
    )
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "MISSING_PERMISSIONS")
    error = rpc_error(
        communities_stub.GetAuditLog, communities_pb2.GetAuditLog(community_id=cid), metadata=outsider.metadata
    )
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_COMMUNITY")
    for bad in (
        communities_pb2.GetAuditLog(community_id=cid, action="no_such_action"),
        communities_pb2.GetAuditLog(community_id=cid, page_size=101),
        communities_pb2.GetAuditLog(community_id=cid, page_token="nope"),
    ):
        error = rpc_error(communities_stub.GetAuditLog, bad, metadata=world.owner.metadata)
        assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    too_long = (("x-audit-log-reason", "x" * 513),)
    error = rpc_error(
        members_stub.EditMember,
        members_pb2.EditMember(community_id=cid, member_id=member.id, nickname="n"),
        metadata=world.owner.metadata + too_long,
    )
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="x-audit-log-reason")
    [stored] = [
        m
        for m in members_stub.GetMembers(
            members_pb2.GetMembers(community_id=cid, member_ids=[member.id]), metadata=world.owner.metadata
        ).members
    ]
    assert stored.nickname == ""


def test_ready_carries_a_cursor_to_resume_from(grpc_channel, world, communities_stub):
    """A subscriber that saw nothing but `ready` still has a position to save."""
    owner = world.owner.metadata
    with UpdateStream(grpc_channel, owner) as stream:
        saved = stream.ready.cursor
    communities_stub.EditCommunity(
        communities_pb2.EditCommunity(community_id=world.community.id, name="while away"), metadata=owner
    )
    with UpdateStream(grpc_channel, owner, saved, wait_ready=False) as resumed:
        assert resumed.expect("community_updated").community_updated.name == "while away"
        assert resumed.expect("ready").cursor


def test_a_quiet_subscription_gets_checkpoints_so_its_cursor_never_expires(
    grpc_channel, server, world, make_account, communities_stub, monkeypatch
):
    """Changes in communities the caller is not in move its stream on; after a while without updates for it, a
    checkpoint gives it a cursor past them, so retention never expires a cursor of a quiet bot that missed nothing."""
    monkeypatch.setattr(updates_service, "CHECKPOINT_SECONDS", 0.5)
    quiet = make_account("quiet bot")
    busy = make_account("busy")
    elsewhere = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="busy"), metadata=busy.metadata)
    with UpdateStream(grpc_channel, quiet.metadata) as stream:
        for index in range(3):
            communities_stub.EditCommunity(
                communities_pb2.EditCommunity(community_id=elsewhere.id, name=f"busy {index}"), metadata=busy.metadata
            )
        checkpoint = stream.expect("checkpoint", timeout=15)
        assert checkpoint.cursor and checkpoint.cursor != stream.ready.cursor and checkpoint.community_id == 0
        checkpoint_ms = server.app.clock_ms()
    # A retention that ends at the checkpoint: the busy updates before it are swept, anything after is kept.
    server.run(updates_service.sweep_events(server.app, server.app.clock_ms() - checkpoint_ms))
    with UpdateStream(grpc_channel, quiet.metadata, checkpoint.cursor, wait_ready=False) as resumed:
        assert resumed.expect("ready").cursor
    stub = updates_pb2_grpc.UpdatesStub(grpc_channel)
    expired = updates_pb2.Subscribe(cursor=stream.ready.cursor)
    error = rpc_error(lambda: list(stub.Subscribe(expired, metadata=quiet.metadata, timeout=5)))
    assert_error(error, grpc.StatusCode.FAILED_PRECONDITION, "CURSOR_EXPIRED")


def test_deleting_a_category_and_the_system_channel_says_what_else_changed(grpc_channel, world, channels_stub):
    """A stream's copy of the community stays right: the category's channels come out of it (channel_updated, no
    parent), and deleting the system channel turns system messages off (settings_updated with channel 0)."""
    owner, cid = world.owner.metadata, world.community.id
    category = channels_stub.CreateChannel(
        channels_pb2.CreateChannel(community_id=cid, name="lobby", type=channels_pb2.CATEGORY),
        metadata=owner,
    )
    children = [
        channels_stub.CreateChannel(
            channels_pb2.CreateChannel(community_id=cid, name=name, parent_id=category.id), metadata=owner
        )
        for name in ("match-1", "match-2")
    ]
    with UpdateStream(grpc_channel, owner) as stream:
        channels_stub.DeleteChannel(channels_pb2.DeleteChannel(channel_id=category.id), metadata=owner)
        channels_stub.DeleteChannel(channels_pb2.DeleteChannel(channel_id=world.general), metadata=owner)
        updates = stream.take(5)
        assert stream.events(0.3) == []
    assert kinds(updates) == [
        "channel_deleted",
        "channel_updated",
        "channel_updated",
        "channel_deleted",
        "settings_updated",
    ]
    assert updates[0].channel_deleted.channel_id == category.id
    moved = [update.channel_updated for update in updates[1:3]]
    assert [channel.id for channel in moved] == sorted(child.id for child in children)
    assert all(channel.parent_id == 0 for channel in moved)
    assert updates[3].channel_deleted.channel_id == world.general
    assert updates[4].settings_updated.system_messages.channel_id == 0  # as GetSettings says "none"
    listed = channels_stub.GetChannels(channels_pb2.GetChannels(community_id=cid), metadata=owner)
    assert {channel.id: channel.parent_id for channel in listed.channels} == {child.id: 0 for child in children}
