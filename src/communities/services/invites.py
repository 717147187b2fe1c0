"""Use cases of the Invites service: invites that grant roles, invites only listed users may accept, and the
background jobs that store large target user lists."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from dataclasses import dataclass

from communities.domain import paging, target_users, validation
from communities.domain.channels import ChannelType
from communities.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    LimitReached,
    NotFound,
    PermissionDenied,
)
from communities.domain.permissions import (
    MemberContext,
    Permission,
    Role,
    can_grant_bits,
    can_manage_role,
    channel_permissions,
    community_permissions,
)
from communities.services import members as members_service
from communities.services import messages as messages_service
from communities.services.access import (
    require_channel,
    require_flag,
    require_held,
    require_membership,
    require_permission,
)
from communities.services.communities import CommunityView, view
from communities.services.context import App, Principal
from communities.storage import channels as channels_repo
from communities.storage import invites as invites_repo
from communities.storage import members as members_repo
from communities.storage import repository as repo
from communities.storage import roles as roles_repo
from communities.storage.database import UnitOfWork
from communities.storage.invites import JOB_COMPLETED, JOB_FAILED, JOB_PROCESSING, InviteRecord
from communities.storage.members import MemberRecord
from communities.storage.roles import RoleRecord
from communities.updates import publish

log = logging.getLogger("communities.invites")

MAX_AGE_DEFAULT = 86_400
MAX_AGE_MAX = 604_800
MAX_USES_MAX = 100
ROLES_PER_INVITE = 25
INVITES_PER_COMMUNITY = 1_000
# Lookalike-free alphabet (no 0 O o, 1 l I i) and a length giving ~57 bits: codes cannot be guessed.
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 10
CODE_MAX_LENGTH = 32
# Target lists up to this size are stored in the same transaction as the invite (or the job replacing its list),
# so CreateInvite answers OK only with the list stored; larger ones in the background.
INLINE_TARGETS = 10_000
TARGETS_CHUNK = 2_000
# A PROCESSING job whose worker has not reported for this long died with its server.
JOB_STALE_MS = 60_000
# A preview's approximate member count is counted at most this often per community and process.
MEMBER_COUNT_TTL_MS = 10_000


@dataclass(frozen=True)
class InviteView:
    invite: InviteRecord
    roles: list[RoleRecord]
    state: int  # proto InviteState: 1 active, 2 expired, 3 used up


@dataclass(frozen=True)
class PreviewView:
    invite: InviteRecord
    roles: list[RoleRecord]
    community: repo.CommunityRecord
    channel: channels_repo.ChannelRecord
    member_count: int


@dataclass(frozen=True)
class JobView:
    status: int
    total: int
    processed: int
    unknown: int
    created_at_ms: int | None
    completed_at_ms: int | None
    error: str


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _state(invite: InviteRecord, now_ms: int) -> int:
    if invite.max_uses and invite.uses >= invite.max_uses:
        return 3
    if not invite.active or (invite.expires_at_ms is not None and invite.expires_at_ms <= now_ms):
        return 2
    return 1


def _job_status(invite: InviteRecord, now_ms: int) -> tuple[int, str]:
    if invite.job_status == JOB_PROCESSING and (invite.job_heartbeat_at_ms or 0) + JOB_STALE_MS < now_ms:
        return JOB_FAILED, "The server storing the list stopped before finishing; upload the file again"
    return invite.job_status, invite.job_error


async def _parse_targets(data: bytes) -> target_users.ParsedTargets:
    # A big file takes a second or two to parse: do that off the event loop so other calls keep flowing.
    parsed = target_users.parse(data) if len(data) < 65_536 else await asyncio.to_thread(target_users.parse, data)
    if not parsed.ok:
        more = parsed.error_count - len(parsed.errors)
        message = f"target_users_file has {parsed.error_count} invalid line(s)" + (
            f"; the first {len(parsed.errors)} are listed" if more else ""
        )
        raise InvalidArgument([FieldViolation("target_users_file", text) for _, text in parsed.errors], message)
    if not parsed.user_ids:
        raise InvalidArgument.field("target_users_file", "contains no user IDs")
    if len(parsed.user_ids) > target_users.MAX_TARGET_USERS:
        raise InvalidArgument.field(
            "target_users_file",
            f"at most {target_users.MAX_TARGET_USERS:,} user IDs, got {len(parsed.user_ids):,}",
        )
    return parsed


def _check_code(code: str) -> str:
    code = code.strip()
    if not code:
        raise InvalidArgument.field("code", "is required")
    if len(code) > CODE_MAX_LENGTH or not all(char in CODE_ALPHABET for char in code):
        raise _unknown_invite()  # no invite has such a code; the database need not be asked
    return code


def _unknown_invite() -> NotFound:
    # One answer for unknown, expired, used up, deleted and not-for-you invites.
    return NotFound.of("INVITE", "Unknown invite")


async def _inviter_can_still_create(
    uow: UnitOfWork, invite: InviteRecord
) -> tuple[repo.CommunityRecord, list[RoleRecord]] | None:
    """The inviter's authority, checked again at each use: member, can see the channel and create invites there,
    and still may grant the invite's roles and target users. The community and the roles the invite grants when
    it still can; None when it cannot."""
    membership = await repo.membership(uow, invite.community_id, invite.inviter_id)
    if membership is None:
        return None
    overrides = await channels_repo.overrides_of(uow, invite.channel_id)
    in_channel = channel_permissions(membership.member, overrides)
    if not (in_channel & Permission.VIEW_CHANNEL and in_channel & Permission.CREATE_INVITE):
        return None
    community_level = community_permissions(membership.member)
    if invite.targeted and not community_level & Permission.MODIFY_COMMUNITY:
        return None
    granted: list[RoleRecord] = []
    if invite.role_ids:
        if not community_level & Permission.MODIFY_ROLES:
            return None
        granted = await _granted_roles(uow, invite)
        for role in granted:
            if not _may_grant(membership.member, role):
                return None
    return membership.community, granted


def _may_grant(member: MemberContext, role: RoleRecord) -> bool:
    return can_manage_role(member, role.priority) and can_grant_bits(member, role.permissions)


async def _usable_by(uow: UnitOfWork, invite: InviteRecord | None, user_id: int, now_ms: int) -> InviteRecord:
    """The invite if `user_id` may see and accept it right now; NOT_FOUND otherwise."""
    if invite is None or _state(invite, now_ms) != 1:
        raise _unknown_invite()
    if invite.targeted:
        status, _ = _job_status(invite, now_ms)
        if status != JOB_COMPLETED or not await invites_repo.is_target(uow, invite.code, user_id):
            raise _unknown_invite()
    return invite


def _ranked(found: dict[int, RoleRecord], role_ids: tuple[int, ...]) -> list[RoleRecord]:
    """The roles of `role_ids` among `found`, highest priority first."""
    roles = [found[role_id] for role_id in role_ids if role_id in found]
    return sorted(roles, key=lambda role: (-role.priority, role.id))


async def _granted_roles(uow: UnitOfWork, invite: InviteRecord) -> list[RoleRecord]:
    """The roles the invite grants, highest priority first."""
    return _ranked(await roles_repo.roles_by_id(uow, invite.community_id, invite.role_ids), invite.role_ids)


async def _view(uow: UnitOfWork, invite: InviteRecord, now_ms: int) -> InviteView:
    return InviteView(invite, await _granted_roles(uow, invite), _state(invite, now_ms))


async def _views(uow: UnitOfWork, invites: list[InviteRecord], now_ms: int) -> list[InviteView]:
    """Views of many invites, with the roles of all of them read in one query (per community; a listing is of
    one community)."""
    wanted: dict[int, set[int]] = {}
    for invite in invites:
        wanted.setdefault(invite.community_id, set()).update(invite.role_ids)
    found: dict[int, RoleRecord] = {}
    for community_id, role_ids in wanted.items():
        found.update(await roles_repo.roles_by_id(uow, community_id, role_ids))
    return [InviteView(invite, _ranked(found, invite.role_ids), _state(invite, now_ms)) for invite in invites]


# ------------------------------------------------------------------------------------------------ use cases


async def create_invite(
    app: App,
    principal: Principal,
    channel_id: int,
    *,
    max_age: int | None,
    max_uses: int | None,
    unique: bool,
    role_ids: list[int],
    target_users_file: bytes,
    temporary: bool = False,
) -> InviteView:
    max_age = MAX_AGE_DEFAULT if max_age is None else validation.bounded(max_age, "max_age", MAX_AGE_MAX)
    max_uses = 0 if max_uses is None else validation.bounded(max_uses, "max_uses", MAX_USES_MAX)
    wanted_roles = tuple(validation.id_list(role_ids, "role_ids", ROLES_PER_INVITE))
    targets = await _parse_targets(target_users_file) if target_users_file else None
    job_id = app.ids.next_id() if targets is not None else None
    async with app.db.unit_of_work(write=True) as uow:
        access = await require_channel(uow, channel_id, principal)
        require_flag(access.permissions, Permission.CREATE_INVITE)
        if access.channel.type not in (ChannelType.TEXT, ChannelType.VOICE):
            raise FailedPrecondition(
                "Invites lead to a text or voice channel, not a category", reason="INVALID_CHANNEL_TYPE"
            )
        community_id = access.channel.community_id
        if wanted_roles:
            require_permission(access.membership, Permission.MODIFY_ROLES)
            found = await roles_repo.roles_by_id(uow, community_id, wanted_roles)
            held = community_permissions(access.member)
            for role_id in wanted_roles:
                role = found.get(role_id)
                if role is None:
                    raise NotFound.of("ROLE", f"Unknown role {role_id}")
                if not can_manage_role(access.member, role.priority):
                    raise PermissionDenied.hierarchy(f"Role {role_id} is not below your highest role")
                require_held(held, role.permissions, f"Role {role_id}")
        if targets is not None:
            require_permission(access.membership, Permission.MODIFY_COMMUNITY)
        now = app.clock_ms()
        if not unique and targets is None:
            existing = await invites_repo.find_reusable(
                uow,
                inviter_id=principal.id,
                channel_id=channel_id,
                max_age=max_age,
                max_uses=max_uses,
                role_ids=wanted_roles,
                temporary=temporary,
                now_ms=now,
            )
            if existing is not None:
                return await _view(uow, existing, now)
        await invites_repo.sweep_expired(uow, now, community_id)
        if not await invites_repo.claim_invite_slot(uow, community_id, INVITES_PER_COMMUNITY):
            raise LimitReached("active_invites_per_community", INVITES_PER_COMMUNITY)
        for _ in range(5):
            record = InviteRecord(
                code=new_code(),
                community_id=community_id,
                channel_id=channel_id,
                inviter_id=principal.id,
                max_age=max_age,
                max_uses=max_uses,
                uses=0,
                created_at_ms=now,
                expires_at_ms=now + max_age * 1000 if max_age else None,
                targeted=targets is not None,
                active=True,
                job_id=job_id,
                job_status=JOB_PROCESSING if targets is not None else 0,
                job_total=len(targets.user_ids) if targets is not None else 0,
                job_processed=0,
                job_unknown=0,
                job_created_at_ms=now if targets is not None else None,
                job_completed_at_ms=None,
                job_heartbeat_at_ms=now if targets is not None else None,
                job_error="",
                role_ids=wanted_roles,
                temporary=temporary,
            )
            if await invites_repo.insert_invite(uow, record):
                break
        else:  # pragma: no cover - five collisions in a 57-bit space
            raise RuntimeError("could not draw a free invite code")
        granted_roles = await _granted_roles(uow, record)
        await publish.invite_created(app, uow, record, granted_roles, _state(record, now))
        if targets is not None and job_id is not None and _stored_inline(targets):
            # With the invite, in this unit of work: if storing fails, the call fails and nothing is committed
            # (no invite, no active-invite slot spent).
            await _store_targets_now(app, uow, record.code, job_id, targets)
    if targets is not None and job_id is not None and not _stored_inline(targets):
        _start_background_job(app, record.code, job_id, targets)
    return await _reload(app, record.code)


async def _reload(app: App, code: str) -> InviteView:
    async with app.db.unit_of_work(write=False) as uow:
        invite = await invites_repo.get_invite(uow, code)
        if invite is None:
            raise _unknown_invite()
        return await _view(uow, invite, app.clock_ms())


async def lookup_invite(app: App, principal: Principal, code: str) -> PreviewView:
    code = _check_code(code)
    async with app.db.unit_of_work(write=False) as uow:
        now = app.clock_ms()
        invite = await _usable_by(uow, await invites_repo.get_invite(uow, code), principal.id, now)
        community = await repo.get_community(uow, invite.community_id)
        channel = await channels_repo.get_channel(uow, invite.channel_id)
        if community is None or channel is None:
            raise _unknown_invite()
        return PreviewView(
            invite=invite,
            roles=await _granted_roles(uow, invite),
            community=community,
            channel=channel,
            member_count=await _member_count(app, uow, invite.community_id, now),
        )


# Per database handle (one per server process): community id -> (count, counted at). Not on App, whose fields
# belong to services/context.py.
async def _member_count(app: App, uow: UnitOfWork, community_id: int, now_ms: int) -> int:
    """The preview's approximate member count. Counting is a scan of the community's members (100,000 and more
    for the big ones) and every player's client previews invites, so a count is reused for MEMBER_COUNT_TTL_MS:
    at most that old, never wrong for longer, with no counter row for every join and leave to update (and lock)."""
    cache = app.member_counts
    found = cache.get(community_id)
    if found is not None and now_ms - found[1] < MEMBER_COUNT_TTL_MS:
        return found[0]
    count = await members_repo.count_members(uow, community_id)
    cache.put(community_id, (count, now_ms))
    return count


async def use_invite(app: App, principal: Principal, code: str) -> CommunityView:
    code = _check_code(code)
    revoked = False
    async with app.db.unit_of_work(write=True) as uow:
        now = app.clock_ms()
        invite = await _usable_by(uow, await invites_repo.get_invite(uow, code), principal.id, now)
        authority = await _inviter_can_still_create(uow, invite)
        if authority is None:
            await invites_repo.delete_invite(uow, code)
            await publish.invite_deleted(app, uow, None, invite)
            revoked = True
        else:
            community, roles = authority
            # Both counts come from what the conditional writes themselves report (the member row the INSERT ...
            # ON CONFLICT DO NOTHING added, the role rows its RETURNING names), never from an earlier read: a
            # member racing itself on PostgreSQL sees the role missing in every call, but only one insert adds it.
            joined = await members_service.join(
                uow, app, invite.community_id, principal.id, invite_code=code, temporary=invite.temporary
            )
            granted = await members_repo.add_roles(uow, invite.community_id, principal.id, invite.role_ids)
            # A use is counted only when the call did something, in the same transaction: if the invite ran out
            # meanwhile, raising rolls everything above back (the membership and the roles).
            if (joined or granted) and not await invites_repo.consume_use(uow, code, now):
                raise _unknown_invite()
            if joined is not None:
                # A new member holds exactly what this call wrote: its row and the granted roles, so neither the
                # event nor the answer needs a read back.
                member = dataclasses.replace(joined, role_ids=tuple(sorted(granted)))
                await _publish_use(app, uow, invite, member, joined=True, granted=granted)
                held = set(granted)
                membership = repo.Membership(
                    community=community,
                    member=MemberContext(
                        community_id=community.id,
                        is_owner=community.owner_id == principal.id,
                        default_permissions=community.default_permissions,
                        roles=tuple(
                            Role(id=role.id, permissions=role.permissions, priority=role.priority)
                            for role in roles
                            if role.id in held
                        ),
                    ),
                    muted=False,
                )
            else:
                if granted:
                    await members_repo.make_permanent(uow, invite.community_id, principal.id)  # given a role
                    [member] = await members_repo.get_members(uow, invite.community_id, [principal.id])
                    await _publish_use(app, uow, invite, member, joined=False, granted=granted)
                membership = await require_membership(uow, invite.community_id, principal)
    if revoked:
        log.info("invite %s removed: its inviter can no longer create it", code)
        raise _unknown_invite()
    return view(membership)


async def _publish_use(
    app: App, uow: UnitOfWork, invite: InviteRecord, member: MemberRecord, *, joined: bool, granted: list[int]
) -> None:
    """member_joined for a new member, member_updated for a member the invite gave roles; both say which invite,
    whose, and which roles it granted on this use."""
    attribution = {"invite_code": invite.code, "inviter_id": invite.inviter_id, "granted_role_ids": granted}
    if joined:
        await publish.member_joined(app, uow, member, temporary=invite.temporary, **attribution)
        await messages_service.announce_join(app, uow, invite.community_id, member.user_id)  # after member_joined
    else:
        await publish.member_updated(app, uow, member.user_id, member, **attribution)


async def _require_invite_manager(
    uow: UnitOfWork, principal: Principal, code: str, *, allow_channel_moderator: bool
) -> InviteRecord:
    """The invite if the caller is its inviter, holds MODIFY_COMMUNITY, or (if allowed) MODIFY_CHANNEL in its
    channel; NOT_FOUND for anyone who cannot see the invite at all."""
    invite = await invites_repo.get_invite(uow, code)
    if invite is None:
        raise _unknown_invite()
    membership = await repo.membership(uow, invite.community_id, principal.id)
    if membership is None:
        raise _unknown_invite()
    if invite.inviter_id == principal.id:
        return invite
    if community_permissions(membership.member) & Permission.MODIFY_COMMUNITY:
        return invite
    if allow_channel_moderator:
        overrides = await channels_repo.overrides_of(uow, invite.channel_id)
        if channel_permissions(membership.member, overrides) & Permission.MODIFY_CHANNEL:
            return invite
    raise PermissionDenied.missing(Permission.MODIFY_COMMUNITY.name or "MODIFY_COMMUNITY")


async def list_invites(
    app: App,
    principal: Principal,
    *,
    community_id: int | None,
    channel_id: int | None,
    include_inactive: bool,
    page_size: int,
    page_token: str,
) -> tuple[list[InviteView], str]:
    size = validation.page_size(page_size)
    parts = paging.decode_parts(page_token, 2)
    after = None
    if parts is not None:
        if not parts[0].isdigit():
            raise InvalidArgument.field("page_token", "not a page token from this server")
        after = (int(parts[0]), parts[1])
    async with app.db.unit_of_work(write=False) as uow:
        if channel_id is not None:
            access = await require_channel(uow, channel_id, principal)
            require_flag(access.permissions, Permission.MODIFY_CHANNEL)
        elif community_id:
            membership = await require_membership(uow, community_id, principal)
            require_permission(membership, Permission.MODIFY_COMMUNITY)
        else:
            raise InvalidArgument.field("community_id", "give a community_id or a channel_id")
        now = app.clock_ms()
        records = await invites_repo.list_invites(
            uow,
            community_id=community_id if channel_id is None else None,
            channel_id=channel_id,
            include_inactive=include_inactive,
            now_ms=now,
            after=after,
            limit=size + 1,
        )
        views = await _views(uow, records[:size], now)
    token = paging.encode(records[size - 1].created_at_ms, records[size - 1].code) if len(records) > size else ""
    return views, token


async def delete_invite(app: App, principal: Principal, code: str) -> None:
    code = _check_code(code)
    async with app.db.unit_of_work(write=True) as uow:
        invite = await _require_invite_manager(uow, principal, code, allow_channel_moderator=True)
        await invites_repo.delete_invite(uow, code)
        await publish.invite_deleted(app, uow, principal.id, invite)


async def get_target_users(app: App, principal: Principal, code: str) -> bytes:
    code = _check_code(code)
    async with app.db.unit_of_work(write=False) as uow:
        await _require_invite_manager(uow, principal, code, allow_channel_moderator=False)
        ids = await invites_repo.target_ids(uow, code)
    return target_users.to_csv(ids)


async def update_target_users(app: App, principal: Principal, code: str, target_users_file: bytes) -> JobView:
    code = _check_code(code)
    targets = await _parse_targets(target_users_file)
    job_id = app.ids.next_id()
    async with app.db.unit_of_work(write=True) as uow:
        invite = await _require_invite_manager(uow, principal, code, allow_channel_moderator=False)
        membership = await require_membership(uow, invite.community_id, principal)
        require_permission(membership, Permission.MODIFY_COMMUNITY)
        now = app.clock_ms()
        status, _ = _job_status(invite, now)
        if status == JOB_PROCESSING:
            raise FailedPrecondition(
                "The previous target users file is still being stored; try again when its job is done",
                reason="TARGET_USERS_JOB_RUNNING",
            )
        await invites_repo.start_job(uow, code, job_id, len(targets.user_ids), now)
        if _stored_inline(targets):
            # In the same unit of work as replacing the old list: if storing fails, the old list stays.
            await _store_targets_now(app, uow, code, job_id, targets)
    if not _stored_inline(targets):
        _start_background_job(app, code, job_id, targets)
    return await get_job_status(app, principal, code)


async def get_job_status(app: App, principal: Principal, code: str) -> JobView:
    code = _check_code(code)
    async with app.db.unit_of_work(write=False) as uow:
        invite = await _require_invite_manager(uow, principal, code, allow_channel_moderator=False)
    status, error = _job_status(invite, app.clock_ms())
    return JobView(
        status=status,
        total=invite.job_total,
        processed=invite.job_processed,
        unknown=invite.job_unknown,
        created_at_ms=invite.job_created_at_ms,
        completed_at_ms=invite.job_completed_at_ms,
        error=error,
    )


# ------------------------------------------------------------------------------------ target user jobs


def _stored_inline(targets: target_users.ParsedTargets) -> bool:
    return len(targets.user_ids) <= INLINE_TARGETS


async def _store_targets_now(
    app: App, uow: UnitOfWork, code: str, job_id: int, targets: target_users.ParsedTargets
) -> None:
    """A small list, stored in the caller's unit of work together with the invite (or the job that replaces its
    list), and the job marked COMPLETED there too: the call answers only once both are committed, and a failure
    anywhere rolls all of it back."""
    user_ids = targets.user_ids
    for start in range(0, len(user_ids), TARGETS_CHUNK):
        chunk = user_ids[start : start + TARGETS_CHUNK].tolist()
        if not await invites_repo.store_targets(uow, code, job_id, chunk, app.clock_ms()):
            # The job was written by this very transaction: only a bug gets here.
            raise RuntimeError(f"the target users job of invite {code} vanished within its own transaction")
    await invites_repo.finish_job(uow, code, job_id, app.clock_ms())


def _start_background_job(app: App, code: str, job_id: int, targets: target_users.ParsedTargets) -> None:
    """Large lists are stored by a background task, in chunks, each its own short transaction, so other calls
    keep flowing and memory stays at the parsed array; the job says how far it got."""
    task = asyncio.get_running_loop().create_task(_run_target_job(app, code, job_id, targets.user_ids))
    app.background.add(task)
    task.add_done_callback(app.background.discard)


async def _run_target_job(app: App, code: str, job_id: int, user_ids) -> None:
    try:
        for start in range(0, len(user_ids), TARGETS_CHUNK):
            chunk = user_ids[start : start + TARGETS_CHUNK].tolist()
            async with app.db.unit_of_work(write=True) as uow:
                if not await invites_repo.store_targets(uow, code, job_id, chunk, app.clock_ms()):
                    return  # replaced by a newer file, or the invite was deleted
            await asyncio.sleep(0)  # let waiting calls run between chunks
        async with app.db.unit_of_work(write=True) as uow:
            await invites_repo.finish_job(uow, code, job_id, app.clock_ms())
    except asyncio.CancelledError:
        await _fail_job(app, code, job_id, "The server stopped before the list was stored; upload the file again")
        raise
    except Exception:
        log.exception("target users job for invite %s failed", code)
        await _fail_job(app, code, job_id, "Storing the list failed; upload the file again")


async def _fail_job(app: App, code: str, job_id: int, message: str) -> None:
    try:
        async with app.db.unit_of_work(write=True) as uow:
            await invites_repo.fail_job(uow, code, job_id, app.clock_ms(), message)
    except Exception:  # the database itself is gone; a stale heartbeat reports the job as failed
        log.exception("could not record the failure of the target users job for invite %s", code)


async def sweep_expired_invites(app: App) -> int:
    async with app.db.unit_of_work(write=True) as uow:
        return await invites_repo.sweep_expired(uow, app.clock_ms())
