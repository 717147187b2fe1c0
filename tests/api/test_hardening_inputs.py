"""Request values at the edges of what the wire can carry (the hardening issue).

Defect 1: a google.protobuf.Timestamp outside its valid range (0001-01-01T00:00:00Z ..
9999-12-31T23:59:59.999999999Z, nanos 0..999999999) in a request is INVALID_ARGUMENT naming the field, never
INTERNAL; the last valid instant is stored and read back on both databases.

Defect 2: every integer field a request can set has a documented bound and a clear INVALID_ARGUMENT; in
particular channel positions are 0..2147483647, and a channel created after a sibling at 2147483647 is placed at
2147483647 too (ties sort by id, so it still comes last) instead of failing with INTERNAL after committing a
position GetChannels cannot answer with. A refused call changes nothing.

The guard tests walk every request message of every service, so a new Timestamp or integer field fails them
until its bound is decided (and tested here)."""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import pytest
from google.protobuf import descriptor, timestamp_pb2
from sqlalchemy import select

import communities.v1
from communities.domain.errors import DomainError
from communities.storage import tables
from communities.v1 import (
    channels_pb2,
    communities_pb2,
    invites_pb2,
    media_pb2,
    media_pb2_grpc,
    members_pb2,
    messages_pb2,
    messages_pb2_grpc,
    roles_pb2,
)
from tests.api.permissions_world import Expectations, P, World
from tests.conftest import rpc_error
from tests.support.errors import assert_error

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
TEXT, CATEGORY = channels_pb2.TEXT, channels_pb2.CATEGORY

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# google.protobuf.Timestamp's valid range.
SECONDS_MIN = -62_135_596_800  # 0001-01-01T00:00:00Z
SECONDS_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z
NANOS_MAX = 999_999_999

# Every generated module of the package, so that a new service is walked too.
MODULES = [
    importlib.import_module(f"communities.v1.{module.name}")
    for module in pkgutil.iter_modules(communities.v1.__path__)
    if module.name.endswith("_pb2")
]


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


@pytest.fixture(scope="module")
def media_stub(grpc_channel):
    return media_pb2_grpc.MediaStub(grpc_channel)


@pytest.fixture(scope="module")
def messages_stub(grpc_channel):
    return messages_pb2_grpc.MessagesStub(grpc_channel)


def request_fields() -> list[tuple[str, descriptor.FieldDescriptor]]:
    """Every field of every request message of every service, nested messages included, as (path, field); the
    path is the request's full name and the field names, e.g. communities.v1.EditPhoto.file.part_count."""
    found: list[tuple[str, descriptor.FieldDescriptor]] = []

    def walk(message: descriptor.Descriptor, path: str, seen: tuple[str, ...]) -> None:
        for field in message.fields:
            found.append((f"{path}.{field.name}", field))
            nested = field.message_type
            if nested is not None and nested.full_name.startswith("communities.") and nested.full_name not in seen:
                walk(nested, f"{path}.{field.name}", (*seen, nested.full_name))

    requests = {}
    for module in MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                requests[method.input_type.full_name] = method.input_type
    for name, message in sorted(requests.items()):
        walk(message, name, (name,))
    return found


# ======================================================================================= defect 1: Timestamps

# Every Timestamp a request can carry. Each is converted by convert.request_time_ms (validation.timestamp_ms)
# and tested below.
REQUEST_TIMESTAMPS = {"communities.v1.RemoveMembers.until"}


def test_every_request_timestamp_is_known():
    found = {
        path
        for path, field in request_fields()
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp"
    }
    assert found == REQUEST_TIMESTAMPS, "validate (convert.request_time_ms) and test any new request Timestamp"


@pytest.fixture
def moderated(world):
    """A fresh community, its owner, a moderator with REMOVE_MEMBERS (priority 5) and a plain member."""
    owner = world.make_account("owner")
    community = world.community(owner)
    mods = world.role(owner, community.id, "mods", permissions=P.REMOVE_MEMBERS, priority=5)
    moderator = world.member(community.id, "moderator")
    world.assign(owner, community.id, moderator, mods.id)
    member = world.member(community.id, "member")
    return owner, community, moderator, member


def ban_request(community_id: int, member_id: int, seconds: int, nanos: int) -> members_pb2.RemoveMembers:
    request = members_pb2.RemoveMembers(community_id=community_id, member_ids=[member_id])
    request.until.seconds = seconds
    request.until.nanos = nanos
    return request


