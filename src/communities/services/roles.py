"""Use cases of the Roles service: roles, default permissions, and explanations of the engine's results."""

from __future__ import annotations

from dataclasses import dataclass, field

from communities.domain import validation
from communities.domain.errors import LimitReached, NotFound, PermissionDenied
from communities.domain.permissions import (
    Permission,
    Step,
    can_manage_role,
    community_permissions,
    explain,
    rank,
)
from communities.services.access import (
    read_membership,
    require_channel,
    require_held,
    require_membership,
    require_permission,
)
from communities.services.context import App, Principal
from communities.storage import channels as channels_repo
from communities.storage import repository as repo
from communities.storage import roles as roles_repo
from communities.storage.database import UnitOfWork
from communities.storage.roles import RoleRecord
from communities.updates import publish

RANK_OWNER = 0xFFFFFFFF  # how the owner's infinite rank is shown in explanations (uint32 max)


@dataclass(frozen=True)
class RolesView:
    roles: list[RoleRecord]
    default_permissions: int


@dataclass(slots=True)
class Explanation:
    community_id: int
    user_id: int
    channel_id: int
    permissions: int
    steps: list[Step]
    rank: int
    owner: bool
    # The API's message for it: a caller's own explanation is cached (app.explanations), and its message with it.
    encoded: object = field(default=None, compare=False, repr=False)


def _require_manageable(membership: repo.Membership, priority: int) -> None:
    if not can_manage_role(membership.member, priority):
        raise PermissionDenied.hierarchy("You can only manage roles whose priority is below your highest role")


def _require_grantable(membership: repo.Membership, bits: int) -> None:
    require_held(community_permissions(membership.member), bits, "Role permissions")


async def _manageable_role(
    uow: UnitOfWork, principal: Principal, community_id: int, role_id: int
) -> tuple[repo.Membership, RoleRecord]:
    """The caller's membership and a role it may edit or delete: MODIFY_ROLES, and the role below its rank."""
    membership = await require_membership(uow, community_id, principal)
    require_permission(membership, Permission.MODIFY_ROLES)
    role = await roles_repo.get_role(uow, community_id, role_id)
    if role is None:
        raise NotFound.of("ROLE")
    _require_manageable(membership, role.priority)
    return membership, role


async def get_roles(app: App, principal: Principal, community_id: int) -> RolesView:
    async with app.db.unit_of_work(write=False) as uow:
        membership = await require_membership(uow, community_id, principal)
        roles = await roles_repo.roles_of(uow, community_id)
    return RolesView(roles=roles, default_permissions=membership.community.default_permissions)


async def create_role(
    app: App,
    principal: Principal,
    community_id: int,
    *,
    name: str,
    permissions: int,
    priority: int,
    color: int,
    separated: bool,
    public: bool,
) -> RoleRecord:
    role = RoleRecord(
        id=app.ids.next_id(),
        community_id=community_id,
        name=validation.clean_name(name),
        permissions=validation.permission_mask(permissions, "permissions"),
        priority=validation.bounded(priority, "priority", validation.ROLE_PRIORITY_MAX),
        color=validation.bounded(color, "color", validation.COLOR_MAX),
        separated=separated,
        public=public,
    )
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        require_permission(membership, Permission.MODIFY_ROLES)
        _require_manageable(membership, role.priority)
        _require_grantable(membership, role.permissions)
        if not await roles_repo.claim_role_slot(uow, community_id, validation.ROLES_PER_COMMUNITY):
            raise LimitReached("roles_per_community", validation.ROLES_PER_COMMUNITY)
        await roles_repo.insert_role(uow, role)
        await publish.role_created(app, uow, principal.id, role)
    return role


