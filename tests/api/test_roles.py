"""communities.v1.Roles through the API: every RPC, every error row, role semantics, limits, racing creates, and
ExplainPermissions against what GetCommunities and GetChannels report."""

from __future__ import annotations

import grpc
import pytest

from communities.domain.permissions import Permission as EnginePermission
from communities.storage import roles as roles_repo
from communities.v1 import channels_pb2, communities_pb2, members_pb2, roles_pb2
from tests.api.permissions_world import ALL, DEFAULT, RESERVED_BIT, Expectations, P, World, run_together
from tests.conftest import rpc_error
from tests.support.errors import assert_error

S = roles_pb2  # PermissionSource values live here

NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


@pytest.fixture
def setup(world):
    """A fresh community: its owner and a plain member."""
    owner = world.make_account("owner")
    community = world.community(owner)
    member = world.member(community.id, "member")
    return owner, community, member


def fields(role: roles_pb2.CommunityRole) -> tuple:
    return (role.name, role.permissions, role.priority, role.color, role.separated, role.public)


# ------------------------------------------------------------------------------------------------------ GetRoles


def test_new_community_has_no_roles_and_the_documented_defaults(world, setup):
    owner, community, member = setup
    for account in (owner, member):
        roles = world.get_roles(account, community.id)
        assert list(roles.roles) == []
        assert roles.default_permissions == DEFAULT


def test_get_roles_lists_highest_priority_first_for_any_member(world, setup):
    owner, community, member = setup
    low = world.role(owner, community.id, "low", priority=1)
    high = world.role(owner, community.id, "high", priority=9)
    middle = world.role(owner, community.id, "middle", priority=5)
    listed = world.get_roles(member, community.id)
    assert [role.id for role in listed.roles] == [high.id, middle.id, low.id]
    assert all(role.community_id == community.id for role in listed.roles)


# ------------------------------------------------------------------------------------------------------ CreateRole


def test_create_role_returns_every_field(world, setup):
    owner, community, _ = setup
    role = world.role(
        owner,
        community.id,
        "  Moderators  ",
        permissions=P.REMOVE_MEMBERS | P.DELETE_MESSAGES,
        priority=7,
        color=0x00FF7F,
        separated=True,
        public=True,
    )
    assert role.id != 0
    assert role.community_id == community.id
    assert fields(role) == ("Moderators", P.REMOVE_MEMBERS | P.DELETE_MESSAGES, 7, 0x00FF7F, True, True)
    [listed] = world.get_roles(owner, community.id).roles
    assert listed == role


def test_create_role_accepts_the_boundaries(world, setup):
    owner, community, _ = setup
    role = world.role(owner, community.id, "x" * 100, permissions=ALL, priority=1_000_000, color=0xFFFFFF)
    assert fields(role) == ("x" * 100, ALL, 1_000_000, 0xFFFFFF, False, False)
    zero = world.role(owner, community.id, "z", permissions=0, priority=0, color=0)
    assert fields(zero) == ("z", 0, 0, 0, False, False)


INVALID_CREATES = [
    ("name", {"name": ""}),
    ("name", {"name": "   "}),
    ("name", {"name": "x" * 101}),
    ("name", {"name": "bad\nname"}),
    ("name", {"name": "bell\x07"}),
    ("permissions", {"permissions": RESERVED_BIT}),
    ("permissions", {"permissions": 1 << 40}),
    ("permissions", {"permissions": P.VIEW_CHANNEL | 1 << 16}),
    ("permissions", {"permissions": 2**64 - 1}),
    ("color", {"color": 0x1000000}),
    ("color", {"color": 2**32 - 1}),
    ("priority", {"priority": 1_000_001}),
    ("priority", {"priority": 2**32 - 1}),
]


