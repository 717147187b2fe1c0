"""Invites through the API: CreateInvite's rules, target user files, LookupInvite, UseInvite, ListInvites,
DeleteInvite and the target user calls, each against what API.md and invites.proto promise."""

from __future__ import annotations

import asyncio
import csv
import io

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select, update

from communities.services import communities as communities_service
from communities.services import invites as invites_service
from communities.services.context import Principal, wall_clock_ms
from communities.storage import tables
from communities.v1 import (
    channels_pb2,
    communities_pb2,
    invites_pb2,
    members_pb2,
    permissions_pb2,
    roles_pb2,
)
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details

P = permissions_pb2.CommunityPermission
ADMINISTRATOR = P.COMMUNITY_PERMISSION_ADMINISTRATOR
VIEW_CHANNEL = P.COMMUNITY_PERMISSION_VIEW_CHANNEL
SEND_MESSAGES = P.COMMUNITY_PERMISSION_SEND_MESSAGES
MODIFY_CHANNEL = P.COMMUNITY_PERMISSION_MODIFY_CHANNEL
MODIFY_COMMUNITY = P.COMMUNITY_PERMISSION_MODIFY_COMMUNITY
MODIFY_ROLES = P.COMMUNITY_PERMISSION_MODIFY_ROLES
REMOVE_MEMBERS = P.COMMUNITY_PERMISSION_REMOVE_MEMBERS
CREATE_INVITE = P.COMMUNITY_PERMISSION_CREATE_INVITE
DEFAULT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | P.COMMUNITY_PERMISSION_CONNECT_VOICE
    | P.COMMUNITY_PERMISSION_SPEAK_VOICE
    | P.COMMUNITY_PERMISSION_SEND_MEDIA
    | P.COMMUNITY_PERMISSION_ADD_REACTIONS
    | CREATE_INVITE
)

ACTIVE = invites_pb2.INVITE_STATE_ACTIVE
EXPIRED = invites_pb2.INVITE_STATE_EXPIRED
USED_UP = invites_pb2.INVITE_STATE_USED_UP

NOT_FOUND = grpc.StatusCode.NOT_FOUND
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT

LOOKALIKES = set("0Oo1lIi")
MAX_ID = 2**64 - 1
# Ids no account will ever have (far above any snowflake of this century), for "unknown user" targets.
UNKNOWN_BASE = 2**64 - 10_000


# ------------------------------------------------------------------------------------------------ helpers


class Clock:
    """A controllable server clock: the wall clock shifted by an offset, or frozen at one instant."""

    def __init__(self):
        self.offset_ms = 0
        self.frozen_ms: int | None = None

    def __call__(self) -> int:
        return self.frozen_ms if self.frozen_ms is not None else wall_clock_ms() + self.offset_ms

    def advance(self, seconds: float) -> None:
        if self.frozen_ms is not None:
            self.frozen_ms += int(seconds * 1000)
        else:
            self.offset_ms += int(seconds * 1000)

    def freeze(self) -> int:
        self.frozen_ms = self()
        return self.frozen_ms

    def set(self, ms: int) -> None:
        self.frozen_ms = ms


@pytest.fixture
def clock(server, monkeypatch):
    """Replaces the server's clock for one test; monkeypatch puts the real one back afterwards."""
    fake = Clock()
    monkeypatch.setattr(server.app, "clock_ms", fake)
    return fake


def ts_ms(timestamp) -> int:
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000


class World:
    """Thin wrappers over the stubs, so that each test reads as its scenario."""

    def __init__(self, server, stubs, make_account, join_community):
        self.server = server
        self.communities, self.roles, self.channels, self.members, self.invites = stubs
        self.make_account = make_account
        self.join_community = join_community

    # --- setup
    def community(self, owner, name: str = "Guild") -> tuple[communities_pb2.Community, int]:
        """A new community and its `general` channel id."""
        community = self.communities.CreateCommunity(
            communities_pb2.CreateCommunity(name=name), metadata=owner.metadata
        )
        settings = self.communities.GetSettings(
            communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
        )
        return community, settings.system_messages.channel_id

    def member(self, community_id: int, name: str | None = None):
        account = self.make_account(name)
        assert self.join_community(community_id, account)
        return account

    def role(self, owner, community_id: int, name: str = "Role", *, permissions=0, priority=1, color=0):
        return self.roles.CreateRole(
            roles_pb2.CreateRole(
                community_id=community_id, name=name, permissions=permissions, priority=priority, color=color
            ),
            metadata=owner.metadata,
        )

    def set_roles(self, owner, community_id: int, account, *role_ids: int) -> None:
        self.members.EditMember(
            members_pb2.EditMember(
                community_id=community_id, member_id=account.id, role_ids=members_pb2.RoleIds(ids=list(role_ids))
            ),
            metadata=owner.metadata,
        )

    def channel(self, owner, community_id: int, name: str = "chat", type=channels_pb2.TEXT):
        return self.channels.CreateChannel(
            channels_pb2.CreateChannel(community_id=community_id, name=name, type=type), metadata=owner.metadata
        )

    def override(self, owner, channel_id: int, role_id: int, *, allow=0, deny=0) -> None:
        self.channels.CreateChannelOverride(
            channels_pb2.CreateChannelOverride(
                channel_id=channel_id,
                role_id=role_id,
                overrides=channels_pb2.PermissionOverrides(pos=allow, neg=deny),
            ),
            metadata=owner.metadata,
        )

    def default_permissions(self, owner, community_id: int, permissions: int) -> None:
        self.roles.EditDefaultPermissions(
            roles_pb2.EditDefaultPermissions(community_id=community_id, permissions=permissions),
            metadata=owner.metadata,
        )

    # --- invites
    def invite(self, account, channel_id: int, **fields) -> invites_pb2.Invite:
        return self.invites.CreateInvite(
            invites_pb2.CreateInvite(channel_id=channel_id, **fields), metadata=account.metadata
        )

    def invite_error(self, account, channel_id: int, **fields) -> grpc.RpcError:
        return rpc_error(
            self.invites.CreateInvite,
            invites_pb2.CreateInvite(channel_id=channel_id, **fields),
            metadata=account.metadata,
        )

    def use(self, account, code: str) -> communities_pb2.Community:
        return self.invites.UseInvite(invites_pb2.UseInvite(code=code), metadata=account.metadata)

    def use_error(self, account, code: str) -> grpc.RpcError:
        return rpc_error(self.invites.UseInvite, invites_pb2.UseInvite(code=code), metadata=account.metadata)

    def lookup(self, account, code: str) -> invites_pb2.InvitePreview:
        return self.invites.LookupInvite(invites_pb2.LookupInvite(code=code), metadata=account.metadata)

    def lookup_error(self, account, code: str) -> grpc.RpcError:
        return rpc_error(self.invites.LookupInvite, invites_pb2.LookupInvite(code=code), metadata=account.metadata)

    def list(self, account, *, community_id=None, channel_id=None, include_inactive=False) -> list:
        """Every page of ListInvites."""
        found, token = [], ""
        while True:
            page = self.invites.ListInvites(
                invites_pb2.ListInvites(
                    community_id=community_id,
                    channel_id=channel_id,
                    include_inactive=include_inactive,
                    page_size=1000,
                    page_token=token,
                ),
                metadata=account.metadata,
            )
            found.extend(page.invites)
            token = page.next_page_token
            if not token:
                return found

    def listed(self, owner, community_id: int, code: str, *, include_inactive=True):
        """The invite as ListInvites shows it to the owner, or None."""
        for invite in self.list(owner, community_id=community_id, include_inactive=include_inactive):
            if invite.code == code:
                return invite
        return None

    def delete(self, account, code: str) -> None:
        self.invites.DeleteInvite(invites_pb2.DeleteInvite(code=code), metadata=account.metadata)

    def job(self, account, code: str) -> invites_pb2.TargetUsersJobStatus:
        return self.invites.GetTargetUsersJobStatus(
            invites_pb2.GetTargetUsersJobStatus(code=code), metadata=account.metadata
        )

    def targets(self, account, code: str) -> list[int]:
        data = self.invites.GetTargetUsers(
            invites_pb2.GetTargetUsers(code=code), metadata=account.metadata
        ).target_users_file
        rows = [row for row in csv.reader(io.StringIO(data.decode())) if row]
        assert rows[0] == ["user_id"], rows[:2]
        return [int(row[0]) for row in rows[1:]]

    # --- members
    def member_ids(self, owner, community_id: int) -> set[int]:
        ids, token = set(), ""
        while True:
            page = self.members.ListMembers(
                members_pb2.ListMembers(community_id=community_id, page_size=1000, page_token=token),
                metadata=owner.metadata,
            )
            ids.update(member.id for member in page.members)
            token = page.next_page_token
            if not token:
                return ids

    def get_member(self, owner, community_id: int, account) -> members_pb2.CommunityMember:
        [member] = self.members.GetMembers(
            members_pb2.GetMembers(community_id=community_id, member_ids=[account.id]), metadata=owner.metadata
        ).members
        return member

    # --- the database, for what the API does not show
    def active_invite_counter(self, community_id: int) -> int:
        """The counter the 1,000-active-invites limit is enforced with."""

        async def run():
            async with self.server.app.db.unit_of_work(write=False) as uow:
                statement = select(tables.communities.c.invite_count).where(tables.communities.c.id == community_id)
                return (await uow.execute(statement)).scalar_one()

        return self.server.run(run())

    def set_photo(self, community_id: int, file_id: int, preview: bytes) -> None:
        async def run():
            async with self.server.app.db.unit_of_work(write=True) as uow:
                await uow.execute(
                    update(tables.communities)
                    .where(tables.communities.c.id == community_id)
                    .values(photo_file_id=file_id, photo_preview=preview)
                )

        self.server.run(run())


