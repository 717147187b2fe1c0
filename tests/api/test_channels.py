"""communities.v1.Channels through the API: channels, categories and permission overrides; every error row; a
channel the caller cannot view looks exactly like an unknown one; the channel limit and racing override writes."""

from __future__ import annotations

import grpc
import pytest

from communities.storage import channels as channels_repo
from communities.v1 import channels_pb2, communities_pb2, roles_pb2
from tests.api.permissions_world import ALL, DEFAULT, RESERVED_BIT, Expectations, P, World, run_together
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details

TEXT, VOICE, CATEGORY = channels_pb2.TEXT, channels_pb2.VOICE, channels_pb2.CATEGORY
NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


@pytest.fixture
def setup(world):
    """A fresh community: its owner, a plain member, and the id of its `general` channel."""
    owner = world.make_account("owner")
    community = world.community(owner)
    member = world.member(community.id, "member")
    [general] = world.visible(owner, community.id)
    return owner, community, member, general


def shape(channel: channels_pb2.Channel) -> tuple:
    return (channel.name, channel.type, channel.parent_id, channel.position)


def edit(stub, actor, channel_id: int, **changes) -> channels_pb2.Channel:
    return stub.EditChannel(channels_pb2.EditChannel(channel_id=channel_id, **changes), metadata=actor.metadata)


def delete(stub, actor, channel_id: int) -> None:
    stub.DeleteChannel(channels_pb2.DeleteChannel(channel_id=channel_id), metadata=actor.metadata)


# ------------------------------------------------------------------------------------------------- GetChannels


def test_new_community_has_general_only(world, setup):
    owner, community, member, general = setup
    for account, permissions in ((owner, ALL), (member, DEFAULT)):
        [channel] = world.visible(account, community.id).values()
        assert channel.id == general
        assert channel.community_id == community.id
        assert shape(channel) == ("general", TEXT, 0, 0)
        assert channel.permissions == permissions


def test_get_channels_shows_only_viewable_channels_with_effective_permissions(world, setup):
    owner, community, member, general = setup
    role = world.role(owner, community.id, "readers", priority=1)
    admins = world.role(owner, community.id, "admins", permissions=P.ADMINISTRATOR, priority=2)
    admin = world.member(community.id, "admin")
    world.assign(owner, community.id, admin, admins.id)
    world.assign(owner, community.id, member, role.id)
    hidden = world.channel(owner, community.id, "hidden")
    world.override(owner, hidden.id, community.id, neg=P.VIEW_CHANNEL)
    world.override(owner, hidden.id, admins.id, neg=P.VIEW_CHANNEL)
    for_readers = world.channel(owner, community.id, "readers-only")
    world.override(owner, for_readers.id, community.id, neg=P.VIEW_CHANNEL | P.SEND_MESSAGES)
    world.override(owner, for_readers.id, role.id, pos=P.VIEW_CHANNEL | P.PIN_MESSAGES)
    read_only = world.channel(owner, community.id, "announcements")
    world.override(owner, read_only.id, community.id, neg=P.SEND_MESSAGES | P.ADD_REACTIONS)
    plain = world.member(community.id, "plain")

    seen = {c.id: c.permissions for c in world.visible(member, community.id).values()}
    assert seen == {
        general: DEFAULT,
        for_readers.id: (DEFAULT & ~P.SEND_MESSAGES) | P.PIN_MESSAGES,
        read_only.id: DEFAULT & ~(P.SEND_MESSAGES | P.ADD_REACTIONS),
    }
    seen = {c.id: c.permissions for c in world.visible(plain, community.id).values()}
    assert seen == {general: DEFAULT, read_only.id: DEFAULT & ~(P.SEND_MESSAGES | P.ADD_REACTIONS)}
    # The owner and ADMINISTRATOR holders bypass every override (even one aimed at their own role).
    everything = {general, hidden.id, for_readers.id, read_only.id}
    for account in (owner, admin):
        seen = {c.id: c.permissions for c in world.visible(account, community.id).values()}
        assert seen == dict.fromkeys(everything, ALL)
    edited = edit(world.channels, admin, hidden.id, name="still hidden")
    assert edited.permissions == ALL
    assert world.overrides(admin, hidden.id)[admins.id] == (0, P.VIEW_CHANNEL)
    # Nobody sees anything without VIEW_CHANNEL at all.
    world.set_default(owner, community.id, DEFAULT & ~P.VIEW_CHANNEL)
    assert world.visible(plain, community.id) == {}
    assert set(world.visible(member, community.id)) == {for_readers.id}


# ----------------------------------------------------------------------------------------------- CreateChannel