def test_create_and_edit_role_reject_malformed_fields(world, setup, roles_stub):
    owner, community, _ = setup
    role = world.role(owner, community.id, "r", priority=1)
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for field, values in INVALID_CREATES:
        create = roles_pb2.CreateRole(community_id=community.id, name="ok", priority=1)
        for key, value in values.items():
            setattr(create, key, value)
        expect.error(
            f"CreateRole {values}", roles_stub.CreateRole, create, owner, INVALID, "INVALID_ARGUMENT", field=field
        )
        edit = roles_pb2.EditRole(community_id=community.id, role_id=role.id, **values)
        expect.error(f"EditRole {values}", roles_stub.EditRole, edit, owner, INVALID, "INVALID_ARGUMENT", field=field)
    expect.check()
    assert world.snapshot(owner, community.id) == before


# ------------------------------------------------------------------------------------------------------ EditRole


def test_edit_role_changes_only_the_fields_present(world, setup, roles_stub):
    owner, community, _ = setup
    role = world.role(owner, community.id, "Helpers", permissions=P.PIN_MESSAGES, priority=3, color=0x123456)
    other = world.role(owner, community.id, "Other", priority=2)

    def edit(**changes) -> roles_pb2.CommunityRole:
        return roles_stub.EditRole(
            roles_pb2.EditRole(community_id=community.id, role_id=role.id, **changes), metadata=owner.metadata
        )

    expected = list(fields(role))
    steps = [
        ({}, {}),
        ({"name": " Helpers 2 "}, {0: "Helpers 2"}),
        ({"permissions": P.PIN_MESSAGES | P.DELETE_MESSAGES}, {1: P.PIN_MESSAGES | P.DELETE_MESSAGES}),
        ({"permissions": 0}, {1: 0}),
        ({"priority": 11}, {2: 11}),
        ({"priority": 0}, {2: 0}),
        ({"color": 0xFFFFFF}, {3: 0xFFFFFF}),
        ({"color": 0}, {3: 0}),
        ({"separated": True}, {4: True}),
        ({"public": True}, {5: True}),
        ({"separated": False}, {4: False}),
        ({"public": False, "name": "Both"}, {5: False, 0: "Both"}),
    ]
    for changes, effect in steps:
        for index, value in effect.items():
            expected[index] = value
        edited = edit(**changes)
        assert (edited.id, edited.community_id) == (role.id, community.id)
        assert fields(edited) == tuple(expected), changes
        by_id = {r.id: r for r in world.get_roles(owner, community.id).roles}
        assert by_id[role.id] == edited
        assert fields(by_id[other.id]) == fields(other)


# ------------------------------------------------------------------------------------------------------ DeleteRole


def test_delete_role_removes_it_from_members_and_overrides(world, setup, roles_stub):
    owner, community, member = setup
    doomed = world.role(owner, community.id, "doomed", permissions=P.PIN_MESSAGES, priority=2)
    kept = world.role(owner, community.id, "kept", priority=1)
    world.assign(owner, community.id, member, doomed.id, kept.id)
    channel = world.channel(owner, community.id, "room")
    world.override(owner, channel.id, doomed.id, pos=P.SEND_MESSAGES)
    world.override(owner, channel.id, kept.id, neg=P.SEND_MESSAGES)
    world.override(owner, channel.id, community.id, neg=P.ADD_REACTIONS)
    assert world.permissions(member, community.id) & P.PIN_MESSAGES

    roles_stub.DeleteRole(roles_pb2.DeleteRole(community_id=community.id, role_id=doomed.id), metadata=owner.metadata)

    assert [r.id for r in world.get_roles(owner, community.id).roles] == [kept.id]
    assert world.role_ids(owner, community.id, member.id) == {kept.id}
    assert world.overrides(owner, channel.id) == {kept.id: (0, P.SEND_MESSAGES), community.id: (0, P.ADD_REACTIONS)}
    assert not world.permissions(member, community.id) & P.PIN_MESSAGES
    # Deleting it again, editing it, assigning it: it is gone.
    error = rpc_error(
        roles_stub.DeleteRole,
        roles_pb2.DeleteRole(community_id=community.id, role_id=doomed.id),
        metadata=owner.metadata,
    )
    assert_error(error, NOT_FOUND, "UNKNOWN_ROLE")
    error = rpc_error(
        roles_stub.EditRole,
        roles_pb2.EditRole(community_id=community.id, role_id=doomed.id, name="back"),
        metadata=owner.metadata,
    )
    assert_error(error, NOT_FOUND, "UNKNOWN_ROLE")
    error = rpc_error(world.assign, owner, community.id, member, doomed.id)
    assert_error(error, NOT_FOUND, "UNKNOWN_ROLE")