@pytest.fixture(scope="module")
def w(server, communities_stub, roles_stub, channels_stub, members_stub, invites_stub, make_account, join_community):
    stubs = (communities_stub, roles_stub, channels_stub, members_stub, invites_stub)
    return World(server, stubs, make_account, join_community)


def unknown_invite_answer(error: grpc.RpcError) -> tuple:
    """Everything a client can tell about a NOT_FOUND invite answer; must be the same for every cause."""
    info, bad_request = details(error)
    assert info is not None
    violations = None if bad_request is None else bad_request.SerializeToString(deterministic=True)
    return error.code(), error.details(), info.reason, info.domain, tuple(sorted(info.metadata.items())), violations


def line_violations(error: grpc.RpcError) -> list[str]:
    """The descriptions of the BadRequest violations about target_users_file."""
    _, bad_request = details(error)
    assert bad_request is not None, "a bad target users file carries google.rpc.BadRequest"
    return [v.description for v in bad_request.field_violations if v.field == "target_users_file"]


def csv_of(*ids: int) -> bytes:
    return "\n".join(str(i) for i in ids).encode()


# ----------------------------------------------------------------------------------------- CreateInvite


def test_create_invite_defaults(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    invite = w.invite(owner, general)
    assert invite.community_id == community.id and invite.channel_id == general
    assert invite.inviter_id == owner.id
    assert invite.max_age == 86_400, "absent max_age = 86400 seconds"
    assert invite.max_uses == 0 and invite.uses == 0
    assert invite.HasField("created_at") and invite.HasField("expires_at")
    assert ts_ms(invite.expires_at) - ts_ms(invite.created_at) == 86_400_000
    assert abs(ts_ms(invite.created_at) - wall_clock_ms()) < 60_000
    assert not invite.targeted and list(invite.roles) == []
    assert invite.state == ACTIVE


def test_max_age_bounds(w):
    owner = w.make_account("Owner")
    _, general = w.community(owner)
    never = w.invite(owner, general, max_age=0)
    assert never.max_age == 0 and not never.HasField("expires_at"), "max_age 0 never expires"
    for seconds in (1, 3600, 86_400, 604_800):
        invite = w.invite(owner, general, max_age=seconds, unique=True)
        assert invite.max_age == seconds
        assert ts_ms(invite.expires_at) - ts_ms(invite.created_at) == seconds * 1000
    for seconds in (604_801, 10**9, 2**32 - 1):
        error = w.invite_error(owner, general, max_age=seconds)
        assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="max_age")


def test_max_uses_bounds(w):
    owner = w.make_account("Owner")
    _, general = w.community(owner)
    for uses in (0, 1, 50, 100):
        assert w.invite(owner, general, max_uses=uses, unique=True).max_uses == uses
    for uses in (101, 1000, 2**32 - 1):
        error = w.invite_error(owner, general, max_uses=uses)
        assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="max_uses")
    # Nothing was created by the rejected calls: exactly the four above.
    assert len(w.list(owner, channel_id=general, include_inactive=True)) == 4


