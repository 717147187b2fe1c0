"""The permission engine against an independent reference model written from API.md's algorithm text.

The reference works on sets of flag names, never on the engine's masks or helpers: a mask is turned into the set of
API.md flags whose bit it has set, and back only to compare.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hypothesis import given, note, settings
from hypothesis import strategies as st

from communities.domain import permissions as engine

# API.md's table, written out again (not taken from the engine).
FLAG_BITS = {
    "ADMINISTRATOR": 0,
    "VIEW_CHANNEL": 1,
    "SEND_MESSAGES": 2,
    "CONNECT_VOICE": 3,
    "MODIFY_CHANNEL": 4,
    "SEND_MEDIA": 5,
    "DELETE_MESSAGES": 6,
    "PIN_MESSAGES": 7,
    "SPEAK_VOICE": 8,
    "MODIFY_COMMUNITY": 9,
    "MODIFY_ROLES": 10,
    "REMOVE_MEMBERS": 11,
    "ADD_REACTIONS": 12,
    "CREATE_INVITE": 14,
    "MENTION_EVERYONE": 15,
}
EVERY_FLAG = frozenset(FLAG_BITS)


def names(mask: int) -> set[str]:
    return {name for name, bit in FLAG_BITS.items() if (mask >> bit) & 1}


def mask_of(flags: set[str]) -> int:
    total = 0
    for name in flags:
        total += 2 ** FLAG_BITS[name]
    return total


# --- the model ------------------------------------------------------------------------------------------------


@dataclass
class RefRole:
    id: int
    permissions: int
    priority: int


@dataclass
class RefMember:
    owner: bool
    roles: list[RefRole]  # the roles the member holds


@dataclass
class RefCommunity:
    id: int
    default_permissions: int
    roles: list[RefRole]
    overrides: dict[int, tuple[int, int]]  # role id (community id = everyone) -> (allow, deny)


def ref_community_permissions(community: RefCommunity, member: RefMember) -> set[str]:
    # 1. The owner has all flags. Otherwise default OR every held role; ADMINISTRATOR means all flags.
    if member.owner:
        return set(EVERY_FLAG)
    held = names(community.default_permissions)
    for r in member.roles:
        held = held.union(names(r.permissions))
    if "ADMINISTRATOR" in held:
        return set(EVERY_FLAG)
    return held


def ref_channel_permissions(community: RefCommunity, member: RefMember) -> set[str]:
    # 2. Start from (1); ADMINISTRATOR or owner: all flags.
    result = ref_community_permissions(community, member)
    if member.owner or "ADMINISTRATOR" in result:
        return set(EVERY_FLAG)
    # The everyone override: clear its denies, then set its allows.
    if community.id in community.overrides:
        allow, deny = community.overrides[community.id]
        result = result - names(deny)
        result = result | names(allow)
    # The overrides of all the member's roles, OR'ed together: clear the denies, then set the allows.
    all_denies: set[str] = set()
    all_allows: set[str] = set()
    for r in member.roles:
        if r.id in community.overrides:
            allow, deny = community.overrides[r.id]
            all_denies |= names(deny)
            all_allows |= names(allow)
    result = (result - all_denies) | all_allows
    # Without VIEW_CHANNEL the result is 0.
    if "VIEW_CHANNEL" not in result:
        return set()
    return result


def ref_rank(member: RefMember) -> float:
    # 3. +infinity for the owner, else the highest priority among its roles, 0 with none.
    if member.owner:
        return math.inf
    best = None
    for r in member.roles:
        if best is None or r.priority > best:
            best = r.priority
    return 0 if best is None else best


def ref_can_manage_role(actor: RefMember, role_priority: int) -> bool:
    return role_priority < ref_rank(actor)


def ref_can_grant_bits(community: RefCommunity, actor: RefMember, bits: int) -> bool:
    # Only permission bits it holds itself: every set bit must be a flag the actor holds at community level.
    held = ref_community_permissions(community, actor)
    held_bits = {FLAG_BITS[name] for name in held}
    position = 0
    while bits >> position:
        if (bits >> position) & 1 and position not in held_bits:
            return False
        position += 1
    return True


def ref_can_act_on_member(actor: RefMember, target: RefMember) -> bool:
    # Only members of strictly lower rank; nobody acts on the owner.
    if target.owner:
        return False
    return ref_rank(target) < ref_rank(actor)


# --- generation ----------------------------------------------------------------------------------------------------


class ByteReader:
    """Turns the bytes Hypothesis draws into a scenario. Zero bytes (and running out of bytes) read as zeros, so
    Hypothesis shrinks towards small communities: no roles, no overrides, empty masks, nobody the owner."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> int:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return int.from_bytes(chunk, "little")

    def mask(self) -> int:
        """A 15-bit mask (all flags plus the reserved bit 13); ADMINISTRATOR only one time in ten."""
        value = self.take(2) & 0x7FFF
        if self.take(1) % 10 != 9:
            value &= ~1
        return value

    def override(self) -> tuple[int, int] | None:
        kind = self.take(1) % 6
        allow, other = self.mask(), self.mask()
        if kind == 0:
            return None
        if kind == 1:
            return allow, other  # independent allow and deny (overlapping by chance)
        if kind == 2:
            return allow, allow  # the same bits both allowed and denied
        if kind == 3:
            return allow, allow | other  # deny a superset of allow
        if kind == 4:
            return 0, other  # deny only
        return allow, 0  # allow only

    def shuffled(self, items: list) -> list:
        items = list(items)
        random.Random(self.take(4)).shuffle(items)
        return items