# ------------------------------------------------------------------------------------------ EditDefaultPermissions


def test_edit_default_permissions_changes_what_plain_members_get(world, setup, communities_stub):
    owner, community, member = setup
    helper = world.member(community.id, "helper")
    role = world.role(owner, community.id, "r", permissions=P.MODIFY_COMMUNITY, priority=1)
    world.assign(owner, community.id, helper, role.id)
    assert world.permissions(member, community.id) == DEFAULT

    answer = world.set_default(owner, community.id, P.VIEW_CHANNEL | P.MODIFY_COMMUNITY)
    assert answer.default_permissions == P.VIEW_CHANNEL | P.MODIFY_COMMUNITY
    assert [r.id for r in answer.roles] == [role.id]
    assert world.get_roles(member, community.id).default_permissions == P.VIEW_CHANNEL | P.MODIFY_COMMUNITY
    assert world.permissions(member, community.id) == P.VIEW_CHANNEL | P.MODIFY_COMMUNITY
    assert world.permissions(helper, community.id) == P.VIEW_CHANNEL | P.MODIFY_COMMUNITY
    [general] = world.visible(member, community.id).values()
    assert general.permissions == P.VIEW_CHANNEL | P.MODIFY_COMMUNITY
    # Plain members may now edit the community...
    communities_stub.EditCommunity(
        communities_pb2.EditCommunity(community_id=community.id, name="by a member"), metadata=member.metadata
    )
    # ...and without VIEW_CHANNEL they see no channel at all, while the owner is unaffected.
    world.set_default(owner, community.id, P.SEND_MESSAGES)
    assert world.permissions(member, community.id) == P.SEND_MESSAGES
    assert world.visible(member, community.id) == {}
    assert world.permissions(owner, community.id) == ALL
    assert world.set_default(owner, community.id, 0).default_permissions == 0
    assert world.permissions(member, community.id) == 0
    assert world.permissions(helper, community.id) == P.MODIFY_COMMUNITY


def test_edit_default_permissions_rejects_unknown_bits(world, setup, roles_stub):
    owner, community, _ = setup
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for bits in (RESERVED_BIT, 1 << 40, DEFAULT | 1 << 20, 2**64 - 1):
        request = roles_pb2.EditDefaultPermissions(community_id=community.id, permissions=bits)
        expect.error(
            hex(bits),
            roles_stub.EditDefaultPermissions,
            request,
            owner,
            INVALID,
            "INVALID_ARGUMENT",
            field="permissions",
        )
    expect.check()
    assert world.snapshot(owner, community.id) == before


# ------------------------------------------------------------------------------------------ who may call what


def role_requests(community_id: int, role_id: int) -> dict[str, tuple[str, object]]:
    return {
        "CreateRole": ("CreateRole", roles_pb2.CreateRole(community_id=community_id, name="new", priority=0)),
        "EditRole": ("EditRole", roles_pb2.EditRole(community_id=community_id, role_id=role_id, name="renamed")),
        "EditRole(empty)": ("EditRole", roles_pb2.EditRole(community_id=community_id, role_id=role_id)),
        "DeleteRole": ("DeleteRole", roles_pb2.DeleteRole(community_id=community_id, role_id=role_id)),
        "EditDefaultPermissions": (
            "EditDefaultPermissions",
            roles_pb2.EditDefaultPermissions(community_id=community_id, permissions=DEFAULT),
        ),
        "GetRoles": ("GetRoles", roles_pb2.GetRoles(community_id=community_id)),
        "ExplainPermissions": ("ExplainPermissions", roles_pb2.ExplainPermissions(community_id=community_id)),
    }


MUTATIONS = ["CreateRole", "EditRole", "EditRole(empty)", "DeleteRole", "EditDefaultPermissions"]


