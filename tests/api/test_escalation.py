"""Privilege escalation through the API: the role hierarchy and "only bits you hold" (API.md, Permissions, step 3).
Every refused attempt must also change nothing; the allowed counterparts must work."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import timestamp_pb2

from communities.v1 import channels_pb2, communities_pb2, members_pb2, roles_pb2
from tests.api.permissions_world import ALL, DEFAULT, Expectations, P, World

DENIED = grpc.StatusCode.PERMISSION_DENIED
HIERARCHY = "ROLE_HIERARCHY"
MISSING = "MISSING_PERMISSIONS"

MOD_BITS = P.MODIFY_ROLES | P.REMOVE_MEMBERS | P.MODIFY_CHANNEL | P.PIN_MESSAGES


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


@dataclass
class Community:
    id: int
    general: int
    owner: object
    admin: object  # holds `admins` (ADMINISTRATOR, priority 10)
    mod: object  # holds `mods` (MOD_BITS, priority 5)
    peer: object  # holds `mods` too: the same rank as `mod`
    peer2: object  # holds `equals` (priority 5, no bits): the same rank as `mod`
    low: object  # holds `lows` (priority 1)
    plain: object  # no roles
    admins: object
    mods: object
    equals: object
    helpers: object  # priority 3, PIN_MESSAGES
    lows: object
    rich: object  # priority 2, DELETE_MESSAGES: a bit `mod` lacks


@pytest.fixture
def c(world) -> Community:
    owner = world.make_account("owner")
    community = world.community(owner)
    [general] = world.visible(owner, community.id)

    def role(name, permissions, priority):
        return world.role(owner, community.id, name, permissions=permissions, priority=priority)

    roles = {
        "admins": role("admins", P.ADMINISTRATOR, 10),
        "mods": role("mods", MOD_BITS, 5),
        "equals": role("equals", 0, 5),
        "helpers": role("helpers", P.PIN_MESSAGES, 3),
        "lows": role("lows", 0, 1),
        "rich": role("rich", P.DELETE_MESSAGES, 2),
    }
    people = {}
    for name, held in [
        ("admin", "admins"),
        ("mod", "mods"),
        ("peer", "mods"),
        ("peer2", "equals"),
        ("low", "lows"),
        ("plain", None),
    ]:
        people[name] = world.member(community.id, name)
        if held:
            world.assign(owner, community.id, people[name], roles[held].id)
    return Community(id=community.id, general=general, owner=owner, **people, **roles)


def edit_role(c: Community, role, **changes):
    return roles_pb2.EditRole(community_id=c.id, role_id=role.id, **changes)


def create_role(c: Community, priority: int, permissions: int = 0):
    return roles_pb2.CreateRole(community_id=c.id, name="new", priority=priority, permissions=int(permissions))


def edit_member(c: Community, target, *, role_ids=None, nickname=None):
    request = members_pb2.EditMember(community_id=c.id, member_id=target.id)
    if role_ids is not None:
        request.role_ids.CopyFrom(members_pb2.RoleIds(ids=list(role_ids)))
    if nickname is not None:
        request.nickname = nickname
    return request


def remove(c: Community, *targets, ban: bool = False):
    request = members_pb2.RemoveMembers(community_id=c.id, member_ids=[t.id for t in targets])
    if ban:
        request.until.CopyFrom(timestamp_pb2.Timestamp())
    return request


def override(c: Community, role_id: int, pos: int = 0, neg: int = 0):
    return channels_pb2.CreateChannelOverride(
        channel_id=c.general, role_id=role_id, overrides=channels_pb2.PermissionOverrides(pos=int(pos), neg=int(neg))
    )


def refused(world: World, c: Community, cases) -> None:
    """cases: (label, stub method name, request, caller, reason[, permission]); each must be refused with
    PERMISSION_DENIED and that reason, and nothing may change."""
    before = world.snapshot(c.owner, c.id)
    expect = Expectations()
    for label, method, request, caller, reason, *permission in cases:
        service = {
            "CreateRole": world.roles,
            "EditRole": world.roles,
            "DeleteRole": world.roles,
            "EditDefaultPermissions": world.roles,
            "EditMember": world.members,
            "RemoveMembers": world.members,
            "CreateChannelOverride": world.channels,
        }[method]
        metadata = {"permission": permission[0]} if permission else None
        expect.error(label, getattr(service, method), request, caller, DENIED, reason, metadata=metadata)
    expect.check()
    assert world.snapshot(c.owner, c.id) == before


# ------------------------------------------------------------------------------------------------------ roles


def test_moderator_cannot_touch_its_own_role_or_higher_ones(world, c):
    refused(
        world,
        c,
        [
            ("raise own priority", "EditRole", edit_role(c, c.mods, priority=6), c.mod, HIERARCHY),
            ("own priority unchanged", "EditRole", edit_role(c, c.mods, priority=5), c.mod, HIERARCHY),
            ("lower own priority", "EditRole", edit_role(c, c.mods, priority=4), c.mod, HIERARCHY),
            (
                "add own bits",
                "EditRole",
                edit_role(c, c.mods, permissions=MOD_BITS | P.SEND_MESSAGES),
                c.mod,
                HIERARCHY,
            ),
            (
                "admin on own",
                "EditRole",
                edit_role(c, c.mods, permissions=MOD_BITS | P.ADMINISTRATOR),
                c.mod,
                HIERARCHY,
            ),
            ("rename own", "EditRole", edit_role(c, c.mods, name="Top"), c.mod, HIERARCHY),
            ("recolor own", "EditRole", edit_role(c, c.mods, color=0xFF0000), c.mod, HIERARCHY),
            ("delete own", "DeleteRole", roles_pb2.DeleteRole(community_id=c.id, role_id=c.mods.id), c.mod, HIERARCHY),
            ("equal role", "EditRole", edit_role(c, c.equals, permissions=P.PIN_MESSAGES), c.mod, HIERARCHY),
            (
                "delete equal",
                "DeleteRole",
                roles_pb2.DeleteRole(community_id=c.id, role_id=c.equals.id),
                c.mod,
                HIERARCHY,
            ),
            ("higher role", "EditRole", edit_role(c, c.admins, priority=1), c.mod, HIERARCHY),
            (
                "delete higher",
                "DeleteRole",
                roles_pb2.DeleteRole(community_id=c.id, role_id=c.admins.id),
                c.mod,
                HIERARCHY,
            ),
        ],
    )


def test_moderator_cannot_create_or_raise_roles_to_its_rank(world, c):
    refused(
        world,
        c,
        [
            ("create at own rank", "CreateRole", create_role(c, 5), c.mod, HIERARCHY),
            ("create above", "CreateRole", create_role(c, 6), c.mod, HIERARCHY),
            ("create at the top", "CreateRole", create_role(c, 1_000_000), c.mod, HIERARCHY),
            ("raise a lower role to own rank", "EditRole", edit_role(c, c.helpers, priority=5), c.mod, HIERARCHY),
            ("raise a lower role above", "EditRole", edit_role(c, c.lows, priority=11), c.mod, HIERARCHY),
        ],
    )
    # Just below its rank is fine.
    made = world.roles.CreateRole(create_role(c, 4, P.PIN_MESSAGES), metadata=c.mod.metadata)
    assert (made.priority, made.permissions) == (4, P.PIN_MESSAGES)
    raised = world.roles.EditRole(edit_role(c, c.helpers, priority=4), metadata=c.mod.metadata)
    assert raised.priority == 4


def test_nobody_grants_bits_it_lacks(world, c):
    world.assign(c.owner, c.id, c.low, c.lows.id, c.rich.id)
    refused(
        world,
        c,
        [
            (
                "create with ADMINISTRATOR",
                "CreateRole",
                create_role(c, 1, P.ADMINISTRATOR),
                c.mod,
                MISSING,
                "ADMINISTRATOR",
            ),
            (
                "create with DELETE_MESSAGES",
                "CreateRole",
                create_role(c, 1, P.DELETE_MESSAGES | P.PIN_MESSAGES),
                c.mod,
                MISSING,
                "DELETE_MESSAGES",
            ),
            (
                "add ADMINISTRATOR to a lower role",
                "EditRole",
                edit_role(c, c.helpers, permissions=P.PIN_MESSAGES | P.ADMINISTRATOR),
                c.mod,
                MISSING,
                "ADMINISTRATOR",
            ),
            (
                "add MODIFY_COMMUNITY to a lower role",
                "EditRole",
                edit_role(c, c.lows, permissions=P.MODIFY_COMMUNITY),
                c.mod,
                MISSING,
                "MODIFY_COMMUNITY",
            ),
            # Changing a bit one lacks includes taking it away.
            (
                "remove DELETE_MESSAGES",
                "EditRole",
                edit_role(c, c.rich, permissions=0),
                c.mod,
                MISSING,
                "DELETE_MESSAGES",
            ),
            (
                "default ADMINISTRATOR",
                "EditDefaultPermissions",
                roles_pb2.EditDefaultPermissions(community_id=c.id, permissions=DEFAULT | P.ADMINISTRATOR),
                c.mod,
                MISSING,
                "ADMINISTRATOR",
            ),
            (
                "default MODIFY_COMMUNITY",
                "EditDefaultPermissions",
                roles_pb2.EditDefaultPermissions(community_id=c.id, permissions=DEFAULT | P.MODIFY_COMMUNITY),
                c.mod,
                MISSING,
                "MODIFY_COMMUNITY",
            ),
            (
                "override DELETE_MESSAGES for a lower role",
                "CreateChannelOverride",
                override(c, c.lows.id, pos=P.DELETE_MESSAGES),
                c.mod,
                MISSING,
                "DELETE_MESSAGES",
            ),
            (
                "override MODIFY_COMMUNITY for everyone",
                "CreateChannelOverride",
                override(c, c.id, pos=P.MODIFY_COMMUNITY),
                c.mod,
                MISSING,
                "MODIFY_COMMUNITY",
            ),
            # A role whose bits it lacks can be neither given nor taken.
            (
                "assign rich",
                "EditMember",
                edit_member(c, c.plain, role_ids=[c.rich.id]),
                c.mod,
                MISSING,
                "DELETE_MESSAGES",
            ),
            (
                "unassign rich",
                "EditMember",
                edit_member(c, c.low, role_ids=[c.lows.id]),
                c.mod,
                MISSING,
                "DELETE_MESSAGES",
            ),
        ],
    )
    # ADMINISTRATOR means nothing in a channel: it is refused in overrides for everyone, owner included.
    expect = Expectations()
    for caller in (c.mod, c.owner):
        for pos, neg in ((P.ADMINISTRATOR, 0), (0, P.ADMINISTRATOR)):
            request = override(c, c.mods.id, pos=pos, neg=neg)
            call = world.channels.CreateChannelOverride
            label = f"{caller.name}: ADMINISTRATOR in an override"
            expect.error(
                label, call, request, caller, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="overrides"
            )
    expect.check()
    # Bits it holds are fine everywhere.
    world.roles.CreateRole(create_role(c, 1, P.PIN_MESSAGES | P.REMOVE_MEMBERS), metadata=c.mod.metadata)
    world.roles.EditRole(edit_role(c, c.lows, permissions=P.MODIFY_CHANNEL), metadata=c.mod.metadata)
    world.set_default(c.mod, c.id, DEFAULT | P.PIN_MESSAGES)
    world.override(c.mod, c.general, c.lows.id, pos=P.PIN_MESSAGES, neg=P.SEND_MESSAGES)


# ------------------------------------------------------------------------------------------------------ members


def test_peers_and_higher_members_are_out_of_reach(world, c):
    cases = []
    for target in (c.peer, c.peer2, c.admin):
        name = target.name
        cases += [
            (f"nickname of {name}", "EditMember", edit_member(c, target, nickname="x"), c.mod, HIERARCHY),
            (f"add a role to {name}", "EditMember", edit_member(c, target, role_ids=[c.lows.id]), c.mod, HIERARCHY),
            (f"clear {name}'s roles", "EditMember", edit_member(c, target, role_ids=[]), c.mod, HIERARCHY),
            (f"kick {name}", "RemoveMembers", remove(c, target), c.mod, HIERARCHY),
            (f"ban {name}", "RemoveMembers", remove(c, target, ban=True), c.mod, HIERARCHY),
        ]
    cases += [
        # All or nothing: the lower member in the same call stays.
        ("kick low and peer", "RemoveMembers", remove(c, c.low, c.peer), c.mod, HIERARCHY),
        ("ban peer and low", "RemoveMembers", remove(c, c.peer, c.low, ban=True), c.mod, HIERARCHY),
        ("kick self", "RemoveMembers", remove(c, c.mod), c.mod, HIERARCHY),
        ("kick self and low", "RemoveMembers", remove(c, c.low, c.mod), c.mod, HIERARCHY),
        # Outranking is not enough without MODIFY_ROLES.
        ("low renames plain", "EditMember", edit_member(c, c.plain, nickname="x"), c.low, MISSING, "MODIFY_ROLES"),
    ]
    refused(world, c, cases)


def test_roles_at_or_above_ones_rank_cannot_be_assigned(world, c):
    refused(
        world,
        c,
        [
            ("give own role", "EditMember", edit_member(c, c.plain, role_ids=[c.mods.id]), c.mod, HIERARCHY),
            ("give an equal role", "EditMember", edit_member(c, c.plain, role_ids=[c.equals.id]), c.mod, HIERARCHY),
            (
                "give a higher role",
                "EditMember",
                edit_member(c, c.low, role_ids=[c.lows.id, c.admins.id]),
                c.mod,
                HIERARCHY,
            ),
            (
                "give a lower and a higher role",
                "EditMember",
                edit_member(c, c.plain, role_ids=[c.helpers.id, c.mods.id]),
                c.mod,
                HIERARCHY,
            ),
        ],
    )


def test_members_cannot_edit_their_own_roles(world, c):
    refused(
        world,
        c,
        [
            (
                "mod adds to itself",
                "EditMember",
                edit_member(c, c.mod, role_ids=[c.mods.id, c.lows.id]),
                c.mod,
                HIERARCHY,
            ),
            ("mod drops its role", "EditMember", edit_member(c, c.mod, role_ids=[]), c.mod, HIERARCHY),
            ("mod re-sets its role", "EditMember", edit_member(c, c.mod, role_ids=[c.mods.id]), c.mod, HIERARCHY),
            (
                "admin adds to itself",
                "EditMember",
                edit_member(c, c.admin, role_ids=[c.admins.id, c.lows.id]),
                c.admin,
                HIERARCHY,
            ),
            (
                "plain member gives itself a role",
                "EditMember",
                edit_member(c, c.plain, role_ids=[c.lows.id]),
                c.plain,
                MISSING,
                "MODIFY_ROLES",
            ),
        ],
    )
    # Their own nicknames they may always set.
    for account in (c.mod, c.plain, c.admin):
        assert (
            world.members.EditMember(edit_member(c, account, nickname="me"), metadata=account.metadata).nickname == "me"
        )


def test_nobody_acts_on_the_owner(world, c):
    cases = []
    for actor in (c.admin, c.mod, c.owner):
        name = actor.name
        cases += [
            (f"{name} kicks the owner", "RemoveMembers", remove(c, c.owner), actor, HIERARCHY),
            (f"{name} bans the owner", "RemoveMembers", remove(c, c.owner, ban=True), actor, HIERARCHY),
            (f"{name} bans the owner and low", "RemoveMembers", remove(c, c.low, c.owner, ban=True), actor, HIERARCHY),
        ]
    for actor in (c.admin, c.mod):
        name = actor.name
        cases += [
            (f"{name} renames the owner", "EditMember", edit_member(c, c.owner, nickname="x"), actor, HIERARCHY),
            (
                f"{name} gives the owner a role",
                "EditMember",
                edit_member(c, c.owner, role_ids=[c.lows.id]),
                actor,
                HIERARCHY,
            ),
        ]
    refused(world, c, cases)


def test_administrators_are_bound_by_the_hierarchy(world, c):
    other_admin = world.member(c.id, "other admin")
    world.assign(c.owner, c.id, other_admin, c.admins.id)
    top = world.role(c.owner, c.id, "top", permissions=P.PIN_MESSAGES, priority=20)
    refused(
        world,
        c,
        [
            ("create at own rank", "CreateRole", create_role(c, 10), c.admin, HIERARCHY),
            ("edit own role", "EditRole", edit_role(c, c.admins, name="Admins!"), c.admin, HIERARCHY),
            ("raise a role to own rank", "EditRole", edit_role(c, c.mods, priority=10), c.admin, HIERARCHY),
            ("edit a higher role", "EditRole", edit_role(c, top, permissions=0), c.admin, HIERARCHY),
            (
                "delete a higher role",
                "DeleteRole",
                roles_pb2.DeleteRole(community_id=c.id, role_id=top.id),
                c.admin,
                HIERARCHY,
            ),
            ("give own role", "EditMember", edit_member(c, c.plain, role_ids=[c.admins.id]), c.admin, HIERARCHY),
            ("give a higher role", "EditMember", edit_member(c, c.plain, role_ids=[top.id]), c.admin, HIERARCHY),
            ("rename a peer admin", "EditMember", edit_member(c, other_admin, nickname="x"), c.admin, HIERARCHY),
            ("kick a peer admin", "RemoveMembers", remove(c, other_admin), c.admin, HIERARCHY),
        ],
    )
    # Below its rank, ADMINISTRATOR means it holds (and may grant) every bit.
    granted = world.roles.EditRole(
        edit_role(c, c.mods, permissions=P.ADMINISTRATOR, priority=9), metadata=c.admin.metadata
    )
    assert (granted.permissions, granted.priority) == (P.ADMINISTRATOR, 9)
    world.roles.CreateRole(create_role(c, 9, ALL), metadata=c.admin.metadata)
    world.assign(c.admin, c.id, c.plain, c.mods.id)
    assert world.permissions(c.plain, c.id) == ALL
    world.members.RemoveMembers(remove(c, c.mod, c.peer, ban=True), metadata=c.admin.metadata)
    assert world.get_member(c.owner, c.id, c.mod.id) is None


def test_rank_zero_members_manage_no_roles(world, c):
    """MODIFY_ROLES through the default permissions, but no role: rank 0, below every role (even priority 0)."""
    world.set_default(c.owner, c.id, DEFAULT | P.MODIFY_ROLES | P.REMOVE_MEMBERS)
    zero = world.role(c.owner, c.id, "zero", priority=0)
    refused(
        world,
        c,
        [
            ("create at 0", "CreateRole", create_role(c, 0), c.plain, HIERARCHY),
            ("edit a priority 0 role", "EditRole", edit_role(c, zero, name="z"), c.plain, HIERARCHY),
            ("assign a priority 0 role", "EditMember", edit_member(c, c.plain, role_ids=[zero.id]), c.plain, HIERARCHY),
            ("kick another rank 0 member", "RemoveMembers", remove(c, world.member(c.id, "x")), c.plain, HIERARCHY),
            ("kick a higher member", "RemoveMembers", remove(c, c.low), c.plain, HIERARCHY),
        ],
    )


# ------------------------------------------------------------------------------------------- allowed counterparts


def test_moderator_acts_below_its_rank(world, c):
    member = world.members.EditMember(
        edit_member(c, c.plain, role_ids=[c.helpers.id, c.lows.id], nickname="helper"), metadata=c.mod.metadata
    )
    assert (set(member.role_ids), member.nickname) == ({c.helpers.id, c.lows.id}, "helper")
    assert world.permissions(c.plain, c.id) == DEFAULT | P.PIN_MESSAGES
    # A member holding the lower `rich` role can still be kicked (hierarchy is about rank, not bits).
    world.assign(c.owner, c.id, c.low, c.lows.id, c.rich.id)
    world.members.RemoveMembers(remove(c, c.low), metadata=c.mod.metadata)
    assert world.get_member(c.owner, c.id, c.low.id) is None
    world.members.RemoveMembers(remove(c, c.plain, ban=True), metadata=c.mod.metadata)
    world.members.UnbanMembers(
        members_pb2.UnbanMembers(community_id=c.id, user_ids=[c.plain.id]), metadata=c.mod.metadata
    )
    edited = world.roles.EditRole(
        edit_role(c, c.helpers, permissions=P.PIN_MESSAGES | P.MODIFY_CHANNEL), metadata=c.mod.metadata
    )
    assert edited.permissions == P.PIN_MESSAGES | P.MODIFY_CHANNEL
    world.roles.DeleteRole(roles_pb2.DeleteRole(community_id=c.id, role_id=c.helpers.id), metadata=c.mod.metadata)


def test_the_owner_does_anything(world, c):
    raised = world.roles.EditRole(edit_role(c, c.mods, priority=1_000_000, permissions=ALL), metadata=c.owner.metadata)
    assert (raised.priority, raised.permissions) == (1_000_000, ALL)
    world.roles.CreateRole(create_role(c, 1_000_000, ALL), metadata=c.owner.metadata)
    world.set_default(c.owner, c.id, ALL)
    world.override(c.owner, c.general, c.id, pos=P.MODIFY_ROLES | P.MODIFY_COMMUNITY)
    world.assign(c.owner, c.id, c.plain, c.admins.id, c.mods.id)
    world.assign(c.owner, c.id, c.owner, c.lows.id)  # even its own roles
    assert (
        world.members.EditMember(edit_member(c, c.owner, nickname="boss"), metadata=c.owner.metadata).nickname == "boss"
    )
    world.members.RemoveMembers(remove(c, c.admin), metadata=c.owner.metadata)
    world.members.RemoveMembers(remove(c, c.mod, c.peer, ban=True), metadata=c.owner.metadata)
    world.roles.DeleteRole(roles_pb2.DeleteRole(community_id=c.id, role_id=c.admins.id), metadata=c.owner.metadata)
    # ...and no member, however powerful, can make itself the owner's equal.
    assert world.explain(c.owner, c.id, user_id=c.plain.id).rank == 1_000_000
    assert world.explain(c.owner, c.id).rank > 1_000_000
    error_cases = [("kick owner", "RemoveMembers", remove(c, c.owner), c.plain, HIERARCHY)]
    refused(world, c, error_cases)
    listed = world.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=c.owner.metadata)
    assert [x.owner for x in listed.communities if x.id == c.id] == [True]
