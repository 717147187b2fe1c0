"""Queries for invites, the roles they grant, and their target users.

The use count is kept by one conditional UPDATE ... RETURNING, in the same transaction as the membership or
role grant it pays for (both counted from what their own INSERT ... ON CONFLICT reports); racing acceptances can
never pass max_uses, and a join that fails rolls its use back with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row

from communities.storage.database import Prepared, UnitOfWork, dialect_insert
from communities.storage.tables import communities, invite_roles, invite_targets, invites, users

# Values of invites.job_status (same numbers as the proto's JobStatus).
JOB_NONE, JOB_PROCESSING, JOB_COMPLETED, JOB_FAILED = 0, 1, 2, 3


@dataclass(frozen=True)
class InviteRecord:
    code: str
    community_id: int
    channel_id: int
    inviter_id: int
    max_age: int
    max_uses: int
    uses: int
    created_at_ms: int
    expires_at_ms: int | None
    targeted: bool
    active: bool
    job_id: int | None
    job_status: int
    job_total: int
    job_processed: int
    job_unknown: int
    job_created_at_ms: int | None
    job_completed_at_ms: int | None
    job_heartbeat_at_ms: int | None
    job_error: str
    role_ids: tuple[int, ...] = ()
    temporary: bool = False


def _invite(row: Row, role_ids: tuple[int, ...]) -> InviteRecord:
    return InviteRecord(
        code=row.code,
        community_id=row.community_id,
        channel_id=row.channel_id,
        inviter_id=row.inviter_id,
        max_age=row.max_age,
        max_uses=row.max_uses,
        uses=row.uses,
        created_at_ms=row.created_at,
        expires_at_ms=row.expires_at,
        targeted=bool(row.targeted),
        active=bool(row.active),
        job_id=row.job_id,
        job_status=row.job_status,
        job_total=row.job_total,
        job_processed=row.job_processed,
        job_unknown=row.job_unknown,
        job_created_at_ms=row.job_created_at,
        job_completed_at_ms=row.job_completed_at,
        job_heartbeat_at_ms=row.job_heartbeat_at,
        job_error=row.job_error,
        role_ids=role_ids,
        temporary=bool(row.temporary),
    )


async def _role_ids(uow: UnitOfWork, codes: Sequence[str]) -> dict[str, tuple[int, ...]]:
    if not codes:
        return {}
    rows = await uow.execute(
        select(invite_roles.c.code, invite_roles.c.role_id)
        .where(invite_roles.c.code.in_(list(codes)))
        .order_by(invite_roles.c.role_id)
    )
    result: dict[str, list[int]] = {}
    for row in rows:
        result.setdefault(row.code, []).append(row.role_id)
    return {code: tuple(ids) for code, ids in result.items()}


# The invite and the roles it grants in one statement: one row per role, or one with a NULL role_id.
_GET_INVITE = Prepared(
    select(invites, invite_roles.c.role_id.label("granted_role_id"))
    .outerjoin(invite_roles, invite_roles.c.code == invites.c.code)
    .where(invites.c.code == bindparam("code"))
    .order_by(invite_roles.c.role_id)
)


async def get_invite(uow: UnitOfWork, code: str) -> InviteRecord | None:
    rows = (await uow.execute(_GET_INVITE, {"code": code})).all()
    if not rows:
        return None
    return _invite(rows[0], tuple(row.granted_role_id for row in rows if row.granted_role_id is not None))


# ------------------------------------------------------------------------------------------ active-invite limit


async def claim_invite_slot(uow: UnitOfWork, community_id: int, limit: int) -> bool:
    result = await uow.execute(
        update(communities)
        .where(communities.c.id == community_id, communities.c.invite_count < limit)
        .values(invite_count=communities.c.invite_count + 1)
    )
    return result.rowcount == 1


async def _release_slots(uow: UnitOfWork, counts: dict[int, int]) -> None:
    for community_id, count in counts.items():
        await uow.execute(
            update(communities)
            .where(communities.c.id == community_id)
            .values(invite_count=communities.c.invite_count - count)
        )


async def sweep_expired(uow: UnitOfWork, now_ms: int, community_id: int | None = None) -> int:
    """Takes expired invites off the active list (they keep their row and final count). Returns how many."""
    statement = update(invites).where(invites.c.active, invites.c.expires_at <= now_ms)
    if community_id is not None:
        statement = statement.where(invites.c.community_id == community_id)
    rows = (await uow.execute(statement.values(active=False).returning(invites.c.community_id))).all()
    counts: dict[int, int] = {}
    for row in rows:
        counts[row.community_id] = counts.get(row.community_id, 0) + 1
    await _release_slots(uow, counts)
    return len(rows)


# -------------------------------------------------------------------------------------------------- writes


async def insert_invite(uow: UnitOfWork, record: InviteRecord) -> bool:
    """False if the code is taken (the caller draws another)."""
    statement = (
        dialect_insert(uow, invites)
        .values(
            code=record.code,
            community_id=record.community_id,
            channel_id=record.channel_id,
            inviter_id=record.inviter_id,
            max_age=record.max_age,
            max_uses=record.max_uses,
            uses=0,
            created_at=record.created_at_ms,
            expires_at=record.expires_at_ms,
            targeted=record.targeted,
            temporary=record.temporary,
            active=True,
            job_id=record.job_id,
            job_status=record.job_status,
            job_total=record.job_total,
            job_processed=0,
            job_unknown=0,
            job_created_at=record.job_created_at_ms,
            job_heartbeat_at=record.job_created_at_ms,
        )
        .on_conflict_do_nothing(index_elements=[invites.c.code])
    )
    if (await uow.execute(statement)).rowcount != 1:
        return False
    if record.role_ids:
        await uow.execute(insert(invite_roles), [{"code": record.code, "role_id": r} for r in record.role_ids])
    return True


async def find_reusable(
    uow: UnitOfWork,
    *,
    inviter_id: int,
    channel_id: int,
    max_age: int,
    max_uses: int,
    role_ids: tuple[int, ...],
    temporary: bool,
    now_ms: int,
) -> InviteRecord | None:
    """A still-valid untargeted invite of this inviter to this channel with exactly these settings."""
    rows = (
        await uow.execute(
            select(invites)
            .where(
                invites.c.inviter_id == inviter_id,
                invites.c.channel_id == channel_id,
                invites.c.max_age == max_age,
                invites.c.max_uses == max_uses,
                invites.c.active,
                invites.c.targeted.is_(False),
                invites.c.temporary.is_(temporary),
                or_(invites.c.expires_at.is_(None), invites.c.expires_at > now_ms),
                or_(invites.c.max_uses == 0, invites.c.uses < invites.c.max_uses),
            )
            .order_by(invites.c.created_at.desc())
        )
    ).all()
    held = await _role_ids(uow, [row.code for row in rows])
    for row in rows:
        if tuple(sorted(held.get(row.code, ()))) == tuple(sorted(role_ids)):
            return _invite(row, held.get(row.code, ()))
    return None


_CONSUME_USE = Prepared(
    update(invites)
    .where(
        invites.c.code == bindparam("invite_code"),  # not "code": SQLAlchemy keeps column names for SET values
        invites.c.active,
        or_(invites.c.expires_at.is_(None), invites.c.expires_at > bindparam("now_ms")),
        or_(invites.c.max_uses == 0, invites.c.uses < invites.c.max_uses),
    )
    .values(
        uses=invites.c.uses + 1,
        # The last use retires the invite from the active list in the same statement.
        active=case((and_(invites.c.max_uses > 0, invites.c.uses + 1 >= invites.c.max_uses), False), else_=True),
    )
    .returning(invites.c.community_id, invites.c.active)
)


async def consume_use(uow: UnitOfWork, code: str, now_ms: int) -> bool:
    """Counts one use if the invite is still usable at this instant; retires it when that was the last use."""
    row = (await uow.execute(_CONSUME_USE, {"invite_code": code, "now_ms": now_ms})).first()
    if row is None:
        return False
    if not row.active:
        await _release_slots(uow, {row.community_id: 1})
    return True


async def delete_invite(uow: UnitOfWork, code: str) -> bool:
    row = (
        await uow.execute(
            delete(invites).where(invites.c.code == code).returning(invites.c.community_id, invites.c.active)
        )
    ).first()
    if row is None:
        return False
    if row.active:
        await _release_slots(uow, {row.community_id: 1})
    return True


async def list_invites(
    uow: UnitOfWork,
    *,
    community_id: int | None,
    channel_id: int | None,
    include_inactive: bool,
    now_ms: int,
    after: tuple[int, str] | None,
    limit: int,
) -> list[InviteRecord]:
    """Newest first; `after` is the (created_at, code) of the last invite of the previous page."""
    query = select(invites)
    if community_id is not None:
        query = query.where(invites.c.community_id == community_id)
    if channel_id is not None:
        query = query.where(invites.c.channel_id == channel_id)
    if not include_inactive:
        query = query.where(invites.c.active, or_(invites.c.expires_at.is_(None), invites.c.expires_at > now_ms))
    if after is not None:
        created_at, code = after
        query = query.where(
            or_(invites.c.created_at < created_at, and_(invites.c.created_at == created_at, invites.c.code > code))
        )
    rows = (await uow.execute(query.order_by(invites.c.created_at.desc(), invites.c.code).limit(limit))).all()
    held = await _role_ids(uow, [row.code for row in rows])
    return [_invite(row, held.get(row.code, ())) for row in rows]


# --------------------------------------------------------------------------------------------- target users


_IS_TARGET = Prepared(
    select(invite_targets.c.user_id).where(
        invite_targets.c.code == bindparam("code"), invite_targets.c.user_id == bindparam("user_id")
    )
)


async def is_target(uow: UnitOfWork, code: str, user_id: int) -> bool:
    return (await uow.execute(_IS_TARGET, {"code": code, "user_id": user_id})).first() is not None


async def start_job(uow: UnitOfWork, code: str, job_id: int, total: int, now_ms: int) -> None:
    """Replaces the targets: marks a new job PROCESSING (admits nobody meanwhile) and clears the old ones.

    The invite row is updated first: that locks it (PostgreSQL) against every other job start and chunk of this
    invite, so the DELETE that follows, a statement of its own, sees every target they committed."""
    await uow.execute(
        update(invites)
        .where(invites.c.code == code)
        .values(
            targeted=True,
            job_id=job_id,
            job_status=JOB_PROCESSING,
            job_total=total,
            job_processed=0,
            job_unknown=0,
            job_created_at=now_ms,
            job_completed_at=None,
            job_heartbeat_at=now_ms,
            job_error="",
        )
    )
    await uow.execute(delete(invite_targets).where(invite_targets.c.code == code))


async def store_targets(uow: UnitOfWork, code: str, job_id: int, user_ids: Sequence[int], now_ms: int) -> bool:
    """Stores one chunk for the job; False if the job was replaced or the invite deleted meanwhile."""
    progressed = await uow.execute(
        update(invites)
        .where(invites.c.code == code, invites.c.job_id == job_id, invites.c.job_status == JOB_PROCESSING)
        .values(job_processed=invites.c.job_processed + len(user_ids), job_heartbeat_at=now_ms)
    )
    if progressed.rowcount != 1:
        return False
    await uow.execute_many(_INSERT_TARGET, [{"code": code, "user_id": user_id} for user_id in user_ids])
    return True


_INSERT_TARGET = Prepared(insert(invite_targets).values(code=bindparam("code"), user_id=bindparam("user_id")))


async def finish_job(uow: UnitOfWork, code: str, job_id: int, now_ms: int) -> None:
    unknown = (
        await uow.execute(
            select(func.count())
            .select_from(invite_targets)
            .outerjoin(users, users.c.id == invite_targets.c.user_id)
            .where(invite_targets.c.code == code, users.c.id.is_(None))
        )
    ).scalar_one()
    await uow.execute(
        update(invites)
        .where(invites.c.code == code, invites.c.job_id == job_id)
        .values(job_status=JOB_COMPLETED, job_unknown=unknown, job_completed_at=now_ms, job_heartbeat_at=now_ms)
    )


async def fail_job(uow: UnitOfWork, code: str, job_id: int, now_ms: int, message: str) -> None:
    await uow.execute(
        update(invites)
        .where(invites.c.code == code, invites.c.job_id == job_id, invites.c.job_status == JOB_PROCESSING)
        .values(job_status=JOB_FAILED, job_error=message[:500], job_completed_at=now_ms)
    )


async def target_ids(uow: UnitOfWork, code: str) -> list[int]:
    rows = await uow.execute(
        select(invite_targets.c.user_id).where(invite_targets.c.code == code).order_by(invite_targets.c.user_id)
    )
    return list(rows.scalars())
