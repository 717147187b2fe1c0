"""Queries for members, their roles, and bans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, bindparam, cast, delete, false, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from communities.storage.database import Prepared, UnitOfWork, dialect_insert
from communities.storage.repository import release_membership_slots
from communities.storage.tables import bans, member_roles, members


@dataclass(frozen=True)
class MemberRecord:
    user_id: int
    community_id: int
    role_ids: tuple[int, ...]
    nickname: str | None
    joined_at_ms: int
    invite_code: str | None


@dataclass(frozen=True)
class BanRecord:
    user_id: int
    until_ms: int | None
    reason: str
    banned_by: int
    created_at_ms: int


_COLUMNS = (
    members.c.user_id,
    members.c.community_id,
    members.c.nickname,
    members.c.joined_at,
    members.c.invite_code,
)


_ROLES_OF_MEMBERS = Prepared(
    select(member_roles.c.user_id, member_roles.c.role_id)
    .where(
        member_roles.c.community_id == bindparam("community_id"),
        member_roles.c.user_id.in_(bindparam("user_ids", expanding=True)),
    )
    .order_by(member_roles.c.role_id)
)


async def _with_roles(uow: UnitOfWork, community_id: int, rows) -> list[MemberRecord]:
    rows = list(rows)
    if not rows:
        return []
    held: dict[int, list[int]] = {}
    params = {"community_id": community_id, "user_ids": [row.user_id for row in rows]}
    for row in await uow.execute(_ROLES_OF_MEMBERS, params):
        held.setdefault(row.user_id, []).append(row.role_id)
    return [
        MemberRecord(
            user_id=row.user_id,
            community_id=row.community_id,
            role_ids=tuple(held.get(row.user_id, ())),
            nickname=row.nickname,
            joined_at_ms=row.joined_at,
            invite_code=row.invite_code,
        )
        for row in rows
    ]


# Members with their roles in one statement: one row per (member, role), or one with a NULL role_id.
_MEMBERS_WITH_ROLES = Prepared(
    select(*_COLUMNS, member_roles.c.role_id)
    .select_from(members)
    .outerjoin(
        member_roles,
        (member_roles.c.community_id == members.c.community_id) & (member_roles.c.user_id == members.c.user_id),
    )
    .where(
        members.c.community_id == bindparam("community_id"),
        members.c.user_id.in_(bindparam("user_ids", expanding=True)),
    )
    .order_by(members.c.user_id, member_roles.c.role_id)
)


async def get_members(uow: UnitOfWork, community_id: int, user_ids: Sequence[int]) -> list[MemberRecord]:
    if not user_ids:
        return []
    rows = await uow.execute(_MEMBERS_WITH_ROLES, {"community_id": community_id, "user_ids": list(user_ids)})
    held: dict[int, list[int]] = {}
    first: dict[int, object] = {}
    for row in rows:
        first.setdefault(row.user_id, row)
        if row.role_id is not None:
            held.setdefault(row.user_id, []).append(row.role_id)
    by_id = {
        user_id: MemberRecord(
            user_id=user_id,
            community_id=row.community_id,
            role_ids=tuple(held.get(user_id, ())),
            nickname=row.nickname,
            joined_at_ms=row.joined_at,
            invite_code=row.invite_code,
        )
        for user_id, row in first.items()
    }
    return [by_id[user_id] for user_id in user_ids if user_id in by_id]


async def list_members(uow: UnitOfWork, community_id: int, after_user_id: int | None, limit: int) -> list[MemberRecord]:
    query = select(*_COLUMNS).where(members.c.community_id == community_id)
    if after_user_id is not None:
        query = query.where(members.c.user_id > after_user_id)
    rows = await uow.execute(query.order_by(members.c.user_id).limit(limit))
    return await _with_roles(uow, community_id, rows)


async def insert_member(
    uow: UnitOfWork,
    community_id: int,
    user_id: int,
    now_ms: int,
    invite_code: str | None = None,
    *,
    temporary: bool = False,
) -> bool:
    """Adds the membership unless it exists (ON CONFLICT DO NOTHING). True if it was added."""
    params = {
        "community_id": community_id,
        "user_id": user_id,
        "joined_at": now_ms,
        "invite_code": invite_code,
        "temporary": temporary,
    }
    return (await uow.execute(_INSERT_MEMBER, params)).rowcount == 1


_INSERT_MEMBER = Prepared.insert_or_ignore(
    members,
    [members.c.community_id, members.c.user_id],
    community_id=bindparam("community_id"),
    user_id=bindparam("user_id"),
    joined_at=bindparam("joined_at"),
    invite_code=bindparam("invite_code"),
    muted=False,
    temporary=bindparam("temporary"),
)


def _insert_unless_banned(dialect_insert):
    def value(name: str):
        return bindparam(name, type_=members.c[name].type)

    banned = select(bans.c.user_id).where(
        bans.c.community_id == value("community_id"),
        bans.c.user_id == value("user_id"),
        or_(bans.c.until_ms.is_(None), bans.c.until_ms > bindparam("now_ms", type_=bans.c.until_ms.type)),
    )
    row = select(
        value("community_id"),
        value("user_id"),
        value("joined_at"),
        value("invite_code"),
        false(),
        cast(value("temporary"), Boolean),  # typed: PostgreSQL infers nothing from a SELECT list
    ).where(~banned.exists())
    columns = ["community_id", "user_id", "joined_at", "invite_code", "muted", "temporary"]
    return dialect_insert(members).from_select(columns, row).on_conflict_do_nothing(index_elements=_MEMBER_PK)


_MEMBER_PK = [members.c.community_id, members.c.user_id]
_INSERT_UNLESS_BANNED = Prepared(
    _insert_unless_banned(sqlite.insert), postgresql=_insert_unless_banned(postgresql.insert)
)


async def insert_member_unless_banned(
    uow: UnitOfWork, community_id: int, user_id: int, now_ms: int, invite_code: str | None, *, temporary: bool
) -> bool:
    """insert_member, in the same statement as the check that the user is not banned: True if it was added,
    False if already a member or banned (is_banned tells which; only then is it asked)."""
    params = {
        "community_id": community_id,
        "user_id": user_id,
        "joined_at": now_ms,
        "invite_code": invite_code,
        "temporary": temporary,
        "now_ms": now_ms,
    }
    return (await uow.execute(_INSERT_UNLESS_BANNED, params)).rowcount == 1


_MAKE_PERMANENT = Prepared(
    update(members)
    .where(
        members.c.community_id == bindparam("community_id"),
        members.c.user_id == bindparam("user_id"),
        members.c.temporary.is_(True),
    )
    .values(temporary=False)
)


async def make_permanent(uow: UnitOfWork, community_id: int, user_id: int) -> None:
    """A temporary member given a role stays."""
    await uow.execute(_MAKE_PERMANENT, {"community_id": community_id, "user_id": user_id})


async def delete_member(uow: UnitOfWork, community_id: int, user_id: int, *, only_temporary: bool = False) -> bool:
    """Removes the membership and its roles; frees the user's membership slot. False if not a member (or, with
    `only_temporary`, not a temporary one)."""
    condition = (members.c.community_id == community_id) & (members.c.user_id == user_id)
    if only_temporary:
        condition &= members.c.temporary.is_(True)
    result = await uow.execute(delete(members).where(condition))
    if result.rowcount != 1:
        return False
    await uow.execute(
        delete(member_roles).where(member_roles.c.community_id == community_id, member_roles.c.user_id == user_id)
    )
    await release_membership_slots(uow, [user_id])
    return True


_MEMBER_KEY = (members.c.community_id == bindparam("community_id")) & (members.c.user_id == bindparam("user_id"))
_LOCK_MEMBER = Prepared(select(members.c.user_id).where(_MEMBER_KEY).with_for_update())
_SET_MUTED = Prepared(update(members).where(_MEMBER_KEY).values(muted=bindparam("muted")))
_SET_NICKNAME = Prepared(update(members).where(_MEMBER_KEY).values(nickname=bindparam("nickname")))


async def lock_member(uow: UnitOfWork, community_id: int, user_id: int) -> None:
    """Locks the membership row until the transaction ends (PostgreSQL; SQLite transactions already take turns)."""
    await uow.execute(_LOCK_MEMBER, {"community_id": community_id, "user_id": user_id})


async def set_member_muted(uow: UnitOfWork, community_id: int, user_id: int, muted: bool) -> None:
    await uow.execute(_SET_MUTED, {"community_id": community_id, "user_id": user_id, "muted": muted})


async def set_nickname(uow: UnitOfWork, community_id: int, user_id: int, nickname: str | None) -> None:
    await uow.execute(_SET_NICKNAME, {"community_id": community_id, "user_id": user_id, "nickname": nickname})


async def add_roles(uow: UnitOfWork, community_id: int, user_id: int, role_ids: Sequence[int]) -> list[int]:
    """Grants the roles; returns the ones inserted, as the database reports them (INSERT ... ON CONFLICT
    DO NOTHING RETURNING). A role the member already holds, or that a racing transaction granted first (PostgreSQL
    makes this insert wait for that one to commit), is not counted: callers may pay for what this returns (an
    invite use) without a read that could be stale by the time they write."""
    role_ids = list(dict.fromkeys(role_ids))
    if not role_ids:
        return []
    if len(role_ids) == 1:  # the usual invite: one prepared statement
        params = {"community_id": community_id, "user_id": user_id, "role_id": role_ids[0]}
        return [row.role_id for row in await uow.execute(_GRANT_ROLE, params)]
    statement = (
        dialect_insert(uow, member_roles)
        .values([{"community_id": community_id, "user_id": user_id, "role_id": role_id} for role_id in role_ids])
        .on_conflict_do_nothing(index_elements=_MEMBER_ROLE_KEY)
        .returning(member_roles.c.role_id)
    )
    return [row.role_id for row in await uow.execute(statement)]


_MEMBER_ROLE_KEY = [member_roles.c.community_id, member_roles.c.user_id, member_roles.c.role_id]
_GRANT_ROLE_VALUES = {
    "community_id": bindparam("community_id"),
    "user_id": bindparam("user_id"),
    "role_id": bindparam("role_id"),
}
_GRANT_ROLE = Prepared(
    sqlite.insert(member_roles)
    .values(**_GRANT_ROLE_VALUES)
    .on_conflict_do_nothing(index_elements=_MEMBER_ROLE_KEY)
    .returning(member_roles.c.role_id),
    postgresql=postgresql.insert(member_roles)
    .values(**_GRANT_ROLE_VALUES)
    .on_conflict_do_nothing(index_elements=_MEMBER_ROLE_KEY)
    .returning(member_roles.c.role_id),
)


_REMOVE_ROLES = Prepared(
    delete(member_roles).where(
        member_roles.c.community_id == bindparam("community_id"),
        member_roles.c.user_id == bindparam("user_id"),
        member_roles.c.role_id.in_(bindparam("role_ids", expanding=True)),
    )
)


async def remove_roles(uow: UnitOfWork, community_id: int, user_id: int, role_ids: Sequence[int]) -> None:
    if role_ids:
        params = {"community_id": community_id, "user_id": user_id, "role_ids": list(role_ids)}
        await uow.execute(_REMOVE_ROLES, params)


_COUNT_MEMBERS = Prepared(
    select(func.count().label("count")).where(members.c.community_id == bindparam("community_id"))
)


async def count_members(uow: UnitOfWork, community_id: int) -> int:
    """A scan of the community's members: callers on hot paths reuse it (services/invites.py)."""
    return (await uow.execute(_COUNT_MEMBERS, {"community_id": community_id})).scalar_one()