def test_create_channels_of_every_type(world, setup):
    owner, community, _, general = setup
    text = world.channel(owner, community.id, "  chat  ", TEXT)
    voice = world.channel(owner, community.id, "voice", VOICE)
    category = world.channel(owner, community.id, "Category", CATEGORY)
    child = world.channel(owner, community.id, "child", TEXT, parent_id=category.id)
    voice_child = world.channel(owner, community.id, "voice child", VOICE, parent_id=category.id)
    placed = world.channels.CreateChannel(
        channels_pb2.CreateChannel(community_id=community.id, name="placed", type=TEXT, position=42),
        metadata=owner.metadata,
    )
    assert shape(text) == ("chat", TEXT, 0, 1)
    assert shape(voice) == ("voice", VOICE, 0, 2)
    assert shape(category) == ("Category", CATEGORY, 0, 3)
    assert shape(child) == ("child", TEXT, category.id, 0)
    assert shape(voice_child) == ("voice child", VOICE, category.id, 1)
    assert shape(placed) == ("placed", TEXT, 0, 42)
    created = [text, voice, category, child, voice_child, placed]
    assert len({c.id for c in created} | {general}) == 7
    assert all(c.community_id == community.id and c.permissions == ALL for c in created)
    listed = world.visible(owner, community.id)
    assert {c.id: shape(c) for c in listed.values()} == {c.id: shape(c) for c in created} | {
        general: ("general", TEXT, 0, 0)
    }
    positions = [c.position for c in listed.values()]
    assert positions == sorted(positions), "GetChannels lists channels by position"
    # Names need not be unique.
    assert world.channel(owner, community.id, "chat").id != text.id


def test_create_channel_rejects_malformed_fields(world, setup):
    owner, community, _, _ = setup
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    cases = [
        ("name", {"name": ""}),
        ("name", {"name": "   "}),
        ("name", {"name": "x" * 101}),
        ("name", {"name": "line\nbreak"}),
        ("type", {"name": "ok", "type": 7}),
    ]
    for field, values in cases:
        request = channels_pb2.CreateChannel(community_id=community.id, **values)
        expect.error(
            str(values), world.channels.CreateChannel, request, owner, INVALID, "INVALID_ARGUMENT", field=field
        )
    expect.check()
    assert world.snapshot(owner, community.id) == before
    assert world.channel(owner, community.id, "x" * 100).name == "x" * 100


def test_parents_must_be_categories_of_the_same_community(world, setup):
    owner, community, _, general = setup
    category = world.channel(owner, community.id, "category", CATEGORY)
    voice = world.channel(owner, community.id, "voice", VOICE)
    child = world.channel(owner, community.id, "child", parent_id=category.id)
    other_category = world.channel(owner, community.id, "other category", CATEGORY)
    elsewhere = world.community(owner, "elsewhere")
    foreign_category = world.channel(owner, elsewhere.id, "foreign", CATEGORY)
    before = world.snapshot(owner, community.id), world.snapshot(owner, elsewhere.id)

    def create(name, kind, parent_id):
        return channels_pb2.CreateChannel(community_id=community.id, name=name, type=kind, parent_id=parent_id)

    def move(channel_id, parent_id):
        return channels_pb2.EditChannel(channel_id=channel_id, parent_id=parent_id)

    expect = Expectations()
    creates, edits = world.channels.CreateChannel, world.channels.EditChannel
    for label, call, request, code, reason in [
        ("text in text", creates, create("x", TEXT, general), PRECONDITION, "PARENT_NOT_CATEGORY"),
        ("text in voice", creates, create("x", TEXT, voice.id), PRECONDITION, "PARENT_NOT_CATEGORY"),
        ("voice in child", creates, create("x", VOICE, child.id), PRECONDITION, "PARENT_NOT_CATEGORY"),
        ("category in category", creates, create("x", CATEGORY, category.id), PRECONDITION, "CATEGORY_IN_CATEGORY"),
        ("in unknown", creates, create("x", TEXT, foreign_category.id + 99), NOT_FOUND, "UNKNOWN_CHANNEL"),
        ("in foreign", creates, create("x", TEXT, foreign_category.id), NOT_FOUND, "UNKNOWN_CHANNEL"),
        ("in community id", creates, create("x", TEXT, community.id), NOT_FOUND, "UNKNOWN_CHANNEL"),
        ("move into text", edits, move(voice.id, general), PRECONDITION, "PARENT_NOT_CATEGORY"),
        ("move into child", edits, move(general, child.id), PRECONDITION, "PARENT_NOT_CATEGORY"),
        ("move category in", edits, move(other_category.id, category.id), PRECONDITION, "CATEGORY_IN_CATEGORY"),
        ("move into unknown", edits, move(general, foreign_category.id + 99), NOT_FOUND, "UNKNOWN_CHANNEL"),
        ("move into foreign", edits, move(general, foreign_category.id), NOT_FOUND, "UNKNOWN_CHANNEL"),
    ]:
        expect.error(label, call, request, owner, code, reason)
    expect.error("own parent", edits, move(general, general), owner, PRECONDITION, "PARENT_NOT_CATEGORY")
    # A category cannot be its own parent either (whichever of the two reasons is given).
    error = rpc_error(edits, move(category.id, category.id), metadata=owner.metadata)
    expect.that("category own parent", error.code() == PRECONDITION, error.details())
    expect.check()
    assert (world.snapshot(owner, community.id), world.snapshot(owner, elsewhere.id)) == before