def bans(world, actor, community_id: int) -> list[members_pb2.RemovedMember]:
    return list(
        world.members.GetRemovedMembers(
            members_pb2.GetRemovedMembers(community_id=community_id, page_size=1000), metadata=actor.metadata
        ).removed
    )


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (SECONDS_MIN - 1, 0),
        (SECONDS_MAX + 1, 0),
        (INT64_MIN, 0),
        (INT64_MAX, 0),
        (SECONDS_MAX, -1),
        (SECONDS_MAX, NANOS_MAX + 1),
        (SECONDS_MAX, INT32_MIN),
        (SECONDS_MAX, INT32_MAX),
        (0, -1),  # not the zero timestamp (a permanent ban): nanos is out of range
    ],
    ids=[
        "seconds below 0001",
        "seconds after 9999",
        "int64 min seconds",
        "int64 max seconds",
        "negative nanos",
        "a whole second of nanos",
        "int32 min nanos",
        "int32 max nanos",
        "epoch minus a nano",
    ],
)
def test_remove_members_with_out_of_range_until_is_invalid_argument(world, moderated, seconds, nanos):
    owner, community, moderator, member = moderated
    before = world.snapshot(owner, community.id)
    error = rpc_error(
        world.members.RemoveMembers, ban_request(community.id, member.id, seconds, nanos), metadata=moderator.metadata
    )
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="until")
    assert world.snapshot(owner, community.id) == before
    assert world.get_member(owner, community.id, member.id) is not None


def test_ban_until_the_last_valid_instant_is_stored_and_read_back(world, moderated, db):
    owner, community, moderator, member = moderated
    world.members.RemoveMembers(
        ban_request(community.id, member.id, SECONDS_MAX, NANOS_MAX), metadata=moderator.metadata
    )
    last_ms = SECONDS_MAX * 1000 + 999  # milliseconds are kept, finer parts dropped
    stored = db.scalar(
        select(tables.bans.c.until_ms).where(
            tables.bans.c.community_id == community.id, tables.bans.c.user_id == member.id
        )
    )
    assert stored == last_ms
    [ban] = bans(world, owner, community.id)
    assert ban.HasField("until")
    assert (ban.user_id, ban.until.ToMilliseconds()) == (member.id, last_ms)
    assert ban.until.ToJsonString() == "9999-12-31T23:59:59.999Z"
    with pytest.raises(DomainError) as refused:
        world.join_community(community.id, member)
    assert refused.value.reason == "BANNED"
    # The whole community still reads fine for everyone.
    world.snapshot(owner, community.id)
    world.members.GetRemovedMembers(
        members_pb2.GetRemovedMembers(community_id=community.id), metadata=moderator.metadata
    )


def test_ban_until_the_first_valid_instant_is_in_the_past(world, moderated):
    _, community, moderator, member = moderated
    error = rpc_error(
        world.members.RemoveMembers, ban_request(community.id, member.id, SECONDS_MIN, 0), metadata=moderator.metadata
    )
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="until")
    assert "future" in error.details()


def test_until_a_fraction_of_a_millisecond_after_the_epoch_is_not_a_permanent_ban(world, moderated):
    """Only the zero Timestamp means "for ever"; 1970-01-01T00:00:00.0000005Z is a time in the past."""
    owner, community, moderator, member = moderated
    error = rpc_error(
        world.members.RemoveMembers, ban_request(community.id, member.id, 0, 500), metadata=moderator.metadata
    )
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="until")
    assert bans(world, owner, community.id) == []
    # The zero Timestamp itself still bans for ever.
    request = members_pb2.RemoveMembers(
        community_id=community.id, member_ids=[member.id], until=timestamp_pb2.Timestamp()
    )
    world.members.RemoveMembers(request, metadata=moderator.metadata)
    [ban] = bans(world, owner, community.id)
    assert not ban.HasField("until")


# ================================================================================= defect 2: integer fields

ID = "id (fixed64): any value; unknown ids are NOT_FOUND"
MASK = "permission mask (fixed64): known CommunityPermission bits only"
ENUM = "enum: known values only"
PAGE = "0..1000, 0 = 100"

