"""The permission engine: flags, community- and channel-level computation, and the role hierarchy (API.md).

Pure functions over plain data; callers load what they need and pass it in.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass


class Permission(enum.IntFlag):
    ADMINISTRATOR = 1 << 0
    VIEW_CHANNEL = 1 << 1
    SEND_MESSAGES = 1 << 2
    CONNECT_VOICE = 1 << 3
    MODIFY_CHANNEL = 1 << 4
    SEND_MEDIA = 1 << 5
    DELETE_MESSAGES = 1 << 6
    PIN_MESSAGES = 1 << 7
    SPEAK_VOICE = 1 << 8
    MODIFY_COMMUNITY = 1 << 9
    MODIFY_ROLES = 1 << 10
    REMOVE_MEMBERS = 1 << 11
    ADD_REACTIONS = 1 << 12
    # 1 << 13 is reserved for compatibility with the Communities API.
    CREATE_INVITE = 1 << 14
    MENTION_EVERYONE = 1 << 15


ALL_PERMISSIONS = 0
for _flag in Permission:
    ALL_PERMISSIONS |= _flag.value

DEFAULT_PERMISSIONS = (
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.CONNECT_VOICE
    | Permission.SPEAK_VOICE
    | Permission.SEND_MEDIA
    | Permission.ADD_REACTIONS
    | Permission.CREATE_INVITE
).value


# Plain ints of the flags the computation tests (IntFlag arithmetic allocates enum members: far slower).
_ADMINISTRATOR = Permission.ADMINISTRATOR.value
_VIEW_CHANNEL = Permission.VIEW_CHANNEL.value


def unknown_bits(mask: int) -> int:
    """Bits of `mask` that are no permission flag (callers reject them)."""
    return mask & ~ALL_PERMISSIONS


def flag_names(mask: int) -> list[str]:
    return [flag.name for flag in Permission if mask & flag.value and flag.name]


@dataclass(frozen=True)
class Role:
    id: int
    permissions: int
    priority: int


@dataclass(frozen=True)
class Override:
    allow: int  # `pos` in the proto
    deny: int  # `neg` in the proto


@dataclass(slots=True)  # built for every community on hot paths: plain slots are cheapest
class MemberContext:
    """What the engine needs to know about one member of one community."""

    community_id: int
    is_owner: bool
    default_permissions: int
    roles: tuple[Role, ...]

    @property
    def role_ids(self) -> frozenset[int]:
        return frozenset(role.id for role in self.roles)


def community_permissions(member: MemberContext) -> int:
    """Step 1: owner has all; else default OR every role; ADMINISTRATOR means all."""
    if member.is_owner:
        return ALL_PERMISSIONS
    permissions = member.default_permissions
    for role in member.roles:
        permissions |= role.permissions
    if permissions & _ADMINISTRATOR:
        return ALL_PERMISSIONS
    return permissions & ALL_PERMISSIONS


def channel_permissions(member: MemberContext, overrides: Mapping[int, Override], base: int | None = None) -> int:
    """Step 2: apply the channel's overrides (keyed by role id; the community id is @everyone). `base` is
    community_permissions(member), when the caller already has it (one member, many channels)."""
    if base is None:
        base = community_permissions(member)
    if base & _ADMINISTRATOR:
        return ALL_PERMISSIONS
    permissions = base
    everyone = overrides.get(member.community_id)
    if everyone is not None:
        permissions &= ~everyone.deny
        permissions |= everyone.allow
    allow = deny = 0
    for role in member.roles:
        override = overrides.get(role.id)
        if override is not None:
            allow |= override.allow
            deny |= override.deny
    permissions &= ~deny
    permissions |= allow
    if not permissions & _VIEW_CHANNEL:
        return 0
    return permissions & ALL_PERMISSIONS


def rank(member: MemberContext) -> float:
    """Step 3: +infinity for the owner, else the highest priority among the member's roles (0 with none)."""
    if member.is_owner:
        return math.inf
    return max((role.priority for role in member.roles), default=0)


def can_manage_role(actor: MemberContext, role_priority: int) -> bool:
    """A member may create, edit, delete, assign or unassign only roles strictly below its rank."""
    return role_priority < rank(actor)


def can_grant_bits(actor: MemberContext, bits: int) -> bool:
    """A member may give a role or an invite only permission bits it holds itself."""
    held = community_permissions(actor)
    return bits & ~held == 0


def can_act_on_member(actor: MemberContext, target: MemberContext) -> bool:
    """A member may edit, remove or ban only members of strictly lower rank; nobody acts on the owner."""
    if target.is_owner:
        return False
    return rank(target) < rank(actor)


class Source(enum.IntEnum):
    """Where a step of an explanation comes from; numbers match the proto's PermissionSource."""

    OWNER = 1
    DEFAULT = 2
    ROLE = 3
    ADMINISTRATOR = 4
    EVERYONE_OVERRIDE = 5
    ROLE_OVERRIDE = 6
    ROLE_OVERRIDES = 7
    NO_VIEW_CHANNEL = 8


@dataclass(frozen=True)
class Step:
    source: Source
    allow: int
    deny: int
    result: int
    role_id: int = 0


def explain(member: MemberContext, overrides: Mapping[int, Override] | None = None) -> list[Step]:
    """The computation of community_permissions (overrides None) or channel_permissions, step by step.
    The last step's result is the effective value."""
    if member.is_owner:
        return [Step(Source.OWNER, ALL_PERMISSIONS, 0, ALL_PERMISSIONS)]
    steps = [Step(Source.DEFAULT, member.default_permissions, 0, member.default_permissions & ALL_PERMISSIONS)]
    permissions = member.default_permissions
    for role in sorted(member.roles, key=lambda r: (-r.priority, r.id)):
        permissions |= role.permissions
        steps.append(Step(Source.ROLE, role.permissions, 0, permissions & ALL_PERMISSIONS, role.id))
    if permissions & Permission.ADMINISTRATOR:
        steps.append(Step(Source.ADMINISTRATOR, ALL_PERMISSIONS, 0, ALL_PERMISSIONS))
        return steps
    permissions &= ALL_PERMISSIONS
    if overrides is None:
        return steps
    everyone = overrides.get(member.community_id)
    if everyone is not None:
        permissions = (permissions & ~everyone.deny) | everyone.allow
        steps.append(
            Step(
                Source.EVERYONE_OVERRIDE,
                everyone.allow,
                everyone.deny,
                permissions & ALL_PERMISSIONS,
                member.community_id,
            )
        )
    allow = deny = 0
    any_role_override = False
    for role in sorted(member.roles, key=lambda r: (-r.priority, r.id)):
        override = overrides.get(role.id)
        if override is not None:
            any_role_override = True
            allow |= override.allow
            deny |= override.deny
            steps.append(
                Step(Source.ROLE_OVERRIDE, override.allow, override.deny, permissions & ALL_PERMISSIONS, role.id)
            )
    if any_role_override:
        permissions = (permissions & ~deny) | allow
        steps.append(Step(Source.ROLE_OVERRIDES, allow, deny, permissions & ALL_PERMISSIONS))
    if not permissions & Permission.VIEW_CHANNEL:
        steps.append(Step(Source.NO_VIEW_CHANNEL, 0, permissions & ALL_PERMISSIONS, 0))
    return steps