# ------------------------------------------------------------------------------------------------- EditChannel


def test_edit_channel_changes_only_the_fields_present(world, setup):
    owner, community, _, general = setup
    category = world.channel(owner, community.id, "category", CATEGORY)
    channel = world.channel(owner, community.id, "topic")
    expected = list(shape(channel))
    for changes, effect in [
        ({}, {}),
        ({"name": "  renamed "}, {0: "renamed"}),
        ({"position": 9}, {3: 9}),
        ({"position": 0}, {3: 0}),
        ({"parent_id": category.id}, {2: category.id}),
        ({"name": "both", "position": 3}, {0: "both", 3: 3}),
        ({"parent_id": 0}, {2: 0}),
        ({"parent_id": category.id, "name": "back in", "position": 1}, {2: category.id, 0: "back in", 3: 1}),
    ]:
        for index, value in effect.items():
            expected[index] = value
        edited = edit(world.channels, owner, channel.id, **changes)
        assert (edited.id, edited.community_id, edited.permissions) == (channel.id, community.id, ALL)
        assert shape(edited) == tuple(expected), changes
        listed = world.visible(owner, community.id)
        assert listed[channel.id] == edited
        assert shape(listed[general]) == ("general", TEXT, 0, 0)
        assert shape(listed[category.id]) == ("category", CATEGORY, 0, 1)


def test_edit_channel_rejects_malformed_names(world, setup):
    owner, community, _, general = setup
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for name in ("", "  ", "x" * 101, "tab\there"):
        request = channels_pb2.EditChannel(channel_id=general, name=name)
        expect.error(repr(name), world.channels.EditChannel, request, owner, INVALID, "INVALID_ARGUMENT", field="name")
    expect.check()
    assert world.snapshot(owner, community.id) == before


# ----------------------------------------------------------------------------------------------- DeleteChannel


def test_delete_channel_and_category(world, setup):
    owner, community, member, general = setup
    category = world.channel(owner, community.id, "category", CATEGORY)
    inside = [world.channel(owner, community.id, f"in {n}", parent_id=category.id) for n in range(2)]
    outside = world.channel(owner, community.id, "outside")
    world.override(owner, outside.id, community.id, neg=P.SEND_MESSAGES)
    delete(world.channels, owner, outside.id)
    delete(world.channels, owner, category.id)
    listed = world.visible(owner, community.id)
    assert set(listed) == {general, *(c.id for c in inside)}
    assert all(listed[c.id].parent_id == 0 for c in inside)
    assert {c.id for c in world.visible(member, community.id).values()} == set(listed)
    for gone in (outside.id, category.id):
        expect = Expectations()
        for label, (method, request) in channel_requests(gone, community.id).items():
            expect.error(label, getattr(world.channels, method), request, owner, NOT_FOUND, "UNKNOWN_CHANNEL")
        expect.check()
        error = rpc_error(world.channel, owner, community.id, "x", parent_id=gone)
        assert_error(error, NOT_FOUND, "UNKNOWN_CHANNEL")


def test_deleting_the_system_channel_clears_the_setting(world, setup):
    owner, community, member, general = setup
    assert world.settings(member, community.id).system_messages.channel_id == general
    other = world.channel(owner, community.id, "other")
    delete(world.channels, owner, other.id)
    assert world.settings(member, community.id).system_messages.channel_id == general
    delete(world.channels, owner, general)
    settings = world.settings(member, community.id).system_messages
    assert settings.channel_id == 0
    assert settings.join_messages  # the other field is untouched
    assert world.visible(owner, community.id) == {}


# --------------------------------------------------------------------------------------------------- overrides