# Every integer (and enum) field a request can set, with its bound.
REQUEST_INTEGERS = {
    "communities.v1.CreateChannel.community_id": ID,
    "communities.v1.CreateChannel.parent_id": ID,
    "communities.v1.CreateChannel.position": "0..2147483647; absent = after its siblings (at most 2147483647)",
    "communities.v1.CreateChannel.type": ENUM,
    "communities.v1.CreateChannelOverride.channel_id": ID,
    "communities.v1.CreateChannelOverride.role_id": ID,
    "communities.v1.CreateChannelOverride.overrides.pos": MASK,
    "communities.v1.CreateChannelOverride.overrides.neg": MASK,
    "communities.v1.CreateInvite.channel_id": ID,
    "communities.v1.CreateInvite.max_age": "0..604800",
    "communities.v1.CreateInvite.max_uses": "0..100",
    "communities.v1.CreateInvite.role_ids": ID,
    "communities.v1.CreateRole.community_id": ID,
    "communities.v1.CreateRole.permissions": MASK,
    "communities.v1.CreateRole.priority": "0..1000000",
    "communities.v1.CreateRole.color": "0..0xFFFFFF",
    "communities.v1.DeleteChannel.channel_id": ID,
    "communities.v1.DeleteChannelOverride.channel_id": ID,
    "communities.v1.DeleteChannelOverride.role_id": ID,
    "communities.v1.DeleteCommunity.community_id": ID,
    "communities.v1.DeleteRole.community_id": ID,
    "communities.v1.DeleteRole.role_id": ID,
    "communities.v1.DownloadFilePart.file_id": ID,
    "communities.v1.DownloadFilePart.offset": "0..the file's size",
    "communities.v1.DownloadFilePart.length": "0..1048576, 0 = 524288",
    "communities.v1.EditChannel.channel_id": ID,
    "communities.v1.EditChannel.parent_id": ID,
    "communities.v1.EditChannel.position": "0..2147483647",
    "communities.v1.EditCommunity.community_id": ID,
    "communities.v1.EditDefaultPermissions.community_id": ID,
    "communities.v1.EditDefaultPermissions.permissions": MASK,
    "communities.v1.EditMember.community_id": ID,
    "communities.v1.EditMember.member_id": ID,
    "communities.v1.EditMember.role_ids.ids": ID,
    "communities.v1.EditPhoto.community_id": ID,
    "communities.v1.EditPhoto.file.id": ID,
    "communities.v1.EditPhoto.file.part_count": "1..20",
    "communities.v1.EditRole.community_id": ID,
    "communities.v1.EditRole.role_id": ID,
    "communities.v1.EditRole.permissions": MASK,
    "communities.v1.EditRole.priority": "0..1000000",
    "communities.v1.EditRole.color": "0..0xFFFFFF",
    "communities.v1.EditSettings.community_id": ID,
    "communities.v1.EditSettings.settings.system_messages.channel_id": ID,
    "communities.v1.ExplainPermissions.community_id": ID,
    "communities.v1.ExplainPermissions.user_id": ID,
    "communities.v1.ExplainPermissions.channel_id": ID,
    "communities.v1.GetChannelOverrides.channel_id": ID,
    "communities.v1.GetAuditLog.community_id": ID,
    "communities.v1.GetAuditLog.actor_id": ID,
    "communities.v1.GetAuditLog.page_size": "0..100, 0 = 50",
    "communities.v1.GetChannels.community_id": ID,
    "communities.v1.GetMembers.community_id": ID,
    "communities.v1.GetMembers.member_ids": ID,
    "communities.v1.GetRemovedMembers.community_id": ID,
    "communities.v1.GetRemovedMembers.page_size": PAGE,
    "communities.v1.GetRoles.community_id": ID,
    "communities.v1.GetSettings.community_id": ID,
    "communities.v1.GetUsers.user_ids": ID,
    "communities.v1.LeaveCommunity.community_id": ID,
    "communities.v1.ListInvites.community_id": ID,
    "communities.v1.ListInvites.channel_id": ID,
    "communities.v1.ListInvites.page_size": PAGE,
    "communities.v1.ListMembers.community_id": ID,
    "communities.v1.ListMembers.page_size": PAGE,
    "communities.v1.RemoveMembers.community_id": ID,
    "communities.v1.RemoveMembers.member_ids": ID,
    "communities.v1.SetMuted.community_id": ID,
    "communities.v1.UnbanMembers.community_id": ID,
    "communities.v1.UnbanMembers.user_ids": ID,
    "communities.v1.UploadFilePart.upload_id": ID,
    "communities.v1.UploadFilePart.part": "0..19 (RESOURCE_EXHAUSTED LIMIT_REACHED above)",
    "communities.v1.SendMessage.channel_id": ID,
    "communities.v1.SendMessage.client_id": "any fixed64 (the client's own idempotency key)",
    "communities.v1.GetHistory.channel_id": ID,
    "communities.v1.GetHistory.limit": "0..100, 0 = 50",
    "communities.v1.GetHistory.before": "any fixed64: the messages sent before that id",
    "communities.v1.GetHistory.after": "any fixed64: the messages sent after that id",
    "communities.v1.GetHistory.around": "any fixed64: the messages sent around that id",
    "communities.v1.EditMessage.channel_id": ID,
    "communities.v1.EditMessage.message_id": ID,
    "communities.v1.DeleteMessage.channel_id": ID,
    "communities.v1.DeleteMessage.message_id": ID,
    "communities.v1.MarkRead.channel_id": ID,
    "communities.v1.MarkRead.message_id": ID,
    "communities.v1.GetReadStates.community_id": ID,
}