def test_unique_false_returns_the_same_still_valid_invite(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    other_channel = w.channel(owner, community.id).id
    role_a = w.role(owner, community.id, "A", priority=1).id
    role_b = w.role(owner, community.id, "B", priority=1).id

    first = w.invite(owner, general, max_age=3600, max_uses=5)
    assert w.invite(owner, general, max_age=3600, max_uses=5).code == first.code
    assert w.invite(owner, general, max_age=3600, max_uses=5, unique=False).code == first.code
    # Any other setting, channel or inviter: another invite.
    assert w.invite(owner, general, max_age=3600, max_uses=6).code != first.code
    assert w.invite(owner, general, max_age=7200, max_uses=5).code != first.code
    assert w.invite(owner, other_channel, max_age=3600, max_uses=5).code != first.code
    moderator = w.member(community.id)
    assert w.invite(moderator, general, max_age=3600, max_uses=5).code != first.code
    # Roles are part of the settings (as a set).
    with_roles = w.invite(owner, general, max_age=3600, max_uses=5, role_ids=[role_a, role_b])
    assert with_roles.code != first.code
    assert w.invite(owner, general, max_age=3600, max_uses=5, role_ids=[role_b, role_a]).code == with_roles.code
    assert w.invite(owner, general, max_age=3600, max_uses=5, role_ids=[role_a]).code not in (
        first.code,
        with_roles.code,
    )
    # unique=true: always a new code.
    codes = {w.invite(owner, general, max_age=3600, max_uses=5, unique=True).code for _ in range(5)}
    assert len(codes) == 5 and first.code not in codes
    # Default settings are settings too.
    default = w.invite(owner, general)
    assert w.invite(owner, general, max_age=86_400, max_uses=0).code == default.code


def test_unique_false_skips_used_up_expired_deleted_and_targeted_invites(w, clock):
    owner = w.make_account("Owner")
    _, general = w.community(owner)
    used = w.invite(owner, general, max_age=0, max_uses=1)
    w.use(w.make_account(), used.code)
    assert w.invite(owner, general, max_age=0, max_uses=1).code != used.code, "a used-up invite is not reused"

    short = w.invite(owner, general, max_age=60, max_uses=3)
    clock.advance(61)
    assert w.invite(owner, general, max_age=60, max_uses=3).code != short.code, "an expired invite is not reused"

    deleted = w.invite(owner, general, max_age=0, max_uses=7)
    w.delete(owner, deleted.code)
    assert w.invite(owner, general, max_age=0, max_uses=7).code != deleted.code

    targeted = w.invite(owner, general, max_age=0, max_uses=9, target_users_file=csv_of(owner.id))
    again_targeted = w.invite(owner, general, max_age=0, max_uses=9, target_users_file=csv_of(owner.id))
    assert again_targeted.code != targeted.code, "an invite with target users is always new"
    plain = w.invite(owner, general, max_age=0, max_uses=9)
    assert plain.code not in (targeted.code, again_targeted.code) and not plain.targeted


def test_codes_are_long_lookalike_free_and_unique(w):
    owner = w.make_account("Owner")
    _, general = w.community(owner)
    codes = [w.invite(owner, general, unique=True, max_age=0).code for _ in range(100)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        assert len(code) >= 8, code
        assert code.isascii() and code.isalnum(), code
        assert not set(code) & LOOKALIKES, code
    # Across the codes every allowed character class shows up: they are random, not a counter.
    joined = "".join(codes)
    assert any(c.isdigit() for c in joined) and any(c.islower() for c in joined) and any(c.isupper() for c in joined)


def test_role_ids_at_most_25(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    role_ids = [w.role(owner, community.id, f"r{i}", priority=1).id for i in range(26)]
    invite = w.invite(owner, general, role_ids=role_ids[:25])
    assert sorted(role.id for role in invite.roles) == sorted(role_ids[:25])
    error = w.invite_error(owner, general, role_ids=role_ids, unique=True)
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="role_ids")


def test_roles_must_belong_to_the_community(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    other, _ = w.community(owner, "Other")
    foreign = w.role(owner, other.id, "Foreign", priority=1).id
    own = w.role(owner, community.id, "Own", priority=1).id
    for role_ids in ([foreign], [own, foreign], [123456789]):
        error = w.invite_error(owner, general, role_ids=role_ids)
        assert_error(error, NOT_FOUND, "UNKNOWN_ROLE")
    assert w.list(owner, community_id=community.id, include_inactive=True) == []


def test_role_invites_need_modify_roles_rank_and_bits(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    mod_role = w.role(owner, community.id, "Mod", permissions=MODIFY_ROLES, priority=10).id
    moderator = w.member(community.id)
    w.set_roles(owner, community.id, moderator, mod_role)
    below = w.role(owner, community.id, "Below", permissions=SEND_MESSAGES, priority=9).id
    equal = w.role(owner, community.id, "Equal", priority=10).id
    above = w.role(owner, community.id, "Above", priority=11).id
    kicker = w.role(owner, community.id, "Kicker", permissions=REMOVE_MEMBERS, priority=1).id
    admin = w.role(owner, community.id, "Admin", permissions=ADMINISTRATOR, priority=1).id

    assert [r.id for r in w.invite(moderator, general, role_ids=[below]).roles] == [below]
    for role_ids in ([equal], [above], [below, above]):
        assert_error(w.invite_error(moderator, general, role_ids=role_ids), PERMISSION_DENIED, "ROLE_HIERARCHY")
    for role_ids in ([kicker], [admin], [below, kicker]):
        assert_error(w.invite_error(moderator, general, role_ids=role_ids), PERMISSION_DENIED, "MISSING_PERMISSIONS")

    plain = w.member(community.id)
    error = w.invite_error(plain, general, role_ids=[below])
    assert_error(error, PERMISSION_DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_ROLES"})
    # The owner may grant any role.
    assert len(w.invite(owner, general, role_ids=[equal, above, kicker, admin]).roles) == 4
    # Nothing was created by the refused calls.
    inviters = [i.inviter_id for i in w.list(owner, community_id=community.id, include_inactive=True)]
    assert sorted(inviters) == sorted([moderator.id, owner.id])


def test_target_users_file_needs_modify_community(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    member = w.member(community.id)
    error = w.invite_error(member, general, target_users_file=csv_of(owner.id))
    assert_error(error, PERMISSION_DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_COMMUNITY"})
    manager_role = w.role(owner, community.id, "Manager", permissions=MODIFY_COMMUNITY, priority=1).id
    w.set_roles(owner, community.id, member, manager_role)
    assert w.invite(member, general, target_users_file=csv_of(owner.id)).targeted
    assert len(w.list(owner, community_id=community.id, include_inactive=True)) == 1


def test_channel_visibility_and_create_invite_permission(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    hidden = w.channel(owner, community.id, "hidden").id
    w.override(owner, hidden, community.id, deny=VIEW_CHANNEL)
    no_invites = w.channel(owner, community.id, "no-invites").id
    w.override(owner, no_invites, community.id, deny=CREATE_INVITE)
    member = w.member(community.id)
    outsider = w.make_account("Outsider")

    assert_error(w.invite_error(member, hidden), NOT_FOUND, "UNKNOWN_CHANNEL")
    assert_error(w.invite_error(outsider, general), NOT_FOUND, "UNKNOWN_CHANNEL")
    assert_error(w.invite_error(member, 987654321), NOT_FOUND, "UNKNOWN_CHANNEL")
    assert_error(
        w.invite_error(member, no_invites),
        PERMISSION_DENIED,
        "MISSING_PERMISSIONS",
        metadata={"permission": "CREATE_INVITE"},
    )
    # The owner is above overrides; members can still invite to the ordinary channel.
    assert w.invite(owner, hidden).channel_id == hidden
    assert w.invite(owner, no_invites).channel_id == no_invites
    assert w.invite(member, general).channel_id == general
    # Without CREATE_INVITE in the default permissions, a plain member cannot invite anywhere.
    w.default_permissions(owner, community.id, DEFAULT_PERMISSIONS & ~CREATE_INVITE)
    assert_error(w.invite_error(member, general, unique=True), PERMISSION_DENIED, "MISSING_PERMISSIONS")


def test_invites_lead_to_text_or_voice_channels_not_categories(w):
    owner = w.make_account("Owner")
    community, _ = w.community(owner)
    category = w.channel(owner, community.id, "category", channels_pb2.CATEGORY).id
    voice = w.channel(owner, community.id, "voice", channels_pb2.VOICE).id
    error = w.invite_error(owner, category)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    info, _ = details(error)
    assert info is not None and info.reason not in ("", "INTERNAL", "FAILED_PRECONDITION")
    assert w.invite(owner, voice).channel_id == voice
    preview = w.lookup(w.make_account(), w.invite(owner, voice).code)
    assert preview.channel_type == channels_pb2.VOICE


def test_1000_active_invites_per_community(w, server, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    other, other_general = w.community(owner, "Other")
    me = Principal(id=owner.id, name=owner.name, bot=False)

    async def create(index: int) -> None:
        # 10 short-lived (max_age 60 s), one single-use, the rest never expire.
        await invites_service.create_invite(
            server.app,
            me,
            general,
            max_age=60 if index < 10 else 0,
            max_uses=1 if index == 10 else 0,
            unique=True,
            role_ids=[],
            target_users_file=b"",
        )

    async def create_many():
        for start in range(0, 1000, 8):  # a few at a time: PostgreSQL overlaps them on its connection pool
            await asyncio.gather(*(create(index) for index in range(start, min(start + 8, 1000))))

    server.run(create_many(), timeout=600)
    assert len(w.list(owner, community_id=community.id)) == 1000

    error = w.invite_error(owner, general, unique=True, max_age=0)
    assert_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    info, _ = details(error)
    assert "1000" in info.metadata.values(), dict(info.metadata)
    # unique=false must not sneak past the limit with a new invite either (it may return an existing one).
    reused = w.invite(owner, general, max_age=0)
    assert len(w.list(owner, community_id=community.id, include_inactive=True)) == 1000
    assert reused.code in {i.code for i in w.list(owner, community_id=community.id)}
    # The limit is per community.
    assert w.invite(owner, other_general, unique=True).community_id == other.id

    # Expired invites do not count: after the 10 short ones expire, 10 more fit, not 11.
    clock.advance(61)
    for _ in range(10):
        w.invite(owner, general, unique=True, max_age=0)
    assert_error(w.invite_error(owner, general, unique=True), grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")

    # A used-up invite frees its place, and so does a deleted one.
    single = next(i for i in w.list(owner, community_id=community.id) if i.max_uses == 1)
    w.use(w.make_account(), single.code)
    w.invite(owner, general, unique=True, max_age=0)
    assert_error(w.invite_error(owner, general, unique=True), grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    w.delete(owner, w.list(owner, community_id=community.id)[-1].code)
    w.invite(owner, general, unique=True, max_age=0)
    assert_error(w.invite_error(owner, general, unique=True), grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    assert len(w.list(owner, community_id=community.id)) == 1000
    assert w.active_invite_counter(community.id) == 1000


# ---------------------------------------------------------------------------------------- target users file


def test_target_users_file_tolerances(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    a, b = w.make_account("A"), w.make_account("B")
    unknown = [UNKNOWN_BASE + 1, UNKNOWN_BASE + 2, MAX_ID]
    data = (
        b"\xef\xbb\xbfuser_id\r\n"
        b"\r\n"
        + f"  {a.id}  \r\n".encode()
        + f"\t{b.id}\r\n".encode()
        + b"\n"
        + f"{a.id}\n".encode()  # duplicate
        + f"{unknown[0]}\r\n{unknown[1]} \n {unknown[2]}\r\n".encode()
        + f"{b.id}".encode()  # duplicate, no final newline
        + b"\r\n   \r\n\t\n"
    )
    invite = w.invite(owner, general, target_users_file=data)
    assert invite.targeted
    status = w.job(owner, invite.code)
    assert status.status == invites_pb2.COMPLETED
    assert status.total_users == 5, "duplicates are counted once"
    assert status.processed_users == 5
    assert status.unknown_users == 3
    assert status.HasField("created_at") and status.HasField("completed_at")
    assert sorted(w.targets(owner, invite.code)) == sorted([a.id, b.id, *unknown])
    w.use(a, invite.code)
    assert a.id in w.member_ids(owner, community.id)


@pytest.mark.parametrize(
    "data",
    [
        b"123\n456",
        b"user_id\n123\n456\n",
        b"USER_ID\r\n123\r\n456\r\n",
        b"\xef\xbb\xbf123\r\n456",
        b"\n\n  user_id  \n\n123\n\n\n456\n\n",
        b"123\n456\n123\n456\n456\n",
    ],
    ids=["plain", "header", "header-upper-crlf", "bom", "blank-lines-around-header", "duplicates"],
)
def test_target_users_file_variants(w, data):
    owner = w.make_account("Owner")
    _, general = w.community(owner)
    invite = w.invite(owner, general, target_users_file=data)
    assert w.job(owner, invite.code).total_users == 2
    assert sorted(w.targets(owner, invite.code)) == [123, 456]


BAD_LINES = {
    "letters": b"abc",
    "digits-then-letters": b"123abc",
    "negative": b"-5",
    "plus-sign": b"+5",
    "zero": b"0",
    "zeros": b"000",
    "2**64": str(2**64).encode(),
    "20-digit-overflow": b"99999999999999999999",
    "21-digits": b"100000000000000000000",
    "two-columns": b"1,2",
    "trailing-comma": b"123,",
    "leading-comma": b",123",
    "float": b"1.5",
    "integral-float": b"123.0",
    "exponent": b"1e5",
    "hex": b"0x1F",
    "empty-quoted": b'""',
    "two-ids-with-space": b"12 34",
    "late-header": b"user_id",
    "other-header": b"id",
    "fullwidth-digits": "\uff11\uff12\uff13".encode(),
    "arabic-digits": "\u0661\u0662\u0663".encode(),
    "nul": b"\x00",
    "invalid-utf8": b"\xff\xfe",
    "semicolon": b"123;",
}


@pytest.mark.parametrize("bad", list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_malformed_line_rejects_the_whole_file(w, bad):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    before = w.active_invite_counter(community.id)
    data = b"user_id\n111\n" + bad + b"\n222\n"
    error = w.invite_error(owner, general, target_users_file=data)
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="target_users_file")
    assert line_violations(error) == ["Line 3: invalid user ID"]
    assert w.list(owner, community_id=community.id, include_inactive=True) == []
    assert w.active_invite_counter(community.id) == before


def test_line_numbers_are_physical_lines(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    # BOM + header on line 1, blank lines count, CRLF counts as one line end.
    data = b"\xef\xbb\xbfuser_id\r\n\r\n  42 \r\nx\r\n\r\n43\r\n-1\r\n\r\n\r\n1,2\r\n44"
    error = w.invite_error(owner, general, target_users_file=data)
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="target_users_file")
    assert line_violations(error) == [
        "Line 4: invalid user ID",
        "Line 7: invalid user ID",
        "Line 10: invalid user ID",
    ]
    # Without a header, a bad first line is line 1.
    error = w.invite_error(owner, general, target_users_file=b"nope\n42\n")
    assert line_violations(error) == ["Line 1: invalid user ID"]
    assert w.list(owner, community_id=community.id, include_inactive=True) == []


def test_at_most_100_bad_lines_are_reported(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    lines = [b"x%d" % i if i % 2 else b"%d" % (i + 1) for i in range(400)]  # 200 bad lines: 2, 4, 6, ...
    error = w.invite_error(owner, general, target_users_file=b"\n".join(lines))
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="target_users_file")
    assert line_violations(error) == [f"Line {n}: invalid user ID" for n in range(2, 201, 2)]
    assert w.list(owner, community_id=community.id, include_inactive=True) == []


def test_unknown_users_are_kept_and_counted(w):
    owner = w.make_account("Owner")
    _, general = w.community(owner)
    known = [w.make_account() for _ in range(3)]
    unknown = [UNKNOWN_BASE + i for i in range(1, 5)]
    invite = w.invite(owner, general, target_users_file=csv_of(*unknown, *(a.id for a in known)))
    status = w.job(owner, invite.code)
    assert (status.total_users, status.unknown_users) == (7, 4)
    assert sorted(w.targets(owner, invite.code)) == sorted([*unknown, *(a.id for a in known)])


# ----------------------------------------------------------------------------------------- LookupInvite


def test_lookup_invite_preview(w):
    owner = w.make_account("Owner")
    community, _ = w.community(owner, "Preview Town")
    channel = w.channel(owner, community.id, "welcome")
    w.set_photo(community.id, 4242, b"tiny-preview")
    high = w.role(owner, community.id, "Veteran", priority=5, color=0x123456)
    low = w.role(owner, community.id, "Player", priority=2, color=0xABCDEF)
    for _ in range(2):
        w.member(community.id)
    invite = w.invite(owner, channel.id, max_age=3600, role_ids=[low.id, high.id])
    stranger = w.make_account("Stranger")
    preview = w.lookup(stranger, invite.code)
    assert preview.code == invite.code
    assert preview.community_id == community.id and preview.community_name == "Preview Town"
    assert preview.community_photo.file_id == 4242 and preview.community_photo.preview == b"tiny-preview"
    assert preview.channel_id == channel.id and preview.channel_name == "welcome"
    assert preview.channel_type == channels_pb2.TEXT
    assert preview.approximate_member_count == 3
    assert {(r.id, r.name, r.color) for r in preview.roles} == {
        (high.id, "Veteran", 0x123456),
        (low.id, "Player", 0xABCDEF),
    }
    assert ts_ms(preview.expires_at) == ts_ms(invite.expires_at)
    assert preview.inviter_id == owner.id and not preview.targeted
    # Looking is not joining.
    assert stranger.id not in w.member_ids(owner, community.id)
    never = w.invite(owner, channel.id, max_age=0)
    assert not w.lookup(stranger, never.code).HasField("expires_at")


def test_preview_member_count_is_counted_again_once_it_is_older_than_its_ttl(w, clock):
    """Previews reuse a community's member count (counting is a scan of its members) for at most
    MEMBER_COUNT_TTL_MS, then count again."""
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    invite = w.invite(owner, general, max_age=0)
    stranger = w.make_account("Stranger")
    assert w.lookup(stranger, invite.code).approximate_member_count == 1
    w.member(community.id)
    assert w.lookup(stranger, invite.code).approximate_member_count == 1  # reused
    clock.advance(invites_service.MEMBER_COUNT_TTL_MS / 1000)
    assert w.lookup(stranger, invite.code).approximate_member_count == 2


def test_targeted_invite_is_visible_only_to_targets(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    target, outsider = w.make_account("Target"), w.make_account("Outsider")
    invite = w.invite(owner, general, target_users_file=csv_of(target.id))
    preview = w.lookup(target, invite.code)
    assert preview.targeted and preview.community_id == community.id
    hidden = w.lookup_error(outsider, invite.code)
    assert_error(hidden, NOT_FOUND, "UNKNOWN_INVITE")
    unknown = w.lookup_error(outsider, "zzzzzzzzzz")
    assert unknown_invite_answer(hidden) == unknown_invite_answer(unknown)
    assert_error(w.use_error(outsider, invite.code), NOT_FOUND, "UNKNOWN_INVITE")
    assert outsider.id not in w.member_ids(owner, community.id)


# ----------------------------------------------------------------------------------------------- UseInvite


def test_use_invite_joins_with_roles_and_records_the_code(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    role = w.role(owner, community.id, "Player", priority=1).id
    invite = w.invite(owner, general, role_ids=[role], max_uses=10)
    player = w.make_account("Player")
    joined = w.use(player, invite.code)
    assert joined.id == community.id and not joined.owner and joined.name == "Guild"
    member = w.get_member(owner, community.id, player)
    assert list(member.role_ids) == [role]
    assert member.invite_code == invite.code
    assert w.listed(owner, community.id, invite.code).uses == 1
    communities = w.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=player.metadata)
    assert community.id in [c.id for c in communities.communities]


def test_existing_member_gets_roles_and_uses_count_only_when_something_was_granted(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    role_a = w.role(owner, community.id, "A", priority=1).id
    role_b = w.role(owner, community.id, "B", priority=1).id
    member = w.member(community.id)

    role_invite = w.invite(owner, general, role_ids=[role_a, role_b], max_uses=5)
    assert w.use(member, role_invite.code).id == community.id
    after = w.get_member(owner, community.id, member)
    assert sorted(after.role_ids) == sorted([role_a, role_b])
    assert after.invite_code == "", "a member keeps the attribution of how it joined"
    assert w.listed(owner, community.id, role_invite.code).uses == 1
    # Again: nothing left to grant, no use.
    w.use(member, role_invite.code)
    assert w.listed(owner, community.id, role_invite.code).uses == 1
    # Only one of two roles missing: it is granted and the use counts.
    w.set_roles(owner, community.id, member, role_a)
    w.use(member, role_invite.code)
    assert sorted(w.get_member(owner, community.id, member).role_ids) == sorted([role_a, role_b])
    assert w.listed(owner, community.id, role_invite.code).uses == 2

    # A role-less single-use invite: members re-using it burn nothing, a newcomer still can use it.
    plain = w.invite(owner, general, max_uses=1)
    w.use(member, plain.code)
    w.use(owner, plain.code)
    assert w.listed(owner, community.id, plain.code).uses == 0
    newcomer = w.make_account("Newcomer")
    w.use(newcomer, plain.code)
    assert w.get_member(owner, community.id, newcomer).invite_code == plain.code
    assert w.listed(owner, community.id, plain.code).state == USED_UP


def test_every_unusable_invite_answers_the_same_not_found(w, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    start = clock.freeze()
    expiring = w.invite(owner, general, max_age=60)
    single = w.invite(owner, general, max_uses=1, unique=True)
    deleted = w.invite(owner, general, max_uses=3, unique=True)
    targeted = w.invite(owner, general, target_users_file=csv_of(owner.id, UNKNOWN_BASE))
    valid = w.invite(owner, general, max_age=0, unique=True)  # codes are case-sensitive
    w.use(w.make_account(), single.code)
    w.delete(owner, deleted.code)

    user = w.make_account("User")
    clock.set(start + 60_000 - 1)
    w.lookup(user, expiring.code)  # still valid one millisecond before expires_at
    clock.set(start + 60_000 + 1)

    answers = {}
    for name, code in (
        ("expired", expiring.code),
        ("used up", single.code),
        ("deleted", deleted.code),
        ("not for you", targeted.code),
        ("unknown", "abcdefghjk"),
        ("unknown-long", "N" * 32),
        ("longer than any code", "N" * 200),
        ("another's case", valid.code.swapcase()),
    ):
        use_error = w.use_error(user, code)
        assert_error(use_error, NOT_FOUND, "UNKNOWN_INVITE")
        lookup_error = w.lookup_error(user, code)
        assert_error(lookup_error, NOT_FOUND, "UNKNOWN_INVITE")
        answers[name] = (unknown_invite_answer(use_error), unknown_invite_answer(lookup_error))
    assert len(set(answers.values())) == 1, answers
    assert user.id not in w.member_ids(owner, community.id)
    # Nothing was counted by the refused calls.
    assert w.listed(owner, community.id, expiring.code).uses == 0
    assert w.listed(owner, community.id, single.code).uses == 1


def test_expiry_takes_effect_at_once(w, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    start = clock.freeze()
    invite = w.invite(owner, general, max_age=30)
    assert ts_ms(invite.expires_at) == start + 30_000
    early = w.make_account()
    clock.set(start + 29_999)
    w.use(early, invite.code)
    clock.set(start + 30_001)
    late = w.make_account()
    assert_error(w.use_error(late, invite.code), NOT_FOUND, "UNKNOWN_INVITE")
    assert_error(w.lookup_error(late, invite.code), NOT_FOUND, "UNKNOWN_INVITE")
    assert w.listed(owner, community.id, invite.code, include_inactive=False) is None
    shown = w.listed(owner, community.id, invite.code)
    assert (shown.state, shown.uses) == (EXPIRED, 1)


def test_banned_user_is_refused_without_burning_a_use(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    banned = w.member(community.id, "Banned")
    w.members.RemoveMembers(
        members_pb2.RemoveMembers(community_id=community.id, member_ids=[banned.id], until=Timestamp(seconds=0)),
        metadata=owner.metadata,
    )
    invite = w.invite(owner, general, max_uses=1)
    for _ in range(3):
        assert_error(w.use_error(banned, invite.code), PERMISSION_DENIED, "BANNED")
    assert banned.id not in w.member_ids(owner, community.id)
    shown = w.listed(owner, community.id, invite.code)
    assert (shown.uses, shown.state) == (0, ACTIVE)
    w.use(w.make_account(), invite.code)
    assert w.listed(owner, community.id, invite.code).state == USED_UP


def test_timed_ban_ends_and_kicked_users_may_come_back(w, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    banned, kicked = w.member(community.id, "Banned"), w.member(community.id, "Kicked")
    now = clock.freeze()
    w.members.RemoveMembers(
        members_pb2.RemoveMembers(
            community_id=community.id, member_ids=[banned.id], until=Timestamp(seconds=now // 1000 + 3600)
        ),
        metadata=owner.metadata,
    )
    w.members.RemoveMembers(
        members_pb2.RemoveMembers(community_id=community.id, member_ids=[kicked.id]), metadata=owner.metadata
    )
    invite = w.invite(owner, general, max_age=0)
    assert_error(w.use_error(banned, invite.code), PERMISSION_DENIED, "BANNED")
    w.use(kicked, invite.code)
    assert w.get_member(owner, community.id, kicked).invite_code == invite.code
    clock.advance(3601)
    w.use(banned, invite.code)
    assert w.member_ids(owner, community.id) == {owner.id, banned.id, kicked.id}
    assert w.listed(owner, community.id, invite.code).uses == 2


def test_user_at_the_community_limit_is_refused_without_burning_a_use(w, server):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    full = w.make_account("Full")
    bot = w.make_account("Bot", bot=True)

    async def fill(account):
        who = Principal(id=account.id, name=account.name, bot=account.bot)
        ids = []
        for index in range(100):
            ids.append((await communities_service.create_community(server.app, who, f"mine {index}")).id)
        return ids

    mine = server.run(fill(full))
    server.run(fill(bot))
    invite = w.invite(owner, general, max_uses=1)
    error = w.use_error(full, invite.code)
    assert_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    assert full.id not in w.member_ids(owner, community.id)
    assert (w.listed(owner, community.id, invite.code).uses) == 0
    # After leaving one (deleting it, as its owner) the same invite works.
    w.communities.DeleteCommunity(communities_pb2.DeleteCommunity(community_id=mine[0]), metadata=full.metadata)
    w.use(full, invite.code)
    assert full.id in w.member_ids(owner, community.id)
    # At the limit again (99 own + this one), but already a member: a role invite still grants its role.
    role = w.role(owner, community.id, "Extra", priority=1).id
    role_invite = w.invite(owner, general, role_ids=[role])
    w.use(full, role_invite.code)
    assert list(w.get_member(owner, community.id, full).role_ids) == [role]
    assert w.listed(owner, community.id, role_invite.code).uses == 1
    # Bots have no community limit.
    w.use(bot, w.invite(owner, general, unique=True).code)
    assert bot.id in w.member_ids(owner, community.id)


def _revocation_case(w, how: str, user):
    """An invite (that `user` could use) whose inviter then loses the authority to create it; returns
    (owner, community, code)."""
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    inviter = w.member(community.id, "Inviter")
    if how == "left":
        code = w.invite(inviter, general, max_age=0).code
        leave = communities_pb2.LeaveCommunity(community_id=community.id)
        w.communities.LeaveCommunity(leave, metadata=inviter.metadata)
    elif how == "kicked":
        code = w.invite(inviter, general, max_age=0).code
        w.members.RemoveMembers(
            members_pb2.RemoveMembers(community_id=community.id, member_ids=[inviter.id]), metadata=owner.metadata
        )
    elif how == "default permissions":
        code = w.invite(inviter, general, max_age=0).code
        w.default_permissions(owner, community.id, DEFAULT_PERMISSIONS & ~CREATE_INVITE)
    elif how == "role removed":
        w.default_permissions(owner, community.id, DEFAULT_PERMISSIONS & ~CREATE_INVITE)
        role = w.role(owner, community.id, "Inviters", permissions=CREATE_INVITE, priority=1).id
        w.set_roles(owner, community.id, inviter, role)
        code = w.invite(inviter, general, max_age=0).code
        w.set_roles(owner, community.id, inviter)
    elif how == "channel override":
        code = w.invite(inviter, general, max_age=0).code
        w.override(owner, general, community.id, deny=CREATE_INVITE)
    elif how == "modify roles lost":
        mod = w.role(owner, community.id, "Mod", permissions=MODIFY_ROLES, priority=10).id
        w.set_roles(owner, community.id, inviter, mod)
        granted = w.role(owner, community.id, "Player", priority=1).id
        code = w.invite(inviter, general, max_age=0, role_ids=[granted]).code
        w.roles.EditRole(
            roles_pb2.EditRole(community_id=community.id, role_id=mod, permissions=0), metadata=owner.metadata
        )
    elif how == "role raised above inviter":
        mod = w.role(owner, community.id, "Mod", permissions=MODIFY_ROLES, priority=10).id
        w.set_roles(owner, community.id, inviter, mod)
        granted = w.role(owner, community.id, "Player", priority=1).id
        code = w.invite(inviter, general, max_age=0, role_ids=[granted]).code
        w.roles.EditRole(
            roles_pb2.EditRole(community_id=community.id, role_id=granted, priority=20), metadata=owner.metadata
        )
    elif how == "role given a bit the inviter lacks":
        mod = w.role(owner, community.id, "Mod", permissions=MODIFY_ROLES, priority=10).id
        w.set_roles(owner, community.id, inviter, mod)
        granted = w.role(owner, community.id, "Player", priority=1).id
        code = w.invite(inviter, general, max_age=0, role_ids=[granted]).code
        w.roles.EditRole(
            roles_pb2.EditRole(community_id=community.id, role_id=granted, permissions=REMOVE_MEMBERS),
            metadata=owner.metadata,
        )
    elif how == "modify community lost":
        manager = w.role(owner, community.id, "Manager", permissions=MODIFY_COMMUNITY, priority=1).id
        w.set_roles(owner, community.id, inviter, manager)
        code = w.invite(inviter, general, max_age=0, target_users_file=csv_of(user.id)).code
        w.set_roles(owner, community.id, inviter)
    else:  # pragma: no cover
        raise AssertionError(how)
    return owner, community, code


@pytest.mark.parametrize(
    "how",
    [
        "left",
        "kicked",
        "default permissions",
        "role removed",
        "channel override",
        "modify roles lost",
        "role raised above inviter",
        "role given a bit the inviter lacks",
        "modify community lost",
    ],
)
def test_invite_stops_working_when_the_inviter_loses_authority(w, how):
    user = w.make_account("User")
    owner, community, code = _revocation_case(w, how, user)
    members_before = w.member_ids(owner, community.id)
    error = w.use_error(user, code)
    assert_error(error, NOT_FOUND, "UNKNOWN_INVITE")
    assert unknown_invite_answer(error) == unknown_invite_answer(w.use_error(user, "abcdefghjk"))
    assert w.member_ids(owner, community.id) == members_before
    assert w.listed(owner, community.id, code) is None, "the invite is removed"
    assert_error(w.lookup_error(user, code), NOT_FOUND, "UNKNOWN_INVITE")


def test_granted_roles_stay_after_the_invite_expires_or_is_deleted(w, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    role = w.role(owner, community.id, "Supporter", priority=1).id
    expiring = w.invite(owner, general, role_ids=[role], max_age=60)
    deleted = w.invite(owner, general, role_ids=[role], max_age=0)
    a, b = w.make_account("A"), w.make_account("B")
    w.use(a, expiring.code)
    w.use(b, deleted.code)
    w.delete(owner, deleted.code)
    clock.advance(120)
    assert_error(w.use_error(w.make_account(), expiring.code), NOT_FOUND, "UNKNOWN_INVITE")
    for account, code in ((a, expiring.code), (b, deleted.code)):
        member = w.get_member(owner, community.id, account)
        assert list(member.role_ids) == [role]
        assert member.invite_code == code


def test_targeted_invite_admits_only_its_targets_and_grants_roles(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    role = w.role(owner, community.id, "Supporter", priority=1).id
    targets = [w.make_account() for _ in range(3)]
    outsider = w.make_account("Outsider")
    invite = w.invite(owner, general, role_ids=[role], target_users_file=csv_of(*(t.id for t in targets)))
    assert_error(w.use_error(outsider, invite.code), NOT_FOUND, "UNKNOWN_INVITE")
    for target in targets:
        w.use(target, invite.code)
        assert list(w.get_member(owner, community.id, target).role_ids) == [role]
    assert w.listed(owner, community.id, invite.code).uses == 3
    assert outsider.id not in w.member_ids(owner, community.id)


# ------------------------------------------------------------------------------------ ListInvites, paging


def test_list_invites_active_by_default_and_inactive_on_request(w, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    active = w.invite(owner, general, max_age=0, max_uses=3)
    clock.advance(1)
    expiring = w.invite(owner, general, max_age=60, max_uses=10)
    clock.advance(1)
    used = w.invite(owner, general, max_age=0, max_uses=2)
    for _ in range(2):
        w.use(w.make_account(), used.code)
    w.use(w.make_account(), expiring.code)
    w.use(w.make_account(), active.code)
    clock.advance(61)

    listed = w.list(owner, community_id=community.id)
    assert [i.code for i in listed] == [active.code]
    assert (listed[0].uses, listed[0].state) == (1, ACTIVE)

    everything = w.list(owner, community_id=community.id, include_inactive=True)
    assert [i.code for i in everything] == [used.code, expiring.code, active.code], "newest first"
    states = {i.code: (i.state, i.uses, i.max_uses) for i in everything}
    assert states[used.code] == (USED_UP, 2, 2)
    assert states[expiring.code] == (EXPIRED, 1, 10)
    assert states[active.code] == (ACTIVE, 1, 3)


def test_list_invites_pages(w, clock):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    clock.freeze()  # every invite has the same created_at: the pages must still neither skip nor repeat
    codes = {w.invite(owner, general, unique=True).code for _ in range(7)}
    clock.advance(1)
    newest = {w.invite(owner, general, unique=True).code for _ in range(3)}
    codes |= newest
    seen, token, pages = [], "", 0
    while True:
        page = w.invites.ListInvites(
            invites_pb2.ListInvites(community_id=community.id, page_size=3, page_token=token),
            metadata=owner.metadata,
        )
        assert len(page.invites) <= 3
        seen.extend(i.code for i in page.invites)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 10 and set(seen) == codes
    first_page = w.invites.ListInvites(
        invites_pb2.ListInvites(community_id=community.id, page_size=3), metadata=owner.metadata
    )
    assert {i.code for i in first_page.invites} == newest, "newest first"
    error = rpc_error(
        w.invites.ListInvites,
        invites_pb2.ListInvites(community_id=community.id, page_size=1001),
        metadata=owner.metadata,
    )
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="page_size")
    error = rpc_error(
        w.invites.ListInvites,
        invites_pb2.ListInvites(community_id=community.id, page_token="garbage!"),
        metadata=owner.metadata,
    )
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="page_token")


def test_list_invites_permissions(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    other_channel = w.channel(owner, community.id, "other").id
    in_general = w.invite(owner, general)
    in_other = w.invite(owner, other_channel)
    member = w.member(community.id)
    outsider = w.make_account("Outsider")

    def list_error(account, **scope):
        return rpc_error(w.invites.ListInvites, invites_pb2.ListInvites(**scope), metadata=account.metadata)

    assert_error(
        list_error(member, community_id=community.id),
        PERMISSION_DENIED,
        "MISSING_PERMISSIONS",
        metadata={"permission": "MODIFY_COMMUNITY"},
    )
    assert_error(list_error(member, channel_id=general), PERMISSION_DENIED, "MISSING_PERMISSIONS")
    assert_error(list_error(outsider, community_id=community.id), NOT_FOUND, "UNKNOWN_COMMUNITY")
    assert_error(list_error(outsider, channel_id=general), NOT_FOUND, "UNKNOWN_CHANNEL")

    # MODIFY_CHANNEL in one channel: that channel's invites only.
    channel_mod = w.role(owner, community.id, "General mod", priority=1).id
    w.override(owner, general, channel_mod, allow=MODIFY_CHANNEL)
    w.set_roles(owner, community.id, member, channel_mod)
    assert [i.code for i in w.list(member, channel_id=general)] == [in_general.code]
    assert_error(list_error(member, channel_id=other_channel), PERMISSION_DENIED, "MISSING_PERMISSIONS")
    assert_error(list_error(member, community_id=community.id), PERMISSION_DENIED, "MISSING_PERMISSIONS")

    manager = w.member(community.id)
    w.set_roles(owner, community.id, manager, w.role(owner, community.id, "Mgr", permissions=MODIFY_COMMUNITY).id)
    assert {i.code for i in w.list(manager, community_id=community.id)} == {in_general.code, in_other.code}
    assert [i.code for i in w.list(owner, channel_id=other_channel)] == [in_other.code]


# ----------------------------------------------------------------------------------------------- DeleteInvite


def test_delete_invite_permissions(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    other_channel = w.channel(owner, community.id, "other").id
    inviter = w.member(community.id, "Inviter")
    bystander = w.member(community.id, "Bystander")
    outsider = w.make_account("Outsider")
    channel_mod = w.member(community.id, "Channel mod")
    other_mod = w.member(community.id, "Other channel mod")
    manager = w.member(community.id, "Manager")
    general_role = w.role(owner, community.id, "General mod").id
    other_role = w.role(owner, community.id, "Other mod").id
    w.override(owner, general, general_role, allow=MODIFY_CHANNEL)
    w.override(owner, other_channel, other_role, allow=MODIFY_CHANNEL)
    w.set_roles(owner, community.id, channel_mod, general_role)
    w.set_roles(owner, community.id, other_mod, other_role)
    w.set_roles(owner, community.id, manager, w.role(owner, community.id, "Mgr", permissions=MODIFY_COMMUNITY).id)

    def new_code():
        return w.invite(inviter, general, unique=True).code

    def delete_error(account, code):
        return rpc_error(w.invites.DeleteInvite, invites_pb2.DeleteInvite(code=code), metadata=account.metadata)

    code = new_code()
    assert_error(delete_error(bystander, code), PERMISSION_DENIED, "MISSING_PERMISSIONS")
    assert_error(delete_error(other_mod, code), PERMISSION_DENIED, "MISSING_PERMISSIONS")
    outsider_error = delete_error(outsider, code)
    assert_error(outsider_error, NOT_FOUND, "UNKNOWN_INVITE")
    assert unknown_invite_answer(outsider_error) == unknown_invite_answer(delete_error(outsider, "abcdefghjk"))
    assert w.lookup(outsider, code).code == code, "the refused calls deleted nothing"

    for account in (inviter, channel_mod, manager, owner):
        code = new_code()
        w.delete(account, code)
        assert_error(w.lookup_error(outsider, code), NOT_FOUND, "UNKNOWN_INVITE")
        assert w.listed(owner, community.id, code) is None
        assert_error(delete_error(account, code), NOT_FOUND, "UNKNOWN_INVITE")


# ---------------------------------------------------------------------------------- target user management


def test_target_user_calls_are_for_the_inviter_or_modify_community(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    manager_role = w.role(owner, community.id, "Mgr", permissions=MODIFY_COMMUNITY, priority=1).id
    inviter, other_manager = w.member(community.id, "Inviter"), w.member(community.id, "Other manager")
    w.set_roles(owner, community.id, inviter, manager_role)
    w.set_roles(owner, community.id, other_manager, manager_role)
    bystander = w.member(community.id, "Bystander")
    channel_mod = w.member(community.id, "Channel mod")
    mod_role = w.role(owner, community.id, "General mod").id
    w.override(owner, general, mod_role, allow=MODIFY_CHANNEL)
    w.set_roles(owner, community.id, channel_mod, mod_role)
    outsider = w.make_account("Outsider")
    target = w.make_account("Target")
    invite = w.invite(inviter, general, target_users_file=csv_of(target.id))

    for account in (inviter, other_manager, owner):
        assert w.targets(account, invite.code) == [target.id]
        assert w.job(account, invite.code).status == invites_pb2.COMPLETED
    calls = [
        (w.invites.GetTargetUsers, invites_pb2.GetTargetUsers(code=invite.code)),
        (w.invites.GetTargetUsersJobStatus, invites_pb2.GetTargetUsersJobStatus(code=invite.code)),
        (
            w.invites.UpdateTargetUsers,
            invites_pb2.UpdateTargetUsers(code=invite.code, target_users_file=csv_of(bystander.id)),
        ),
    ]
    for call, request in calls:
        for account in (bystander, channel_mod):
            assert_error(rpc_error(call, request, metadata=account.metadata), PERMISSION_DENIED, "MISSING_PERMISSIONS")
        assert_error(rpc_error(call, request, metadata=outsider.metadata), NOT_FOUND, "UNKNOWN_INVITE")
    assert w.targets(owner, invite.code) == [target.id], "the refused update changed nothing"
    w.use(target, invite.code)


def test_update_target_users_replaces_the_list(w):
    owner = w.make_account("Owner")
    community, general = w.community(owner)
    old = [w.make_account() for _ in range(3)]
    new = [w.make_account() for _ in range(2)]
    invite = w.invite(owner, general, target_users_file=csv_of(*(a.id for a in old)))
    w.use(old[0], invite.code)
    status = w.invites.UpdateTargetUsers(
        invites_pb2.UpdateTargetUsers(code=invite.code, target_users_file=csv_of(*(a.id for a in new), new[0].id)),
        metadata=owner.metadata,
    )
    assert status.total_users == 2
    assert status.status in (invites_pb2.PROCESSING, invites_pb2.COMPLETED)
    assert w.job(owner, invite.code).status == invites_pb2.COMPLETED
    assert sorted(w.targets(owner, invite.code)) == sorted(a.id for a in new)
    for account in old[1:]:
        assert_error(w.use_error(account, invite.code), NOT_FOUND, "UNKNOWN_INVITE")
        assert_error(w.lookup_error(account, invite.code), NOT_FOUND, "UNKNOWN_INVITE")
    for account in new:
        assert w.lookup(account, invite.code).code == invite.code
        w.use(account, invite.code)
    assert w.member_ids(owner, community.id) == {owner.id, old[0].id, *(a.id for a in new)}

    # A malformed replacement is rejected and the current list stays.
    error = rpc_error(
        w.invites.UpdateTargetUsers,
        invites_pb2.UpdateTargetUsers(code=invite.code, target_users_file=b"user_id\n5\nfive\n"),
        metadata=owner.metadata,
    )
    assert_error(error, INVALID_ARGUMENT, "INVALID_ARGUMENT", field="target_users_file")
    assert line_violations(error) == ["Line 3: invalid user ID"]
    assert sorted(w.targets(owner, invite.code)) == sorted(a.id for a in new)
    assert w.job(owner, invite.code).total_users == 2
