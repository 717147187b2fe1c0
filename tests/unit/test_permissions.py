"""The permission engine, example by example, against API.md "Permissions"."""

from __future__ import annotations

import math

import pytest

from communities.domain.permissions import (
    ALL_PERMISSIONS,
    DEFAULT_PERMISSIONS,
    MemberContext,
    Override,
    Permission,
    Role,
    can_act_on_member,
    can_grant_bits,
    can_manage_role,
    channel_permissions,
    community_permissions,
    rank,
)
from communities.v1 import permissions_pb2

P = Permission
COMMUNITY = 1_000_000  # the community id, also the role id of the everyone override
ALL = (1 << 16) - 1 - (1 << 13)  # every flag of API.md's table: bits 0..15 without the reserved bit 13

API_TABLE = {
    "ADMINISTRATOR": 1 << 0,
    "VIEW_CHANNEL": 1 << 1,
    "SEND_MESSAGES": 1 << 2,
    "CONNECT_VOICE": 1 << 3,
    "MODIFY_CHANNEL": 1 << 4,
    "SEND_MEDIA": 1 << 5,
    "DELETE_MESSAGES": 1 << 6,
    "PIN_MESSAGES": 1 << 7,
    "SPEAK_VOICE": 1 << 8,
    "MODIFY_COMMUNITY": 1 << 9,
    "MODIFY_ROLES": 1 << 10,
    "REMOVE_MEMBERS": 1 << 11,
    "ADD_REACTIONS": 1 << 12,
    "CREATE_INVITE": 1 << 14,
    "MENTION_EVERYONE": 1 << 15,
}
API_DEFAULTS = ["VIEW_CHANNEL", "SEND_MESSAGES", "CONNECT_VOICE", "SPEAK_VOICE", "SEND_MEDIA", "ADD_REACTIONS"]
API_DEFAULTS.append("CREATE_INVITE")


def member(*roles: Role, default: int = 0, owner: bool = False) -> MemberContext:
    return MemberContext(community_id=COMMUNITY, is_owner=owner, default_permissions=default, roles=tuple(roles))


def role(role_id: int, permissions: int = 0, priority: int = 0) -> Role:
    return Role(id=role_id, permissions=int(permissions), priority=priority)


def ov(allow: int = 0, deny: int = 0) -> Override:
    return Override(allow=int(allow), deny=int(deny))


# --- flag values ----------------------------------------------------------------------------------------------------


def test_flag_values_equal_api_table():
    assert {flag.name: flag.value for flag in Permission} == API_TABLE


def test_bit_13_is_reserved_and_unused():
    assert all(flag.value != 1 << 13 for flag in Permission)
    assert not ALL_PERMISSIONS & (1 << 13)


def test_all_permissions_is_every_flag():
    assert ALL_PERMISSIONS == ALL == sum(API_TABLE.values())


def test_default_permissions_equal_api_list():
    assert DEFAULT_PERMISSIONS == sum(API_TABLE[name] for name in API_DEFAULTS)
    assert sorted(flag.name for flag in Permission if DEFAULT_PERMISSIONS & flag) == sorted(API_DEFAULTS)


def test_python_flags_equal_proto_enum():
    proto = {
        name.removeprefix("COMMUNITY_PERMISSION_"): value
        for name, value in permissions_pb2.CommunityPermission.items()
        if name != "COMMUNITY_PERMISSION_UNSPECIFIED"
    }
    assert proto == {flag.name: flag.value for flag in Permission}
    assert permissions_pb2.CommunityPermission.Value("COMMUNITY_PERMISSION_UNSPECIFIED") == 0


# --- step 1: community level -------------------------------------------------------------------------------------


def test_owner_has_all_flags_even_with_nothing():
    assert community_permissions(member(owner=True)) == ALL


def test_default_only():
    assert community_permissions(member(default=DEFAULT_PERMISSIONS)) == DEFAULT_PERMISSIONS


def test_default_or_roles():
    m = member(role(1, P.SEND_MESSAGES), role(2, P.PIN_MESSAGES | P.MODIFY_ROLES), default=P.VIEW_CHANNEL)
    assert community_permissions(m) == P.VIEW_CHANNEL | P.SEND_MESSAGES | P.PIN_MESSAGES | P.MODIFY_ROLES


def test_no_default_no_roles_is_zero():
    assert community_permissions(member()) == 0