_INTEGER_TYPES = {
    descriptor.FieldDescriptor.TYPE_INT32,
    descriptor.FieldDescriptor.TYPE_INT64,
    descriptor.FieldDescriptor.TYPE_UINT32,
    descriptor.FieldDescriptor.TYPE_UINT64,
    descriptor.FieldDescriptor.TYPE_SINT32,
    descriptor.FieldDescriptor.TYPE_SINT64,
    descriptor.FieldDescriptor.TYPE_FIXED32,
    descriptor.FieldDescriptor.TYPE_FIXED64,
    descriptor.FieldDescriptor.TYPE_SFIXED32,
    descriptor.FieldDescriptor.TYPE_SFIXED64,
    descriptor.FieldDescriptor.TYPE_ENUM,
}


def test_every_request_integer_field_has_a_decided_bound():
    # (Timestamps are not walked into: their seconds and nanos are checked as a whole, see REQUEST_TIMESTAMPS.)
    found = {path for path, field in request_fields() if field.type in _INTEGER_TYPES}
    assert found - set(REQUEST_INTEGERS) == set(), "decide, enforce and test a bound for each new request integer"
    assert set(REQUEST_INTEGERS) - found == set(), "the table names fields that no longer exist"


@pytest.fixture
def channel_world(world):
    """A fresh community: its owner, a plain member, and its `general` channel id."""
    owner = world.make_account("owner")
    community = world.community(owner)
    member = world.member(community.id, "member")
    [general] = world.visible(owner, community.id)
    return owner, community, member, general


def create_channel(world, actor, community_id: int, name: str, **fields) -> channels_pb2.Channel:
    return world.channels.CreateChannel(
        channels_pb2.CreateChannel(community_id=community_id, name=name, **fields), metadata=actor.metadata
    )


def edit_channel(world, actor, channel_id: int, **fields) -> channels_pb2.Channel:
    return world.channels.EditChannel(
        channels_pb2.EditChannel(channel_id=channel_id, **fields), metadata=actor.metadata
    )


def listed(world, account, community_id: int) -> list[tuple[str, int, int]]:
    """GetChannels as (name, parent_id, position), in the order it answers."""
    answer = world.channels.GetChannels(channels_pb2.GetChannels(community_id=community_id), metadata=account.metadata)
    return [(c.name, c.parent_id, c.position) for c in answer.channels]


def test_create_channel_after_a_sibling_at_the_highest_position(world, channel_world, db):
    owner, community, member, general = channel_world
    top = edit_channel(world, owner, general, position=INT32_MAX)
    assert top.position == INT32_MAX
    after = create_channel(world, owner, community.id, "after")
    assert after.position == INT32_MAX
    last = create_channel(world, owner, community.id, "last")
    assert last.position == INT32_MAX
    # Ties sort by id (creation order): each new channel still comes after its siblings.
    expected = [("general", 0, INT32_MAX), ("after", 0, INT32_MAX), ("last", 0, INT32_MAX)]
    assert listed(world, owner, community.id) == expected
    assert listed(world, member, community.id) == expected
    # Inside a category, the same.
    category = create_channel(world, owner, community.id, "category", type=CATEGORY, position=0)
    first = create_channel(world, owner, community.id, "first", parent_id=category.id, position=INT32_MAX)
    second = create_channel(world, owner, community.id, "second", parent_id=category.id)
    assert (first.position, second.position) == (INT32_MAX, INT32_MAX)
    names = [name for name, _, _ in listed(world, member, community.id)]
    assert names.index("first") < names.index("second")
    stored = db.rows(select(tables.channels.c.position).where(tables.channels.c.community_id == community.id))
    assert max(row.position for row in stored) == INT32_MAX


def test_next_position_is_one_after_the_highest_sibling(world, channel_world):
    owner, community, _, general = channel_world
    edit_channel(world, owner, general, position=INT32_MAX - 1)
    assert create_channel(world, owner, community.id, "next").position == INT32_MAX
    assert create_channel(world, owner, community.id, "then").position == INT32_MAX