def test_overrides_are_created_replaced_and_deleted(world, setup):
    owner, community, member, general = setup
    role = world.role(owner, community.id, "r", priority=1)
    world.assign(owner, community.id, member, role.id)
    assert world.overrides(owner, general) == {}

    created = world.override(owner, general, role.id, pos=P.PIN_MESSAGES, neg=P.SEND_MESSAGES)
    assert (created.channel_id, created.role_id) == (general, role.id)
    assert (created.overrides.pos, created.overrides.neg) == (P.PIN_MESSAGES, P.SEND_MESSAGES)
    assert world.visible(member, community.id)[general].permissions == (DEFAULT & ~P.SEND_MESSAGES) | P.PIN_MESSAGES

    replaced = world.override(owner, general, role.id, pos=P.DELETE_MESSAGES)
    assert (replaced.overrides.pos, replaced.overrides.neg) == (P.DELETE_MESSAGES, 0)
    everyone = world.override(owner, general, community.id, neg=P.ADD_REACTIONS | P.SEND_MESSAGES)
    assert (everyone.role_id, everyone.overrides.neg) == (community.id, P.ADD_REACTIONS | P.SEND_MESSAGES)
    listed = world.channels.GetChannelOverrides(
        channels_pb2.GetChannelOverrides(channel_id=general), metadata=owner.metadata
    ).overrides
    assert {(o.channel_id, o.role_id, o.overrides.pos, o.overrides.neg) for o in listed} == {
        (general, role.id, P.DELETE_MESSAGES, 0),
        (general, community.id, 0, P.ADD_REACTIONS | P.SEND_MESSAGES),
    }
    assert (
        world.visible(member, community.id)[general].permissions
        == (DEFAULT & ~(P.ADD_REACTIONS | P.SEND_MESSAGES)) | P.DELETE_MESSAGES
    )
    # An empty override is still an override (it is listed), and changes nothing.
    world.override(owner, general, role.id)
    assert world.overrides(owner, general)[role.id] == (0, 0)

    world.channels.DeleteChannelOverride(
        channels_pb2.DeleteChannelOverride(channel_id=general, role_id=role.id), metadata=owner.metadata
    )
    assert world.overrides(owner, general) == {community.id: (0, P.ADD_REACTIONS | P.SEND_MESSAGES)}
    world.channels.DeleteChannelOverride(
        channels_pb2.DeleteChannelOverride(channel_id=general, role_id=community.id), metadata=owner.metadata
    )
    assert world.overrides(owner, general) == {}
    assert world.visible(member, community.id)[general].permissions == DEFAULT
    before = world.snapshot(owner, community.id)
    for role_id in (role.id, community.id):
        error = rpc_error(
            world.channels.DeleteChannelOverride,
            channels_pb2.DeleteChannelOverride(channel_id=general, role_id=role_id),
            metadata=owner.metadata,
        )
        assert error.code() == NOT_FOUND
    assert world.snapshot(owner, community.id) == before


def test_override_errors(world, setup):
    owner, community, _member, general = setup
    role = world.role(owner, community.id, "r", priority=1)
    elsewhere = world.community(owner, "elsewhere")
    foreign_role = world.role(owner, elsewhere.id, "foreign", priority=1)
    world.override(owner, general, role.id, pos=P.PIN_MESSAGES)
    before = world.snapshot(owner, community.id)

    def request(role_id=role.id, pos=0, neg=0):
        return channels_pb2.CreateChannelOverride(
            channel_id=general, role_id=role_id, overrides=channels_pb2.PermissionOverrides(pos=pos, neg=neg)
        )

    expect = Expectations()
    create = world.channels.CreateChannelOverride
    for label, message, field in [
        ("reserved allow", request(pos=RESERVED_BIT), "overrides.pos"),
        ("high allow", request(pos=P.SEND_MESSAGES | 1 << 40), "overrides.pos"),
        ("reserved deny", request(neg=RESERVED_BIT), "overrides.neg"),
        ("high deny", request(neg=1 << 63), "overrides.neg"),
        # ADMINISTRATOR only means something at community level (it bypasses overrides).
        ("allow ADMINISTRATOR", request(pos=P.ADMINISTRATOR), "overrides"),
        ("deny ADMINISTRATOR", request(neg=P.ADMINISTRATOR | P.SEND_MESSAGES), "overrides"),
    ]:
        expect.error(label, create, message, owner, INVALID, "INVALID_ARGUMENT", field=field)
    # Allowing and denying the same bit is contradictory.
    error = expect.error(
        "both", create, request(pos=P.SEND_MESSAGES, neg=P.SEND_MESSAGES), owner, INVALID, "INVALID_ARGUMENT"
    )
    if error is not None:
        _, bad_request = details(error)
        expect.that("both: BadRequest", bad_request is not None and len(bad_request.field_violations) > 0)
    for label, role_id in [
        ("unknown role", foreign_role.id + 7),
        ("foreign role", foreign_role.id),
        ("foreign everyone", elsewhere.id),
        ("zero", 0),
        ("channel id", general),
    ]:
        expect.error(label, create, request(role_id=role_id, pos=P.SEND_MESSAGES), owner, NOT_FOUND, "UNKNOWN_ROLE")
    expect.check()
    assert world.snapshot(owner, community.id) == before