def test_member_without_modify_roles_is_refused(world, setup, roles_stub):
    owner, community, member = setup
    # Even with every other permission, and a rank above the role.
    role = world.role(owner, community.id, "target", priority=1)
    strong = world.role(owner, community.id, "strong", permissions=ALL & ~P.ADMINISTRATOR & ~P.MODIFY_ROLES, priority=9)
    world.assign(owner, community.id, member, strong.id)
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for label in MUTATIONS:
        method, request = role_requests(community.id, role.id)[label]
        expect.error(
            label,
            getattr(roles_stub, method),
            request,
            member,
            DENIED,
            "MISSING_PERMISSIONS",
            metadata={"permission": "MODIFY_ROLES"},
        )
    expect.check()
    assert world.snapshot(owner, community.id) == before


def test_community_the_caller_is_not_in_is_unknown(world, setup, roles_stub, communities_stub):
    owner, community, member = setup
    role = world.role(owner, community.id, "target", priority=1)
    communities_stub.LeaveCommunity(communities_pb2.LeaveCommunity(community_id=community.id), metadata=member.metadata)
    outsider = world.make_account("outsider")
    deleted = world.community(outsider, "deleted")
    communities_stub.DeleteCommunity(
        communities_pb2.DeleteCommunity(community_id=deleted.id), metadata=outsider.metadata
    )
    cases = {
        "a member who left": (member, community.id),
        "an outsider": (outsider, community.id),
        "a deleted community": (outsider, deleted.id),
        "an unused id": (owner, community.id + 1),
        "zero": (owner, 0),
        "a role id": (owner, role.id),
    }
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for case, (caller, community_id) in cases.items():
        for label, (method, request) in role_requests(community_id, role.id).items():
            expect.error(
                f"{label} by {case}", getattr(roles_stub, method), request, caller, NOT_FOUND, "UNKNOWN_COMMUNITY"
            )
    expect.check()
    assert world.snapshot(owner, community.id) == before


def test_unknown_role_is_not_found(world, setup, roles_stub):
    owner, community, _ = setup
    elsewhere = world.community(owner, "elsewhere")
    foreign_role = world.role(owner, elsewhere.id, "foreign", priority=1)
    cases = {
        "unknown": foreign_role.id + 1,
        "zero": 0,
        "other community": foreign_role.id,
        "community id": community.id,
    }
    before = world.snapshot(owner, community.id), world.snapshot(owner, elsewhere.id)
    expect = Expectations()
    for case, role_id in cases.items():
        for label in ("EditRole", "EditRole(empty)", "DeleteRole"):
            method, request = role_requests(community.id, role_id)[label]
            expect.error(f"{label} of {case}", getattr(roles_stub, method), request, owner, NOT_FOUND, "UNKNOWN_ROLE")
    expect.check()
    assert (world.snapshot(owner, community.id), world.snapshot(owner, elsewhere.id)) == before


# ------------------------------------------------------------------------------------------------------ semantics


def test_community_permissions_follow_roles(world, setup, communities_stub):
    owner, community, member = setup
    edit = communities_pb2.EditCommunity(community_id=community.id, name="renamed")
    error = rpc_error(communities_stub.EditCommunity, edit, metadata=member.metadata)
    assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_COMMUNITY"})

    managers = world.role(owner, community.id, "managers", permissions=P.MODIFY_COMMUNITY, priority=1)
    pins = world.role(owner, community.id, "pins", permissions=P.PIN_MESSAGES, priority=2)
    world.assign(owner, community.id, member, managers.id, pins.id)
    assert world.permissions(member, community.id) == DEFAULT | P.MODIFY_COMMUNITY | P.PIN_MESSAGES
    assert communities_stub.EditCommunity(edit, metadata=member.metadata).name == "renamed"

    world.assign(owner, community.id, member, pins.id)
    assert world.permissions(member, community.id) == DEFAULT | P.PIN_MESSAGES
    error = rpc_error(communities_stub.EditCommunity, edit, metadata=member.metadata)
    assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_COMMUNITY"})

    # Editing the role's permissions takes effect for its holders immediately.
    world.roles.EditRole(
        roles_pb2.EditRole(community_id=community.id, role_id=pins.id, permissions=P.MODIFY_COMMUNITY),
        metadata=owner.metadata,
    )
    assert world.permissions(member, community.id) == DEFAULT | P.MODIFY_COMMUNITY
    communities_stub.EditCommunity(edit, metadata=member.metadata)