# ------------------------------------------------------------------------------------------------------ bans


def _active(now_ms: int):
    return or_(bans.c.until_ms.is_(None), bans.c.until_ms > now_ms)


async def upsert_ban(
    uow: UnitOfWork, community_id: int, user_id: int, until_ms: int | None, reason: str, banned_by: int, now_ms: int
) -> None:
    values = {"until_ms": until_ms, "reason": reason, "banned_by": banned_by, "created_at": now_ms}
    statement = dialect_insert(uow, bans).values(community_id=community_id, user_id=user_id, **values)
    await uow.execute(
        statement.on_conflict_do_update(index_elements=[bans.c.community_id, bans.c.user_id], set_=values)
    )


_BANNED = Prepared(
    select(bans.c.user_id).where(
        bans.c.community_id == bindparam("community_id"),
        bans.c.user_id == bindparam("user_id"),
        or_(bans.c.until_ms.is_(None), bans.c.until_ms > bindparam("now_ms")),
    )
)


async def is_banned(uow: UnitOfWork, community_id: int, user_id: int, now_ms: int) -> bool:
    params = {"community_id": community_id, "user_id": user_id, "now_ms": now_ms}
    return (await uow.execute(_BANNED, params)).first() is not None


async def list_bans(
    uow: UnitOfWork, community_id: int, now_ms: int, after_user_id: int | None, limit: int
) -> list[BanRecord]:
    query = select(bans).where(bans.c.community_id == community_id, _active(now_ms))
    if after_user_id is not None:
        query = query.where(bans.c.user_id > after_user_id)
    rows = await uow.execute(query.order_by(bans.c.user_id).limit(limit))
    return [
        BanRecord(
            user_id=row.user_id,
            until_ms=row.until_ms,
            reason=row.reason,
            banned_by=row.banned_by,
            created_at_ms=row.created_at,
        )
        for row in rows
    ]


async def delete_bans(uow: UnitOfWork, community_id: int, user_ids: Sequence[int]) -> list[int]:
    """Lifts the bans; returns the users who were banned."""
    if not user_ids:
        return []
    result = await uow.execute(
        delete(bans)
        .where(bans.c.community_id == community_id, bans.c.user_id.in_(list(user_ids)))
        .returning(bans.c.user_id)
    )
    return [row.user_id for row in result]