def test_administrator_from_a_role_means_all():
    assert community_permissions(member(role(1, P.ADMINISTRATOR))) == ALL


def test_administrator_from_default_means_all():
    assert community_permissions(member(default=P.ADMINISTRATOR)) == ALL


# --- step 2: channel level ---------------------------------------------------------------------------------------


BASE = P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ADD_REACTIONS


def test_no_overrides_is_community_level():
    m = member(role(1, P.PIN_MESSAGES), default=BASE)
    assert channel_permissions(m, {}) == BASE | P.PIN_MESSAGES


def test_everyone_override_deny_then_allow():
    m = member(default=BASE)
    # The same bit in deny and allow: allow wins, because allow is applied after deny.
    overrides = {COMMUNITY: ov(allow=P.SEND_MESSAGES | P.PIN_MESSAGES, deny=P.SEND_MESSAGES | P.ADD_REACTIONS)}
    assert channel_permissions(m, overrides) == P.VIEW_CHANNEL | P.SEND_MESSAGES | P.PIN_MESSAGES


def test_everyone_override_applies_to_members_without_roles():
    m = member(default=BASE)
    assert channel_permissions(m, {COMMUNITY: ov(deny=P.SEND_MESSAGES)}) == P.VIEW_CHANNEL | P.ADD_REACTIONS


def test_role_overrides_are_ored_allow_beats_deny_across_roles():
    # Role 1 denies SEND_MESSAGES, role 2 allows it: denies of all roles are cleared first, then allows set.
    m = member(role(1), role(2), default=BASE)
    overrides = {1: ov(deny=P.SEND_MESSAGES | P.ADD_REACTIONS), 2: ov(allow=P.SEND_MESSAGES)}
    assert channel_permissions(m, overrides) == P.VIEW_CHANNEL | P.SEND_MESSAGES


def test_role_override_allow_beats_everyone_deny():
    m = member(role(1), default=BASE)
    overrides = {COMMUNITY: ov(deny=P.SEND_MESSAGES), 1: ov(allow=P.SEND_MESSAGES)}
    assert channel_permissions(m, overrides) == BASE


def test_role_override_deny_beats_everyone_allow():
    m = member(role(1), default=BASE)
    overrides = {COMMUNITY: ov(allow=P.PIN_MESSAGES), 1: ov(deny=P.PIN_MESSAGES | P.SEND_MESSAGES)}
    assert channel_permissions(m, overrides) == P.VIEW_CHANNEL | P.ADD_REACTIONS


def test_role_override_deny_and_allow_same_bit_allow_wins():
    m = member(role(1), default=BASE)
    assert channel_permissions(m, {1: ov(allow=P.PIN_MESSAGES, deny=P.PIN_MESSAGES | P.SEND_MESSAGES)}) == (
        P.VIEW_CHANNEL | P.ADD_REACTIONS | P.PIN_MESSAGES
    )


def test_overrides_of_roles_the_member_lacks_are_ignored():
    m = member(role(1), default=BASE)
    assert channel_permissions(m, {2: ov(deny=ALL), 3: ov(allow=P.MODIFY_CHANNEL)}) == BASE


def test_order_of_roles_and_overrides_does_not_matter():
    r1, r2, r3 = role(1, P.PIN_MESSAGES, 3), role(2, P.SEND_MEDIA, 9), role(3, 0, 1)
    overrides_a = {
        COMMUNITY: ov(deny=P.SEND_MESSAGES),
        1: ov(deny=P.PIN_MESSAGES | P.SEND_MEDIA),
        2: ov(allow=P.SEND_MESSAGES),
        3: ov(allow=P.SEND_MEDIA, deny=P.ADD_REACTIONS),
    }
    overrides_b = dict(reversed(list(overrides_a.items())))
    expected = P.VIEW_CHANNEL | P.SEND_MESSAGES | P.SEND_MEDIA
    for roles in [(r1, r2, r3), (r3, r2, r1), (r2, r3, r1)]:
        for overrides in (overrides_a, overrides_b):
            assert channel_permissions(member(*roles, default=BASE), overrides) == expected


def test_without_view_channel_the_result_is_zero():
    m = member(role(1), default=BASE | P.MODIFY_CHANNEL)
    assert channel_permissions(m, {COMMUNITY: ov(deny=P.VIEW_CHANNEL)}) == 0
    assert channel_permissions(m, {1: ov(deny=P.VIEW_CHANNEL)}) == 0
    assert channel_permissions(member(default=P.SEND_MESSAGES), {}) == 0