def test_administrator_role_means_every_permission(world, setup):
    owner, community, member = setup
    world.set_default(owner, community.id, 0)
    admins = world.role(owner, community.id, "admins", permissions=P.ADMINISTRATOR, priority=1)
    world.assign(owner, community.id, member, admins.id)
    assert world.permissions(member, community.id) == ALL
    assert world.permissions(owner, community.id) == ALL


def test_moderator_with_modify_roles_manages_lower_roles(world, setup, roles_stub):
    owner, community, member = setup
    mods = world.role(
        owner, community.id, "mods", permissions=P.MODIFY_ROLES | P.PIN_MESSAGES | P.DELETE_MESSAGES, priority=5
    )
    world.assign(owner, community.id, member, mods.id)
    created = world.role(member, community.id, "pinners", permissions=P.PIN_MESSAGES, priority=4)
    edited = roles_stub.EditRole(
        roles_pb2.EditRole(
            community_id=community.id, role_id=created.id, permissions=P.DELETE_MESSAGES | P.SEND_MESSAGES, priority=3
        ),
        metadata=member.metadata,
    )
    assert (edited.permissions, edited.priority) == (P.DELETE_MESSAGES | P.SEND_MESSAGES, 3)
    world.set_default(member, community.id, DEFAULT & ~P.CREATE_INVITE)
    assert world.get_roles(owner, community.id).default_permissions == DEFAULT & ~P.CREATE_INVITE
    roles_stub.DeleteRole(roles_pb2.DeleteRole(community_id=community.id, role_id=created.id), metadata=member.metadata)
    assert [r.id for r in world.get_roles(owner, community.id).roles] == [mods.id]


# ------------------------------------------------------------------------------------------------------ limits


def create_roles_directly(server, community_id: int, count: int) -> None:
    """Bulk setup in one transaction through the storage layer, claiming a slot per role as CreateRole does."""

    async def run() -> None:
        async with server.app.db.unit_of_work(write=True) as uow:
            for index in range(count):
                assert await roles_repo.claim_role_slot(uow, community_id, 250)
                await roles_repo.insert_role(
                    uow,
                    roles_repo.RoleRecord(
                        id=server.app.ids.next_id(),
                        community_id=community_id,
                        name=f"bulk {index}",
                        permissions=0,
                        priority=index % 100,
                        color=0,
                        separated=False,
                        public=False,
                    ),
                )

    server.run(run())


def test_role_limit_is_250_per_community_even_for_racing_creates(world, setup, server, roles_stub):
    owner, community, member = setup
    mods = world.role(owner, community.id, "mods", permissions=P.MODIFY_ROLES, priority=100)
    world.assign(owner, community.id, member, mods.id)
    create_roles_directly(server, community.id, 234)  # 235 with mods: 15 free slots
    jobs = [
        (
            roles_stub.CreateRole,
            roles_pb2.CreateRole(community_id=community.id, name=f"racer {index}", priority=1),
            (owner if index % 2 else member).metadata,
        )
        for index in range(30)
    ]
    outcomes = run_together(jobs)
    assert sorted(outcomes) == ["OK"] * 15 + ["RESOURCE_EXHAUSTED"] * 15, outcomes
    roles = world.get_roles(owner, community.id).roles
    assert len(roles) == 250
    assert len({role.id for role in roles}) == 250
    assert sum(role.name.startswith("racer") for role in roles) == 15

    # The 251st, alone, through the API: refused with the limit, and nothing changes.
    before = world.snapshot(owner, community.id)
    error = rpc_error(world.role, owner, community.id, "the 251st", priority=1)
    assert_error(
        error,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "LIMIT_REACHED",
        metadata={"limit": "roles_per_community", "max": "250"},
    )
    assert world.snapshot(owner, community.id) == before
    # The limit is per community, and deleting a role frees its slot (once).
    other = world.community(owner, "other")
    world.role(owner, other.id, "fine", priority=1)
    roles_stub.DeleteRole(
        roles_pb2.DeleteRole(community_id=community.id, role_id=roles[-1].id), metadata=owner.metadata
    )
    world.role(owner, community.id, "again the 250th", priority=1)
    error = rpc_error(world.role, owner, community.id, "and again the 251st", priority=1)
    assert_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    assert len(world.get_roles(owner, community.id).roles) == 250