def test_channel_created_in_a_category_starts_with_a_copy_of_its_overrides(world, setup):
    owner, community, member, _ = setup
    staff = world.role(owner, community.id, "staff", priority=1)
    world.assign(owner, community.id, member, staff.id)
    plain = world.member(community.id, "plain")
    category = world.channel(owner, community.id, "staff area", CATEGORY)
    world.override(owner, category.id, community.id, neg=P.VIEW_CHANNEL)
    world.override(owner, category.id, staff.id, pos=P.VIEW_CHANNEL | P.PIN_MESSAGES)
    child = world.channel(owner, community.id, "staff chat", parent_id=category.id)
    voice = world.channel(owner, community.id, "staff voice", VOICE, parent_id=category.id)
    loose = world.channel(owner, community.id, "loose")
    expected = {community.id: (0, P.VIEW_CHANNEL), staff.id: (P.VIEW_CHANNEL | P.PIN_MESSAGES, 0)}
    assert world.overrides(owner, child.id) == expected
    assert world.overrides(owner, voice.id) == expected
    assert world.overrides(owner, loose.id) == {}
    assert {child.id, voice.id, category.id} <= set(world.visible(member, community.id))
    assert not {child.id, voice.id, category.id} & set(world.visible(plain, community.id))
    assert world.visible(member, community.id)[child.id].permissions == DEFAULT | P.PIN_MESSAGES
    # A copy, not a link: later changes to either side stay on that side.
    world.override(owner, category.id, staff.id, pos=P.VIEW_CHANNEL)
    world.override(owner, child.id, community.id, neg=0)
    assert world.overrides(owner, child.id)[staff.id] == (P.VIEW_CHANNEL | P.PIN_MESSAGES, 0)
    assert world.overrides(owner, category.id)[community.id] == (0, P.VIEW_CHANNEL)
    assert child.id in world.visible(plain, community.id)


# ------------------------------------------------------------------------------------------------ who may call


def channel_requests(channel_id: int, role_id: int) -> dict[str, tuple[str, object]]:
    return {
        "EditChannel": ("EditChannel", channels_pb2.EditChannel(channel_id=channel_id, name="renamed")),
        "EditChannel(empty)": ("EditChannel", channels_pb2.EditChannel(channel_id=channel_id)),
        "EditChannel(parent 0)": ("EditChannel", channels_pb2.EditChannel(channel_id=channel_id, parent_id=0)),
        "DeleteChannel": ("DeleteChannel", channels_pb2.DeleteChannel(channel_id=channel_id)),
        "GetChannelOverrides": ("GetChannelOverrides", channels_pb2.GetChannelOverrides(channel_id=channel_id)),
        "CreateChannelOverride": (
            "CreateChannelOverride",
            channels_pb2.CreateChannelOverride(
                channel_id=channel_id, role_id=role_id, overrides=channels_pb2.PermissionOverrides(neg=P.SEND_MESSAGES)
            ),
        ),
        "CreateChannelOverride(empty)": (
            "CreateChannelOverride",
            channels_pb2.CreateChannelOverride(channel_id=channel_id, role_id=role_id),
        ),
        "DeleteChannelOverride": (
            "DeleteChannelOverride",
            channels_pb2.DeleteChannelOverride(channel_id=channel_id, role_id=role_id),
        ),
    }


def test_member_without_modify_channel_is_refused(world, setup):
    owner, community, member, general = setup
    world.override(owner, general, community.id, neg=P.ADD_REACTIONS)
    strong = world.role(
        owner, community.id, "strong", permissions=ALL & ~P.ADMINISTRATOR & ~P.MODIFY_CHANNEL, priority=9
    )
    world.assign(owner, community.id, member, strong.id)
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    flag = {"permission": "MODIFY_CHANNEL"}
    create = channels_pb2.CreateChannel(community_id=community.id, name="new")
    expect.error(
        "CreateChannel", world.channels.CreateChannel, create, member, DENIED, "MISSING_PERMISSIONS", metadata=flag
    )
    for label, (method, request) in channel_requests(general, community.id).items():
        call = getattr(world.channels, method)
        expect.error(label, call, request, member, DENIED, "MISSING_PERMISSIONS", metadata=flag)
    expect.check()
    assert world.snapshot(owner, community.id) == before


