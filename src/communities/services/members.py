"""Use cases of the Members service: member lookups, nicknames and roles, kicks and bans, and joining."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from communities.domain import paging, validation
from communities.domain.errors import InvalidArgument, LimitReached, NotFound, PermissionDenied
from communities.domain.permissions import (
    MemberContext,
    Permission,
    can_act_on_member,
    can_manage_role,
    community_permissions,
)
from communities.services.access import require_held, require_membership, require_permission
from communities.services.context import App, Principal
from communities.storage import members as members_repo
from communities.storage import presence as presence_repo
from communities.storage import repository as repo
from communities.storage import roles as roles_repo
from communities.storage.database import UnitOfWork
from communities.storage.members import BanRecord, MemberRecord
from communities.updates import publish

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


async def get_members(app: App, principal: Principal, community_id: int, member_ids: list[int]) -> list[MemberRecord]:
    ids = validation.id_list(member_ids, "member_ids")
    async with app.db.unit_of_work(write=False) as uow:
        await require_membership(uow, community_id, principal)
        return await members_repo.get_members(uow, community_id, ids)


async def list_members(
    app: App, principal: Principal, community_id: int, page_size: int, page_token: str
) -> Page[MemberRecord]:
    size = validation.page_size(page_size)
    after = paging.decode(page_token)
    async with app.db.unit_of_work(write=False) as uow:
        await require_membership(uow, community_id, principal)
        records = await members_repo.list_members(uow, community_id, after, size + 1)
    more = len(records) > size
    records = records[:size]
    return Page(records, paging.encode(records[-1].user_id) if more else "")


def _require_rank_over(actor: MemberContext, target: MemberContext) -> None:
    if not can_act_on_member(actor, target):
        raise PermissionDenied.hierarchy(
            "You can only act on members whose highest role is below yours, and never on the owner"
        )


async def _target(uow: UnitOfWork, community_id: int, user_id: int) -> repo.Membership:
    target = await repo.membership(uow, community_id, user_id) if user_id else None
    if target is None:
        raise NotFound.of("MEMBER")
    return target


async def edit_member(
    app: App,
    principal: Principal,
    community_id: int,
    member_id: int,
    *,
    nickname: str | None,
    role_ids: list[int] | None,
) -> MemberRecord:
    """nickname: None unchanged, '' clears. role_ids: None unchanged, else the whole new set."""
    new_nickname = validation.nickname(nickname) if nickname is not None else None
    wanted = None
    if role_ids is not None:
        wanted = validation.id_list(role_ids, "role_ids", validation.ROLES_PER_COMMUNITY)
    async with app.db.unit_of_work(write=True) as uow:
        actor = await require_membership(uow, community_id, principal)
        # Edits of one member take turns (PostgreSQL row lock), so a role set is computed from the current one.
        await members_repo.lock_member(uow, community_id, member_id)
        target = await _target(uow, community_id, member_id)
        acting_on_self = member_id == principal.id
        if not (acting_on_self and (actor.member.is_owner or wanted is None)):
            # Editing someone else, or one's own roles (only the owner may): MODIFY_ROLES and a lower rank.
            require_permission(actor, Permission.MODIFY_ROLES)
            _require_rank_over(actor.member, target.member)
        if nickname is not None:
            await members_repo.set_nickname(uow, community_id, member_id, new_nickname)
        if wanted is not None:
            held = {role.id for role in target.member.roles}
            added = [role_id for role_id in wanted if role_id not in held]
            removed = [role_id for role_id in held if role_id not in set(wanted)]
            found = await roles_repo.roles_by_id(uow, community_id, added + removed)
            unknown = [role_id for role_id in added if role_id not in found]
            if unknown:
                raise NotFound.of("ROLE", f"Unknown role {unknown[0]}")
            for role in found.values():
                if not can_manage_role(actor.member, role.priority):
                    raise PermissionDenied.hierarchy(
                        f"Role {role.id} is not below your highest role: you cannot assign or remove it"
                    )
                require_held(community_permissions(actor.member), role.permissions, f"Role {role.id}")
            await members_repo.remove_roles(uow, community_id, member_id, removed)
            if await members_repo.add_roles(uow, community_id, member_id, added):
                await members_repo.make_permanent(uow, community_id, member_id)  # given a role: it stays
        [record] = await members_repo.get_members(uow, community_id, [member_id])
        if nickname is not None or wanted is not None:
            await publish.member_updated(app, uow, principal.id, record)
    return record


async def remove_members(
    app: App,
    principal: Principal,
    community_id: int,
    member_ids: list[int],
    *,
    until_ms: int | None,
    ban: bool,
    reason: str | None,
) -> None:
    """Kick (ban False) or ban (until_ms None = permanent). All or nothing."""
    ids = validation.id_list(member_ids, "member_ids")
    if not ids:
        raise InvalidArgument.field("member_ids", "at least one member id is required")
    text = validation.reason(reason)
    async with app.db.unit_of_work(write=True) as uow:
        actor = await require_membership(uow, community_id, principal)
        require_permission(actor, Permission.REMOVE_MEMBERS)
        now = app.clock_ms()
        if ban and until_ms is not None and until_ms <= now:
            raise InvalidArgument.field("until", "must be in the future (or 0 for a permanent ban)")
        for member_id in ids:
            target = await _target(uow, community_id, member_id)
            _require_rank_over(actor.member, target.member)
        for member_id in ids:
            if not await members_repo.delete_member(uow, community_id, member_id):
                raise NotFound.of("MEMBER")  # removed by a racing call; this one changes nothing
            if ban:
                await members_repo.upsert_ban(uow, community_id, member_id, until_ms, text, principal.id, now)
            why = publish.BANNED if ban else publish.KICKED
            await publish.member_left(app, uow, principal.id, community_id, member_id, why)


async def get_removed_members(
    app: App, principal: Principal, community_id: int, page_size: int, page_token: str
) -> Page[BanRecord]:
    size = validation.page_size(page_size)
    after = paging.decode(page_token)
    async with app.db.unit_of_work(write=False) as uow:
        actor = await require_membership(uow, community_id, principal)
        require_permission(actor, Permission.REMOVE_MEMBERS)
        records = await members_repo.list_bans(uow, community_id, app.clock_ms(), after, size + 1)
    more = len(records) > size
    records = records[:size]
    return Page(records, paging.encode(records[-1].user_id) if more else "")


async def unban_members(app: App, principal: Principal, community_id: int, user_ids: list[int]) -> None:
    ids = validation.id_list(user_ids, "user_ids")
    async with app.db.unit_of_work(write=True) as uow:
        actor = await require_membership(uow, community_id, principal)
        require_permission(actor, Permission.REMOVE_MEMBERS)
        for user_id in await members_repo.delete_bans(uow, community_id, ids):
            await publish.member_unbanned(app, uow, principal.id, community_id, user_id)


async def join(
    uow: UnitOfWork, app: App, community_id: int, user_id: int, *, invite_code: str | None, temporary: bool = False
) -> MemberRecord | None:
    """Adds a user as a member within the caller's unit of work: the member as written (no roles yet), or None if
    already a member. Raises BANNED and LIMIT_REACHED."""
    now = app.clock_ms()
    if not await members_repo.insert_member_unless_banned(
        uow, community_id, user_id, now, invite_code, temporary=temporary
    ):
        if await members_repo.is_banned(uow, community_id, user_id, now):
            raise PermissionDenied("You are banned from this community", reason="BANNED")
        return None  # already a member (the primary key decides, also when two joins race)
    if not await repo.claim_membership_slot(uow, user_id, validation.COMMUNITIES_PER_USER):
        raise LimitReached("communities_per_user", validation.COMMUNITIES_PER_USER)
    return MemberRecord(user_id, community_id, (), None, now, invite_code)


async def expire_temporary_members(app: App, grace_ms: int, batch: int = 100) -> int:
    """Remove the temporary members who have had no update stream open for `grace_ms` (and joined longer ago than
    that), each in its own unit of work, with member_left TEMPORARY_EXPIRED. Safe on every replica at once: the
    conditional delete lets only one of them remove a member."""
    removed = 0
    while True:
        async with app.db.unit_of_work(write=False) as uow:
            expired = await presence_repo.expired_temporary_members(uow, app.clock_ms(), grace_ms, batch)
        for community_id, user_id in expired:
            async with app.db.unit_of_work(write=True) as uow:
                if await members_repo.delete_member(uow, community_id, user_id, only_temporary=True):
                    await publish.member_left(app, uow, None, community_id, user_id, publish.TEMPORARY_EXPIRED)
                    removed += 1
        if len(expired) < batch:
            return removed