def build_scenario(data: bytes):
    read = ByteReader(data)
    community_id = 1 + read.take(3)
    roles: list[RefRole] = []
    overrides: dict[int, tuple[int, int]] = {}
    for i in range(read.take(1) % 9):
        r = RefRole(id=community_id + 1 + i, permissions=read.mask(), priority=read.take(1) % 7)
        roles.append(r)
        override = read.override()
        if override is not None:
            overrides[r.id] = override
    everyone = read.override()
    if everyone is not None:
        overrides[community_id] = everyone
    default = engine.DEFAULT_PERMISSIONS if read.take(1) % 4 == 3 else read.mask()
    community = RefCommunity(community_id, default, roles, overrides)

    def a_member() -> RefMember:
        subset = read.take(1)
        owner = read.take(1) % 8 == 7
        held = [r for i, r in enumerate(roles) if (subset >> i) & 1]
        return RefMember(owner=owner, roles=read.shuffled(held))

    actor = a_member()
    target = a_member()
    role_priority = read.take(1) % 8
    bits = read.take(2)  # 16 bits: flags, the reserved bit 13 and the unknown bit 15
    override_order = read.shuffled(list(overrides))
    return community, actor, target, role_priority, bits, override_order


def to_engine(community: RefCommunity, member: RefMember, reverse: bool = False) -> engine.MemberContext:
    roles = tuple(engine.Role(id=r.id, permissions=r.permissions, priority=r.priority) for r in member.roles)
    return engine.MemberContext(
        community_id=community.id,
        is_owner=member.owner,
        default_permissions=community.default_permissions,
        roles=roles[::-1] if reverse else roles,
    )


def check(community, actor, target, role_priority, bits, override_order) -> None:
    overrides = {
        key: engine.Override(allow=community.overrides[key][0], deny=community.overrides[key][1])
        for key in override_order
    }
    actor_ctx = to_engine(community, actor)
    target_ctx = to_engine(community, target)

    expected_channel = mask_of(ref_channel_permissions(community, actor))
    assert engine.community_permissions(actor_ctx) == mask_of(ref_community_permissions(community, actor))
    assert engine.community_permissions(target_ctx) == mask_of(ref_community_permissions(community, target))
    assert engine.channel_permissions(actor_ctx, overrides) == expected_channel
    assert engine.channel_permissions(to_engine(community, actor, reverse=True), overrides) == expected_channel
    assert engine.channel_permissions(target_ctx, overrides) == mask_of(ref_channel_permissions(community, target))
    assert engine.rank(actor_ctx) == ref_rank(actor)
    assert engine.rank(target_ctx) == ref_rank(target)
    assert engine.can_manage_role(actor_ctx, role_priority) == ref_can_manage_role(actor, role_priority)
    for r in community.roles:
        assert engine.can_manage_role(actor_ctx, r.priority) == ref_can_manage_role(actor, r.priority)
    assert engine.can_grant_bits(actor_ctx, bits) == ref_can_grant_bits(community, actor, bits)
    for r in community.roles:
        assert engine.can_grant_bits(actor_ctx, r.permissions) == ref_can_grant_bits(community, actor, r.permissions)
    assert engine.can_act_on_member(actor_ctx, target_ctx) == ref_can_act_on_member(actor, target)
    assert engine.can_act_on_member(target_ctx, actor_ctx) == ref_can_act_on_member(target, actor)


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=128, max_size=128))
def test_engine_matches_reference_model(data):
    scenario = build_scenario(data)
    try:
        check(*scenario)
    except AssertionError:
        community, actor, target, role_priority, bits, override_order = scenario
        note(f"{community=}\n{actor=}\n{target=}\n{role_priority=} {bits=:#x} {override_order=}")
        raise