# ------------------------------------------------------------------------------------------------------ Explain


def sources(explanation) -> list[int]:
    return [step.source for step in explanation.steps]


def test_explain_self_at_community_level(world, setup):
    owner, community, member = setup
    plain = world.explain(member, community.id)
    assert (plain.community_id, plain.user_id, plain.channel_id) == (community.id, member.id, 0)
    assert plain.permissions == world.permissions(member, community.id) == DEFAULT
    assert (plain.rank, plain.owner) == (0, False)
    assert sources(plain) == [S.PERMISSION_SOURCE_DEFAULT]
    assert (plain.steps[0].allow, plain.steps[0].result) == (DEFAULT, DEFAULT)

    low = world.role(owner, community.id, "low", permissions=P.PIN_MESSAGES, priority=2)
    high = world.role(owner, community.id, "high", permissions=P.DELETE_MESSAGES, priority=8)
    world.assign(owner, community.id, member, low.id, high.id)
    explained = world.explain(member, community.id, user_id=member.id)
    assert (
        explained.permissions == world.permissions(member, community.id) == DEFAULT | P.PIN_MESSAGES | P.DELETE_MESSAGES
    )
    assert explained.rank == 8
    assert sources(explained)[0] == S.PERMISSION_SOURCE_DEFAULT
    role_steps = {step.role_id: step for step in explained.steps if step.source == S.PERMISSION_SOURCE_ROLE}
    assert set(role_steps) == {low.id, high.id}
    assert role_steps[low.id].allow == P.PIN_MESSAGES
    assert role_steps[high.id].allow == P.DELETE_MESSAGES
    assert explained.steps[-1].result == explained.permissions

    mine = world.explain(owner, community.id)
    assert (mine.owner, mine.user_id, mine.permissions) == (True, owner.id, ALL)
    assert mine.rank > 1_000_000
    assert sources(mine) == [S.PERMISSION_SOURCE_OWNER]
    assert mine.steps[-1].result == ALL == world.permissions(owner, community.id)


def test_explain_administrator(world, setup):
    owner, community, member = setup
    channel = world.channel(owner, community.id, "hidden")
    world.override(owner, channel.id, community.id, neg=P.VIEW_CHANNEL | P.SEND_MESSAGES)
    admins = world.role(owner, community.id, "admins", permissions=P.ADMINISTRATOR, priority=3)
    world.override(owner, channel.id, admins.id, neg=P.PIN_MESSAGES)
    world.assign(owner, community.id, member, admins.id)
    for channel_id in (None, channel.id):
        explained = world.explain(member, community.id, channel_id=channel_id)
        assert explained.permissions == ALL
        assert S.PERMISSION_SOURCE_ADMINISTRATOR in sources(explained)
        assert S.PERMISSION_SOURCE_EVERYONE_OVERRIDE not in sources(explained)
        assert explained.steps[-1].result == ALL
    assert world.visible(member, community.id)[channel.id].permissions == ALL