def test_modify_channel_is_checked_in_the_channel(world, setup):
    owner, community, member, general = setup
    managers = world.role(owner, community.id, "managers", permissions=P.MODIFY_CHANNEL, priority=2)
    world.assign(owner, community.id, member, managers.id)
    locked = world.channel(owner, community.id, "locked")
    world.override(owner, locked.id, managers.id, neg=P.MODIFY_CHANNEL)
    delegated_to = world.member(community.id, "delegate")
    delegated = world.channel(owner, community.id, "delegated")
    world.override(owner, delegated.id, community.id, pos=P.MODIFY_CHANNEL)
    before = world.snapshot(owner, community.id)
    # Community-level MODIFY_CHANNEL, denied in one channel: refused there (it can still see it).
    expect = Expectations()
    flag = {"permission": "MODIFY_CHANNEL"}
    for label, (method, request) in channel_requests(locked.id, community.id).items():
        call = getattr(world.channels, method)
        expect.error(label, call, request, member, DENIED, "MISSING_PERMISSIONS", metadata=flag)
    # MODIFY_CHANNEL granted only in one channel: no channels created elsewhere.
    create = channels_pb2.CreateChannel(community_id=community.id, name="new")
    call = world.channels.CreateChannel
    expect.error("CreateChannel", call, create, delegated_to, DENIED, "MISSING_PERMISSIONS", metadata=flag)
    expect.error(
        "EditChannel general",
        world.channels.EditChannel,
        channel_requests(general, 0)["EditChannel"][1],
        delegated_to,
        DENIED,
        "MISSING_PERMISSIONS",
        metadata=flag,
    )
    expect.check()
    assert world.snapshot(owner, community.id) == before
    # ...but that channel it manages.
    assert edit(world.channels, delegated_to, delegated.id, name="managed").name == "managed"
    assert world.overrides(delegated_to, delegated.id) == {community.id: (P.MODIFY_CHANNEL, 0)}
    world.override(delegated_to, delegated.id, community.id, pos=P.MODIFY_CHANNEL, neg=P.ADD_REACTIONS)
    assert edit(world.channels, member, general, name="managed too").name == "managed too"
    world.channel(member, community.id, "made by a manager")


def test_override_bits_are_limited_to_what_the_caller_holds_in_the_channel(world, setup):
    owner, community, member, general = setup
    managers = world.role(owner, community.id, "managers", permissions=P.MODIFY_CHANNEL, priority=2)
    world.assign(owner, community.id, member, managers.id)
    target = world.role(owner, community.id, "target", priority=1)
    world.override(owner, general, community.id, neg=P.ADD_REACTIONS)
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    create = world.channels.CreateChannelOverride
    for label, role_id, pos, neg, missing in [
        ("allow DELETE_MESSAGES", target.id, P.DELETE_MESSAGES | P.SEND_MESSAGES, 0, "DELETE_MESSAGES"),
        ("deny MODIFY_ROLES", target.id, 0, P.MODIFY_ROLES, "MODIFY_ROLES"),
        ("allow for everyone", community.id, P.ADD_REACTIONS, 0, "ADD_REACTIONS"),
    ]:
        request = channels_pb2.CreateChannelOverride(
            channel_id=general, role_id=role_id, overrides=channels_pb2.PermissionOverrides(pos=pos, neg=neg)
        )
        expect.error(label, create, request, member, DENIED, "MISSING_PERMISSIONS", metadata={"permission": missing})
    expect.check()
    assert world.snapshot(owner, community.id) == before
    # Bits it holds there are fine, for roles and for everyone.
    world.override(member, general, target.id, pos=P.SEND_MESSAGES, neg=P.CREATE_INVITE)
    world.override(member, general, community.id, neg=P.ADD_REACTIONS | P.SEND_MEDIA)
    assert world.overrides(owner, general) == {
        target.id: (P.SEND_MESSAGES, P.CREATE_INVITE),
        community.id: (0, P.ADD_REACTIONS | P.SEND_MEDIA),
    }


# -------------------------------------------------------------------------------------------- invisible channels