@pytest.mark.parametrize("position", [-1, INT32_MIN])
def test_negative_positions_are_invalid_and_change_nothing(world, channel_world, db, position):
    owner, community, _, general = channel_world
    category = create_channel(world, owner, community.id, "category", type=CATEGORY)
    before = world.snapshot(owner, community.id)
    count = db.scalar(select(tables.communities.c.channel_count).where(tables.communities.c.id == community.id))
    expect = Expectations()
    for label, call, request in [
        (
            "create",
            world.channels.CreateChannel,
            channels_pb2.CreateChannel(community_id=community.id, name="x", position=position),
        ),
        (
            "create in category",
            world.channels.CreateChannel,
            channels_pb2.CreateChannel(community_id=community.id, name="x", parent_id=category.id, position=position),
        ),
        ("edit", world.channels.EditChannel, channels_pb2.EditChannel(channel_id=general, position=position)),
        (
            "edit with name",
            world.channels.EditChannel,
            channels_pb2.EditChannel(channel_id=general, name="renamed", position=position),
        ),
    ]:
        expect.error(label, call, request, owner, INVALID, "INVALID_ARGUMENT", field="position")
    expect.check()
    assert world.snapshot(owner, community.id) == before
    assert (
        db.scalar(select(tables.communities.c.channel_count).where(tables.communities.c.id == community.id))
        == count
        == db.count(tables.channels, community_id=community.id)
    )


def test_the_bounds_themselves_are_accepted(world, channel_world):
    owner, community, _, general = channel_world
    assert create_channel(world, owner, community.id, "zero", position=0).position == 0
    assert create_channel(world, owner, community.id, "top", position=INT32_MAX).position == INT32_MAX
    assert edit_channel(world, owner, general, position=0).position == 0
    assert edit_channel(world, owner, general, position=INT32_MAX).position == INT32_MAX


def test_integer_fields_above_their_bound_are_invalid_argument(
    world, channel_world, invites_stub, media_stub, messages_stub
):
    """One value just above each bound a request can pass (positions cannot: int32 ends at their bound)."""
    owner, community, _, general = channel_world
    role = world.role(owner, community.id, "r", priority=1)
    before = world.snapshot(owner, community.id)
    c = community.id
    expect = Expectations()
    cases = [
        ("CreateRole", roles_pb2.CreateRole(community_id=c, name="x", priority=1_000_001), "priority"),
        ("CreateRole", roles_pb2.CreateRole(community_id=c, name="x", color=0x1000000), "color"),
        ("EditRole", roles_pb2.EditRole(community_id=c, role_id=role.id, priority=2**32 - 1), "priority"),
        ("EditRole", roles_pb2.EditRole(community_id=c, role_id=role.id, color=2**32 - 1), "color"),
        ("ListMembers", members_pb2.ListMembers(community_id=c, page_size=1001), "page_size"),
        ("GetRemovedMembers", members_pb2.GetRemovedMembers(community_id=c, page_size=1001), "page_size"),
        ("ListInvites", invites_pb2.ListInvites(community_id=c, page_size=1001), "page_size"),
        ("CreateInvite", invites_pb2.CreateInvite(channel_id=general, max_age=604_801), "max_age"),
        ("CreateInvite", invites_pb2.CreateInvite(channel_id=general, max_uses=101), "max_uses"),
        ("DownloadFilePart", media_pb2.DownloadFilePart(file_id=1, length=1_048_577), "length"),
        ("GetAuditLog", communities_pb2.GetAuditLog(community_id=c, page_size=101), "page_size"),
        ("GetHistory", messages_pb2.GetHistory(channel_id=general, limit=101), "limit"),
        ("GetHistory", messages_pb2.GetHistory(channel_id=general, limit=2**32 - 1), "limit"),
    ]
    stubs = (world.roles, world.members, invites_stub, media_stub, world.communities, messages_stub)
    for method, request, field in cases:
        [call] = [getattr(stub, method) for stub in stubs if hasattr(stub, method)]
        expect.error(f"{method}.{field}", call, request, owner, INVALID, "INVALID_ARGUMENT", field=field)
    # An upload's part number is a limit (20 parts), not a malformed value.
    expect.error(
        "UploadFilePart part",
        media_stub.UploadFilePart,
        media_pb2.UploadFilePart(upload_id=1, part=20, data=b"x"),
        owner,
        EXHAUSTED,
        "LIMIT_REACHED",
        metadata={"limit": "upload_parts"},
    )
    expect.check()
    assert world.snapshot(owner, community.id) == before