def test_explain_in_a_channel_matches_get_channels(world, setup):
    owner, community, member = setup
    low = world.role(owner, community.id, "low", permissions=P.PIN_MESSAGES, priority=2)
    high = world.role(owner, community.id, "high", permissions=P.DELETE_MESSAGES, priority=8)
    unheld = world.role(owner, community.id, "unheld", priority=1)
    world.assign(owner, community.id, member, low.id, high.id)
    channel = world.channel(owner, community.id, "room")
    world.override(owner, channel.id, community.id, pos=P.MODIFY_CHANNEL, neg=P.SEND_MESSAGES | P.ADD_REACTIONS)
    world.override(owner, channel.id, low.id, pos=P.SEND_MESSAGES, neg=P.PIN_MESSAGES)
    world.override(owner, channel.id, high.id, pos=P.PIN_MESSAGES, neg=P.MODIFY_CHANNEL)
    world.override(owner, channel.id, unheld.id, neg=P.VIEW_CHANNEL)

    expected = (
        (DEFAULT | P.PIN_MESSAGES | P.DELETE_MESSAGES | P.MODIFY_CHANNEL) & ~(P.SEND_MESSAGES | P.ADD_REACTIONS)
    ) & ~(P.PIN_MESSAGES | P.MODIFY_CHANNEL) | (P.SEND_MESSAGES | P.PIN_MESSAGES)
    shown = world.visible(member, community.id)[channel.id].permissions
    assert shown == expected
    for caller, user_id in ((member, 0), (owner, member.id)):
        explained = world.explain(caller, community.id, user_id=user_id, channel_id=channel.id)
        assert (explained.user_id, explained.channel_id) == (member.id, channel.id)
        assert explained.permissions == shown
        assert explained.steps[-1].result == shown
        found = sources(explained)
        assert found[0] == S.PERMISSION_SOURCE_DEFAULT
        assert {s.role_id for s in explained.steps if s.source == S.PERMISSION_SOURCE_ROLE} == {low.id, high.id}
        [everyone] = [s for s in explained.steps if s.source == S.PERMISSION_SOURCE_EVERYONE_OVERRIDE]
        assert (everyone.role_id, everyone.allow, everyone.deny) == (
            community.id,
            P.MODIFY_CHANNEL,
            P.SEND_MESSAGES | P.ADD_REACTIONS,
        )
        role_overrides = {
            s.role_id: (s.allow, s.deny) for s in explained.steps if s.source == S.PERMISSION_SOURCE_ROLE_OVERRIDE
        }
        assert role_overrides == {
            low.id: (P.SEND_MESSAGES, P.PIN_MESSAGES),
            high.id: (P.PIN_MESSAGES, P.MODIFY_CHANNEL),
        }
        [combined] = [s for s in explained.steps if s.source == S.PERMISSION_SOURCE_ROLE_OVERRIDES]
        assert (combined.allow, combined.deny) == (
            P.SEND_MESSAGES | P.PIN_MESSAGES,
            P.PIN_MESSAGES | P.MODIFY_CHANNEL,
        )
        assert found.index(S.PERMISSION_SOURCE_EVERYONE_OVERRIDE) < found.index(S.PERMISSION_SOURCE_ROLE_OVERRIDES)


def test_explain_a_member_who_cannot_see_the_channel(world, setup):
    owner, community, member = setup
    channel = world.channel(owner, community.id, "staff")
    world.override(owner, channel.id, community.id, neg=P.VIEW_CHANNEL)
    explained = world.explain(owner, community.id, user_id=member.id, channel_id=channel.id)
    assert explained.permissions == 0
    assert explained.steps[-1].result == 0
    assert sources(explained)[-1] == S.PERMISSION_SOURCE_NO_VIEW_CHANNEL
    assert channel.id not in world.visible(member, community.id)
    # The member itself cannot ask about a channel it cannot see: that channel does not exist for it.
    error = rpc_error(world.explain, member, community.id, channel_id=channel.id)
    assert_error(error, NOT_FOUND, "UNKNOWN_CHANNEL")