def test_invisible_channel_is_unknown_for_every_channel_rpc(world, setup, server):
    owner, community, member, general = setup
    managers = world.role(owner, community.id, "managers", permissions=P.MODIFY_CHANNEL | P.MODIFY_ROLES, priority=5)
    blind = world.role(owner, community.id, "blind", priority=1)
    manager = world.member(community.id, "manager")
    world.assign(owner, community.id, manager, managers.id)
    world.assign(owner, community.id, member, blind.id)
    hidden = world.channel(owner, community.id, "hidden")
    world.override(owner, hidden.id, community.id, neg=P.VIEW_CHANNEL)
    role_hidden = world.channel(owner, community.id, "hidden from the blind")
    world.override(owner, role_hidden.id, blind.id, neg=P.VIEW_CHANNEL)
    outsider = world.make_account("outsider")
    unknown = server.app.ids.next_id()
    before = world.snapshot(owner, community.id)

    assert hidden.id not in world.visible(member, community.id)
    assert hidden.id not in world.visible(manager, community.id)
    assert role_hidden.id not in world.visible(member, community.id)
    expect = Expectations()
    for caller, channel_id in [
        (member, hidden.id),
        (manager, hidden.id),
        (outsider, hidden.id),
        (member, role_hidden.id),
        (outsider, general),
    ]:
        for label, (method, request) in channel_requests(channel_id, community.id).items():
            call = getattr(world.channels, method)
            case = f"{label} by {caller.name} on {channel_id}"
            error = expect.error(case, call, request, caller, NOT_FOUND, "UNKNOWN_CHANNEL")
            reference = rpc_error(call, channel_requests(unknown, community.id)[label][1], metadata=owner.metadata)
            if error is not None:
                answer = (error.code(), error.details(), details(error)[0])
                expect.that(
                    f"{case}: same as for an unknown id",
                    answer == (reference.code(), reference.details(), details(reference)[0]),
                    (answer, reference.details()),
                )
        if caller is not outsider:
            request = roles_pb2.ExplainPermissions(community_id=community.id, channel_id=channel_id)
            call = world.roles.ExplainPermissions
            expect.error(f"ExplainPermissions by {caller.name}", call, request, caller, NOT_FOUND, "UNKNOWN_CHANNEL")
    expect.check()
    assert world.snapshot(owner, community.id) == before
    assert hidden.id not in world.visible(manager, community.id)
    assert set(world.visible(member, community.id)) == {general}


def test_a_parent_the_caller_cannot_view_is_unknown(world, setup):
    """CreateChannel / EditChannel with a parent the caller cannot see: NOT_FOUND like an unknown parent, not
    success (which proves the category exists) nor PARENT_NOT_CATEGORY (which reveals a hidden channel's type)."""
    owner, community, member, _general = setup
    managers = world.role(owner, community.id, "managers", permissions=P.MODIFY_CHANNEL, priority=5)
    world.assign(owner, community.id, member, managers.id)
    hidden_category = world.channel(owner, community.id, "secret category", CATEGORY)
    world.override(owner, hidden_category.id, community.id, neg=P.VIEW_CHANNEL)
    hidden_text = world.channel(owner, community.id, "secret text")
    world.override(owner, hidden_text.id, community.id, neg=P.VIEW_CHANNEL)
    mine = world.channel(member, community.id, "mine")
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for label, parent in (("hidden category", hidden_category.id), ("hidden text channel", hidden_text.id)):
        create = channels_pb2.CreateChannel(community_id=community.id, name="x", parent_id=parent)
        expect.error(f"create in {label}", world.channels.CreateChannel, create, member, NOT_FOUND, "UNKNOWN_CHANNEL")
        move = channels_pb2.EditChannel(channel_id=mine.id, parent_id=parent)
        expect.error(f"move into {label}", world.channels.EditChannel, move, member, NOT_FOUND, "UNKNOWN_CHANNEL")
    after = world.snapshot(owner, community.id)
    expect.that("nothing changed", after == before, "a refused call changed the community")
    expect.check()


# ---------------------------------------------------------------------------------------------- limit and races