def test_view_channel_granted_by_an_override():
    m = member(role(1), default=P.SEND_MESSAGES)
    assert channel_permissions(m, {1: ov(allow=P.VIEW_CHANNEL)}) == P.VIEW_CHANNEL | P.SEND_MESSAGES


def test_administrator_bypasses_overrides():
    m = member(role(1, P.ADMINISTRATOR))
    overrides = {COMMUNITY: ov(deny=ALL), 1: ov(deny=ALL)}
    assert channel_permissions(m, overrides) == ALL


def test_owner_bypasses_overrides():
    m = member(role(1), owner=True)
    assert channel_permissions(m, {COMMUNITY: ov(deny=ALL), 1: ov(deny=ALL)}) == ALL


def test_administrator_allowed_by_override_does_not_bypass():
    """Only community-level ADMINISTRATOR bypasses; an override cannot hand it out as a bypass."""
    m = member(role(1), default=P.SEND_MESSAGES)
    assert channel_permissions(m, {1: ov(allow=P.ADMINISTRATOR)}) == 0
    got = channel_permissions(m, {1: ov(allow=P.ADMINISTRATOR | P.VIEW_CHANNEL)})
    assert got == P.ADMINISTRATOR | P.VIEW_CHANNEL | P.SEND_MESSAGES


# --- step 3: hierarchy ------------------------------------------------------------------------------------------


def test_rank():
    assert rank(member(owner=True)) == math.inf
    assert rank(member(role(1, priority=5), owner=True)) == math.inf
    assert rank(member()) == 0
    assert rank(member(role(1, priority=3), role(2, priority=7), role(3, priority=5))) == 7


def test_rank_ignores_permissions():
    assert rank(member(role(1, P.ADMINISTRATOR, priority=2))) == 2


@pytest.mark.parametrize(("priority", "allowed"), [(0, True), (4, True), (5, False), (6, False)])
def test_can_manage_role_strictly_below_rank(priority, allowed):
    actor = member(role(1, P.MODIFY_ROLES, priority=5), role(2, priority=1))
    assert can_manage_role(actor, priority) is allowed


def test_member_without_roles_manages_no_role():
    assert not can_manage_role(member(default=ALL), 0)


def test_owner_manages_any_role():
    assert can_manage_role(member(owner=True), 10**9)


def test_can_grant_only_held_bits():
    actor = member(role(1, P.MODIFY_ROLES | P.PIN_MESSAGES), default=P.VIEW_CHANNEL)
    assert can_grant_bits(actor, 0)
    assert can_grant_bits(actor, P.PIN_MESSAGES | P.VIEW_CHANNEL)
    assert not can_grant_bits(actor, P.PIN_MESSAGES | P.SEND_MESSAGES)
    assert not can_grant_bits(actor, P.ADMINISTRATOR)


def test_administrator_holds_and_grants_all_bits():
    actor = member(role(1, P.ADMINISTRATOR))
    assert can_grant_bits(actor, ALL)
    assert can_grant_bits(member(owner=True), ALL)


def test_can_grant_bits_rejects_bits_that_are_no_flag():
    assert not can_grant_bits(member(default=ALL), 1 << 13)
    assert not can_grant_bits(member(default=ALL), 1 << 16)


def test_can_act_on_member_strictly_lower_rank():
    five = member(role(1, priority=5))
    also_five = member(role(2, priority=5), role(3, priority=2))
    four = member(role(4, priority=4))
    nobody = member()
    assert can_act_on_member(five, four)
    assert can_act_on_member(five, nobody)
    assert not can_act_on_member(five, also_five)
    assert not can_act_on_member(four, five)
    assert not can_act_on_member(nobody, member())


def test_nobody_acts_on_the_owner():
    owner = member(owner=True)
    assert not can_act_on_member(member(role(1, P.ADMINISTRATOR, priority=10**9)), owner)
    assert not can_act_on_member(owner, owner)


def test_owner_acts_on_everyone_else():
    assert can_act_on_member(member(owner=True), member(role(1, P.ADMINISTRATOR, priority=10**9)))


def test_administrator_does_not_raise_rank():
    admin = member(role(1, P.ADMINISTRATOR, priority=1))
    assert not can_act_on_member(admin, member(role(2, priority=1)))
    assert not can_manage_role(admin, 1)