def test_explaining_another_member_needs_modify_roles(world, setup):
    owner, community, member = setup
    other = world.member(community.id, "other")
    for user_id in (other.id, owner.id):
        error = rpc_error(world.explain, member, community.id, user_id=user_id)
        assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_ROLES"})
    error = rpc_error(world.explain, member, community.id, user_id=other.id, channel_id=community.id + 1)
    assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_ROLES"})

    mods = world.role(owner, community.id, "mods", permissions=P.MODIFY_ROLES, priority=1)
    world.assign(owner, community.id, member, mods.id)
    about_other = world.explain(member, community.id, user_id=other.id)
    assert (about_other.user_id, about_other.permissions) == (other.id, world.permissions(other, community.id))
    about_owner = world.explain(member, community.id, user_id=owner.id)
    assert (about_owner.owner, about_owner.permissions) == (True, ALL)
    # Someone who is not a member (or no user at all) is an unknown member.
    for user_id in (world.make_account("stranger").id, other.id + 12345):
        error = rpc_error(world.explain, member, community.id, user_id=user_id)
        assert_error(error, NOT_FOUND, "UNKNOWN_MEMBER")


def test_explain_in_an_unknown_or_foreign_channel(world, setup):
    owner, community, member = setup
    elsewhere = world.community(owner, "elsewhere")
    [foreign] = world.visible(owner, elsewhere.id)
    [general] = world.visible(owner, community.id)
    for channel_id in (foreign, general + 100000, 0, community.id):
        error = rpc_error(world.explain, owner, community.id, channel_id=channel_id)
        assert_error(error, NOT_FOUND, "UNKNOWN_CHANNEL")
    assert world.explain(member, community.id, channel_id=general).permissions == DEFAULT


def test_member_edits_arrive_in_explanations(world, setup, members_stub):
    owner, community, member = setup
    role = world.role(owner, community.id, "r", permissions=P.PIN_MESSAGES, priority=4)
    world.assign(owner, community.id, member, role.id)
    assert world.explain(member, community.id).rank == 4
    members_stub.EditMember(
        members_pb2.EditMember(community_id=community.id, member_id=member.id, role_ids=members_pb2.RoleIds()),
        metadata=owner.metadata,
    )
    explained = world.explain(member, community.id)
    assert (explained.rank, explained.permissions) == (0, DEFAULT)


def test_own_explanations_follow_every_change_they_depend_on(world, setup, roles_stub, channels_stub):
    """A caller's own explanation is reused while nothing it depends on changes: each change below must show in
    the very next answer, asked for the same way as the one before it."""
    owner, community, member = setup
    role = world.role(owner, community.id, "r", permissions=P.PIN_MESSAGES, priority=4)
    world.assign(owner, community.id, member, role.id)
    channel = world.channel(owner, community.id, "room")

    def explain() -> tuple:
        explained = [world.explain(member, community.id, channel_id=channel_id) for channel_id in (None, channel.id)]
        return tuple(
            (e.permissions, e.rank, [(s.source, s.role_id, s.allow, s.deny) for s in e.steps]) for e in explained
        )

    def edit_role(**changes) -> None:
        roles_stub.EditRole(
            roles_pb2.EditRole(community_id=community.id, role_id=role.id, **changes), metadata=owner.metadata
        )

    first = explain()
    assert explain() == first  # asked again: the same answer
    assert first[0][:2] == (DEFAULT | P.PIN_MESSAGES, 4)

    edit_role(priority=6)
    assert [rank for _, rank, _ in explain()] == [6, 6]
    edit_role(permissions=P.DELETE_MESSAGES)
    assert explain()[0][0] == DEFAULT | P.DELETE_MESSAGES
    world.override(owner, channel.id, role.id, neg=P.SEND_MESSAGES)
    assert explain()[1][0] == (DEFAULT | P.DELETE_MESSAGES) & ~P.SEND_MESSAGES
    world.set_default(owner, community.id, DEFAULT & ~P.ADD_REACTIONS)
    assert explain()[0][0] == (DEFAULT & ~P.ADD_REACTIONS) | P.DELETE_MESSAGES
    channels_stub.DeleteChannel(channels_pb2.DeleteChannel(channel_id=channel.id), metadata=owner.metadata)
    error = rpc_error(world.explain, member, community.id, channel_id=channel.id)
    assert_error(error, NOT_FOUND, "UNKNOWN_CHANNEL")


def test_engine_flags_match_the_proto():
    """The server's flag values are the proto's (the tests above use the proto's)."""
    assert {flag.name: flag.value for flag in EnginePermission} == {flag.name: flag.value for flag in P}
