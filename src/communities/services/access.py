"""Who may do what: loading the caller's standing in a community or channel and checking it with the engine.

Order matters: a caller first has to be able to see the target (else NOT_FOUND, exactly like an unknown id),
and only then is told what it lacks (PERMISSION_DENIED)."""

from __future__ import annotations

from dataclasses import dataclass

from communities.domain.errors import NotFound, PermissionDenied
from communities.domain.permissions import (
    MemberContext,
    Override,
    Permission,
    channel_permissions,
    community_permissions,
    flag_names,
)
from communities.services.context import Principal
from communities.storage import channels as channels_repo
from communities.storage import repository as repo
from communities.storage.channels import ChannelRecord
from communities.storage.database import Database, UnitOfWork


async def require_membership(uow: UnitOfWork, community_id: int, principal: Principal) -> repo.Membership:
    """The caller's membership; a community the caller is not in is indistinguishable from an unknown one."""
    membership = await repo.membership(uow, community_id, principal.id) if community_id else None
    if membership is None:
        raise NotFound.of("COMMUNITY")
    return membership


async def read_membership(db: Database, community_id: int, principal: Principal) -> repo.Membership:
    """require_membership() outside a unit of work: the one statement of a read that may need nothing more."""
    membership = await repo.read_membership(db, community_id, principal.id) if community_id else None
    if membership is None:
        raise NotFound.of("COMMUNITY")
    return membership


def require_permission(membership: repo.Membership, flag: Permission) -> None:
    require_flag(community_permissions(membership.member), flag)


def require_flag(permissions: int, flag: Permission) -> None:
    if not permissions & flag:
        raise PermissionDenied.missing(flag.name or str(flag.value))


def require_held(held: int, bits: int, what: str) -> None:
    """`bits` may be given (to a role, an override, a member, an invite) only by someone holding all of them."""
    missing = bits & ~held
    if missing:
        names = ", ".join(flag_names(missing))
        raise PermissionDenied(
            f"{what}: you can only grant permissions you have; missing {names}",
            reason="MISSING_PERMISSIONS",
            metadata={"permission": names},
        )


@dataclass(frozen=True)
class ChannelAccess:
    channel: ChannelRecord
    membership: repo.Membership
    overrides: dict[int, Override]
    permissions: int  # the caller's effective permissions in the channel

    @property
    def member(self) -> MemberContext:
        return self.membership.member


async def require_channel(
    uow: UnitOfWork, channel_id: int, principal: Principal, membership: repo.Membership | None = None
) -> ChannelAccess:
    """A channel the caller can view; otherwise NOT_FOUND / UNKNOWN_CHANNEL, whether it exists or not.
    `membership`: the caller's, when already loaded (used only if the channel is in that community)."""
    channel = await channels_repo.get_channel(uow, channel_id) if channel_id else None
    if channel is not None and (membership is None or membership.community.id != channel.community_id):
        membership = await repo.membership(uow, channel.community_id, principal.id)
    if channel is None or membership is None:
        raise NotFound.of("CHANNEL")
    overrides = await channels_repo.overrides_of(uow, channel.id)
    permissions = channel_permissions(membership.member, overrides)
    if not permissions & Permission.VIEW_CHANNEL:
        raise NotFound.of("CHANNEL")
    return ChannelAccess(channel=channel, membership=membership, overrides=overrides, permissions=permissions)