async def edit_role(app: App, principal: Principal, community_id: int, role_id: int, **changes) -> RoleRecord:
    """changes: name, permissions, priority, color, separated, public; None = unchanged."""
    values = {key: value for key, value in changes.items() if value is not None}
    if "name" in values:
        values["name"] = validation.clean_name(values["name"])
    if "permissions" in values:
        validation.permission_mask(values["permissions"], "permissions")
    if "priority" in values:
        validation.bounded(values["priority"], "priority", validation.ROLE_PRIORITY_MAX)
    if "color" in values:
        validation.bounded(values["color"], "color", validation.COLOR_MAX)
    async with app.db.unit_of_work(write=True) as uow:
        membership, role = await _manageable_role(uow, principal, community_id, role_id)
        if "priority" in values:
            _require_manageable(membership, values["priority"])
        if "permissions" in values:
            _require_grantable(membership, values["permissions"] ^ role.permissions)
        await roles_repo.update_role(uow, role_id, **values)
        updated = await roles_repo.get_role(uow, community_id, role_id)
        assert updated is not None
        if values:
            await publish.role_updated(app, uow, principal.id, updated)
    return updated


async def delete_role(app: App, principal: Principal, community_id: int, role_id: int) -> None:
    async with app.db.unit_of_work(write=True) as uow:
        await _manageable_role(uow, principal, community_id, role_id)
        await channels_repo.delete_overrides_for_target(uow, community_id, role_id)
        await roles_repo.delete_role(uow, community_id, role_id)
        await publish.role_deleted(app, uow, principal.id, community_id, role_id)


async def edit_default_permissions(app: App, principal: Principal, community_id: int, permissions: int) -> RolesView:
    validation.permission_mask(permissions, "permissions")
    async with app.db.unit_of_work(write=True) as uow:
        membership = await require_membership(uow, community_id, principal)
        require_permission(membership, Permission.MODIFY_ROLES)
        _require_grantable(membership, permissions ^ membership.community.default_permissions)
        await roles_repo.set_default_permissions(uow, community_id, permissions)
        await publish.default_permissions_updated(app, uow, principal.id, community_id, permissions)
        roles = await roles_repo.roles_of(uow, community_id)
    return RolesView(roles=roles, default_permissions=permissions)


async def explain_permissions(
    app: App, principal: Principal, community_id: int, user_id: int, channel_id: int | None
) -> Explanation:
    target_id = user_id or principal.id
    own = target_id == principal.id
    if own:
        # The version and the standing in one statement of their own: when the answer is known, that is all.
        membership = await read_membership(app.db, community_id, principal)
        cached = app.explanations.get(_explanation_key(membership, principal.id, channel_id))
        if cached is not None:
            return cached
    async with app.db.unit_of_work(write=False) as uow:
        membership = await require_membership(uow, community_id, principal)
        if not own:
            require_permission(membership, Permission.MODIFY_ROLES)
            target = await repo.membership(uow, community_id, target_id)
            if target is None:
                raise NotFound.of("MEMBER")
        else:
            target = membership
        overrides = None
        if channel_id is not None:
            # The caller must be able to see the channel it asks about.
            access = await require_channel(uow, channel_id, principal, membership)
            if access.channel.community_id != community_id:
                raise NotFound.of("CHANNEL")
            overrides = access.overrides
    steps = explain(target.member, overrides)
    member_rank = rank(target.member)
    explanation = Explanation(
        community_id=community_id,
        user_id=target_id,
        channel_id=channel_id or 0,
        permissions=steps[-1].result,
        steps=steps,
        rank=RANK_OWNER if member_rank == float("inf") else int(member_rank),
        owner=target.member.is_owner,
    )
    if own:
        app.explanations.put(_explanation_key(membership, principal.id, channel_id), explanation)
    return explanation


def _explanation_key(membership: repo.Membership, user_id: int, channel_id: int | None) -> tuple:
    """One's own explanation depends only on one's standing and, in a channel, on the channel and its overrides
    (the community's channels_version changes with each of their changes), as GetChannels' list does."""
    member = membership.member
    return (
        membership.community.id,
        membership.community.channels_version,
        channel_id,
        user_id,
        member.is_owner,
        member.default_permissions,
        tuple(sorted((role.id, role.permissions, role.priority) for role in member.roles)),
    )