def test_channel_limit_is_500_per_community_even_for_racing_creates(world, setup, server):
    owner, community, _, general = setup

    async def bulk() -> None:
        async with server.app.db.unit_of_work(write=True) as uow:
            for index in range(489):
                assert await channels_repo.claim_channel_slot(uow, community.id, 500)
                await channels_repo.insert_channel(
                    uow,
                    channel_id=server.app.ids.next_id(),
                    community_id=community.id,
                    name=f"bulk {index}",
                    channel_type=TEXT,
                    parent_id=None,
                    position=index + 1,
                    now_ms=server.app.clock_ms(),
                )

    server.run(bulk())  # 490 with general
    request = channels_pb2.CreateChannel(community_id=community.id, name="racer")
    outcomes = run_together([(world.channels.CreateChannel, request, owner.metadata)] * 20)
    assert sorted(outcomes) == ["OK"] * 10 + ["RESOURCE_EXHAUSTED"] * 10, outcomes
    channels = world.visible(owner, community.id)
    assert len(channels) == 500
    assert sum(c.name == "racer" for c in channels.values()) == 10

    # The 501st, alone, of any type: refused with the limit, and nothing changes.
    before = world.snapshot(owner, community.id, with_overrides=False)
    expect = Expectations()
    for kind in (TEXT, VOICE, CATEGORY):
        request = channels_pb2.CreateChannel(community_id=community.id, name="one too many", type=kind)
        expect.error(
            f"501st {kind}",
            world.channels.CreateChannel,
            request,
            owner,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "LIMIT_REACHED",
            metadata={"limit": "channels_per_community", "max": "500"},
        )
    expect.check()
    assert world.snapshot(owner, community.id, with_overrides=False) == before
    # Deleting frees slots (general too); the limit is per community.
    world.channel(owner, world.community(owner, "other").id, "fine")
    delete(world.channels, owner, next(c.id for c in channels.values() if c.name == "racer"))
    delete(world.channels, owner, general)
    world.channel(owner, community.id, "499th again")
    world.channel(owner, community.id, "500th again")
    error = rpc_error(world.channel, owner, community.id, "501st again")
    assert_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    assert len(world.visible(owner, community.id)) == 500


def test_racing_override_writes_leave_exactly_one(world, setup):
    owner, community, member, _general = setup
    managers = world.role(owner, community.id, "managers", permissions=P.MODIFY_CHANNEL, priority=5)
    world.assign(owner, community.id, member, managers.id)
    target = world.role(owner, community.id, "target", priority=1)
    choices = [P.SEND_MESSAGES, P.ADD_REACTIONS, P.SEND_MEDIA, P.CREATE_INVITE, P.CONNECT_VOICE, P.SPEAK_VOICE]
    for round_number in range(3):
        channel = world.channel(owner, community.id, f"race {round_number}")
        requested = []
        jobs = []
        for index in range(12):
            pos, neg = choices[index % 6], choices[(index + 1) % 6] if index % 2 else 0
            requested.append((pos, neg))
            role_id = target.id if round_number < 2 else community.id
            request = channels_pb2.CreateChannelOverride(
                channel_id=channel.id, role_id=role_id, overrides=channels_pb2.PermissionOverrides(pos=pos, neg=neg)
            )
            # Everyone's override changes what the manager holds, so only the owner races on that one.
            caller = member if index % 3 == 0 and round_number < 2 else owner
            jobs.append((world.channels.CreateChannelOverride, request, caller.metadata))
        outcomes = run_together(jobs)
        assert outcomes == ["OK"] * 12, outcomes
        overrides = world.overrides(owner, channel.id)
        assert len(overrides) == 1, overrides
        [(pos, neg)] = overrides.values()
        assert (pos, neg) in requested


def test_channels_of_another_community_are_out_of_reach(world, setup):
    owner, community, member, general = setup
    stranger = world.make_account("stranger")
    theirs = world.community(stranger, "theirs")
    [their_general] = world.visible(stranger, theirs.id)
    before = world.snapshot(stranger, theirs.id)
    expect = Expectations()
    for label, (method, request) in channel_requests(their_general, theirs.id).items():
        expect.error(label, getattr(world.channels, method), request, owner, NOT_FOUND, "UNKNOWN_CHANNEL")
    for community_id in (theirs.id, 0, general):
        request = channels_pb2.GetChannels(community_id=community_id)
        expect.error(
            f"GetChannels {community_id}", world.channels.GetChannels, request, owner, NOT_FOUND, "UNKNOWN_COMMUNITY"
        )
        request = channels_pb2.CreateChannel(community_id=community_id, name="x")
        expect.error(
            f"CreateChannel {community_id}",
            world.channels.CreateChannel,
            request,
            owner,
            NOT_FOUND,
            "UNKNOWN_COMMUNITY",
        )
    # Overriding a role of this community in their channel, or theirs in ours.
    request = channels_pb2.CreateChannelOverride(channel_id=general, role_id=theirs.id)
    expect.error("their everyone here", world.channels.CreateChannelOverride, request, owner, NOT_FOUND, "UNKNOWN_ROLE")
    expect.check()
    assert world.snapshot(stranger, theirs.id) == before
    communities_stub = world.communities
    communities_stub.LeaveCommunity(communities_pb2.LeaveCommunity(community_id=community.id), metadata=member.metadata)
    error = rpc_error(world.visible, member, community.id)
    assert_error(error, NOT_FOUND, "UNKNOWN_COMMUNITY")
