"""Queries. The only code besides tables.py and migrations that knows SQL; every function takes a unit of work.

Each function is one or two statements built with SQLAlchemy Core, valid on SQLite and PostgreSQL alike.
Invariants that racing calls could break are kept by the statements themselves (conditional UPDATEs, primary
keys), never by a read followed by a write in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Boolean, Integer, bindparam, delete, func, insert, or_, select, type_coerce, update
from sqlalchemy.engine import Row

from communities.domain.permissions import MemberContext, Role
from communities.storage.database import Database, Prepared, UnitOfWork, dialect_insert
from communities.storage.tables import (
    communities,
    jwt_identities,
    member_roles,
    members,
    roles,
    token_revocations,
    tokens,
    users,
)

# ---------------------------------------------------------------------------------------------- users / tokens


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    bot: bool


def _user(row: Row) -> UserRecord:
    return UserRecord(id=row.id, name=row.name, bot=bool(row.bot))


async def insert_user(uow: UnitOfWork, user_id: int, name: str, bot: bool, now_ms: int) -> None:
    await uow.execute(insert(users).values(id=user_id, name=name, bot=bot, community_count=0, created_at=now_ms))


async def insert_token(
    uow: UnitOfWork, token_hash: bytes, user_id: int, now_ms: int, expires_ms: int | None = None
) -> None:
    await uow.execute(
        insert(tokens).values(token_hash=token_hash, user_id=user_id, created_at=now_ms, expires_at=expires_ms)
    )


_USER_BY_TOKEN_HASH = Prepared(
    select(users.c.id, users.c.name, users.c.bot, tokens.c.expires_at)
    .join(tokens, tokens.c.user_id == users.c.id)
    .where(tokens.c.token_hash == bindparam("token_hash"))
)


async def user_by_token_hash(db: Database, token_hash: bytes, now_ms: int) -> tuple[UserRecord, int | None] | None:
    """The token's user and when the token expires (None: never); None for an unknown or expired token."""
    rows = await db.read(_USER_BY_TOKEN_HASH, {"token_hash": token_hash})
    if not rows or (rows[0].expires_at is not None and rows[0].expires_at <= now_ms):
        return None
    return _user(rows[0]), rows[0].expires_at


async def delete_expired_tokens(uow: UnitOfWork, now_ms: int) -> int:
    return (await uow.execute(delete(tokens).where(tokens.c.expires_at <= now_ms))).rowcount


async def get_user(uow: UnitOfWork, user_id: int) -> UserRecord | None:
    row = (await uow.execute(select(users.c.id, users.c.name, users.c.bot).where(users.c.id == user_id))).first()
    return _user(row) if row else None


async def get_users(uow: UnitOfWork, user_ids: Sequence[int]) -> list[UserRecord]:
    if not user_ids:
        return []
    rows = await uow.execute(select(users.c.id, users.c.name, users.c.bot).where(users.c.id.in_(list(user_ids))))
    by_id = {row.id: _user(row) for row in rows}
    return [by_id[user_id] for user_id in user_ids if user_id in by_id]


async def delete_token(uow: UnitOfWork, token_hash: bytes) -> int:
    return (await uow.execute(delete(tokens).where(tokens.c.token_hash == token_hash))).rowcount


async def delete_user_tokens(uow: UnitOfWork, user_id: int) -> int:
    return (await uow.execute(delete(tokens).where(tokens.c.user_id == user_id))).rowcount


async def delete_token_returning_user(uow: UnitOfWork, token_hash: bytes) -> int | None:
    """Delete one token; the user it belonged to, or None when there was no such token."""
    row = (await uow.execute(select(tokens.c.user_id).where(tokens.c.token_hash == token_hash))).first()
    if row is None:
        return None
    await uow.execute(delete(tokens).where(tokens.c.token_hash == token_hash))
    return row.user_id


@dataclass(frozen=True)
class UserDetail:
    user: UserRecord
    created_at: int
    community_count: int
    token_count: int
    identities: list[tuple[str, str]]  # (issuer, subject) of the JSON Web Tokens that sign in as this user


async def list_users(uow: UnitOfWork, *, name: str | None, after_id: int, limit: int) -> list[UserRecord]:
    """Users by id, those after `after_id`; `name`: only names containing it (case-insensitive)."""
    statement = select(users.c.id, users.c.name, users.c.bot).where(users.c.id > after_id)
    if name:
        escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(func.lower(users.c.name).like(f"%{escaped}%", escape="\\"))
    rows = await uow.execute(statement.order_by(users.c.id).limit(limit))
    return [_user(row) for row in rows]


async def user_detail(uow: UnitOfWork, user_id: int) -> UserDetail | None:
    row = (
        await uow.execute(
            select(users.c.id, users.c.name, users.c.bot, users.c.created_at, users.c.community_count).where(
                users.c.id == user_id
            )
        )
    ).first()
    if row is None:
        return None
    token_count = (
        await uow.execute(select(func.count()).select_from(tokens).where(tokens.c.user_id == user_id))
    ).scalar_one()
    identities = await uow.execute(
        select(jwt_identities.c.issuer, jwt_identities.c.subject)
        .where(jwt_identities.c.user_id == user_id)
        .order_by(jwt_identities.c.issuer, jwt_identities.c.subject)
    )
    return UserDetail(
        user=_user(row),
        created_at=row.created_at,
        community_count=row.community_count,
        token_count=token_count,
        identities=[(identity.issuer, identity.subject) for identity in identities],
    )


# ----------------------------------------------------------------------------- player identities (JWT)

_USER_BY_IDENTITY = Prepared(
    select(users.c.id, users.c.name, users.c.bot)
    .join(jwt_identities, jwt_identities.c.user_id == users.c.id)
    .where(jwt_identities.c.issuer == bindparam("issuer"), jwt_identities.c.subject == bindparam("subject"))
)


async def user_by_identity(db: Database, issuer: str, subject: str) -> UserRecord | None:
    rows = await db.read(_USER_BY_IDENTITY, {"issuer": issuer, "subject": subject})
    return _user(rows[0]) if rows else None


async def claim_identity(
    uow: UnitOfWork, issuer: str, subject: str, user_id: int, name: str, now_ms: int
) -> UserRecord:
    """The user of (issuer, subject), created as `user_id` named `name` unless a racing transaction created it
    first: the primary key decides (INSERT ... ON CONFLICT DO NOTHING), and the loser's new user row goes."""
    await uow.execute(insert(users).values(id=user_id, name=name, bot=False, community_count=0, created_at=now_ms))
    inserted = await uow.execute(
        dialect_insert(uow, jwt_identities)
        .values(issuer=issuer, subject=subject, user_id=user_id, created_at=now_ms)
        .on_conflict_do_nothing(index_elements=["issuer", "subject"])
    )
    if inserted.rowcount == 1:
        return UserRecord(user_id, name, False)
    await uow.execute(delete(users).where(users.c.id == user_id))
    row = (
        await uow.execute(
            select(users.c.id, users.c.name, users.c.bot)
            .join(jwt_identities, jwt_identities.c.user_id == users.c.id)
            .where(jwt_identities.c.issuer == issuer, jwt_identities.c.subject == subject)
        )
    ).one()
    return _user(row)


# ------------------------------------------------------------------------------------------- revocation feed


async def record_revocation(uow: UnitOfWork, *, token_hash: bytes | None, user_id: int | None, now_ms: int) -> None:
    await uow.execute(insert(token_revocations).values(token_hash=token_hash, user_id=user_id, revoked_at=now_ms))


_REVOCATIONS_SINCE = Prepared(
    select(token_revocations.c.id, token_revocations.c.token_hash, token_revocations.c.user_id).where(
        token_revocations.c.revoked_at >= bindparam("since")
    )
)


async def revocations_since(db: Database, since_ms: int) -> list[tuple[int, bytes | None, int | None]]:
    rows = await db.read(_REVOCATIONS_SINCE, {"since": since_ms})
    return [(row.id, bytes(row.token_hash) if row.token_hash is not None else None, row.user_id) for row in rows]


async def forget_revocations_before(uow: UnitOfWork, before_ms: int) -> int:
    return (await uow.execute(delete(token_revocations).where(token_revocations.c.revoked_at < before_ms))).rowcount


_CLAIM_MEMBERSHIP_SLOT = Prepared(
    update(users)
    .where(users.c.id == bindparam("user_id"), or_(users.c.bot, users.c.community_count < bindparam("limit")))
    .values(community_count=users.c.community_count + 1)
)


async def claim_membership_slot(uow: UnitOfWork, user_id: int, limit: int) -> bool:
    """Count one more membership for the user unless a person is at `limit` (bots have none). Atomic."""
    result = await uow.execute(_CLAIM_MEMBERSHIP_SLOT, {"user_id": user_id, "limit": limit})
    return result.rowcount == 1


async def release_membership_slots(uow: UnitOfWork, user_ids: Iterable[int]) -> None:
    ids = list(user_ids)
    if ids:
        await uow.execute(update(users).where(users.c.id.in_(ids)).values(community_count=users.c.community_count - 1))


# ------------------------------------------------------------------------------------------------ communities


@dataclass(slots=True)  # built for every community on hot paths: plain slots are cheapest
class CommunityRecord:
    id: int
    name: str
    owner_id: int
    default_permissions: int
    photo_file_id: int | None
    photo_preview: bytes | None
    system_channel_id: int | None
    join_messages: bool
    channels_version: int


@dataclass(slots=True)  # built for every community on hot paths: plain slots are cheapest
class Membership:
    """A community together with what the engine needs about one member of it."""

    community: CommunityRecord
    member: MemberContext
    muted: bool


_COMMUNITY_COLUMNS = (
    communities.c.id,
    communities.c.name,
    communities.c.owner_id,
    communities.c.default_permissions,
    communities.c.photo_file_id,
    communities.c.photo_preview,
    communities.c.system_channel_id,
    communities.c.join_messages,
    communities.c.channels_version,
)


def _community(row: Row) -> CommunityRecord:
    return CommunityRecord(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        default_permissions=row.default_permissions,
        photo_file_id=row.photo_file_id,
        photo_preview=row.photo_preview,
        system_channel_id=row.system_channel_id,
        join_messages=bool(row.join_messages),
        channels_version=row.channels_version,
    )


def _membership(row: Row, member_roles_: tuple[Role, ...], user_id: int) -> Membership:
    community = _community(row)
    return Membership(
        community=community,
        member=MemberContext(
            community_id=community.id,
            is_owner=community.owner_id == user_id,
            default_permissions=community.default_permissions,
            roles=member_roles_,
        ),
        muted=bool(row.muted),
    )


# Memberships with the roles held in each: one row per (community, role), or one row with NULL role columns for a
# community where the member holds none.
#
# Read on almost every call: its booleans come back as SQLite's 0/1 (_membership and _community apply bool()), so
# that its rows need no per-value conversion.
_MEMBERSHIP_ROWS = (
    select(
        *(
            type_coerce(column, Integer).label(column.key) if isinstance(column.type, Boolean) else column
            for column in _COMMUNITY_COLUMNS
        ),
        type_coerce(members.c.muted, Integer).label("muted"),
        roles.c.id.label("role_id"),
        roles.c.permissions.label("role_permissions"),
        roles.c.priority.label("role_priority"),
    )
    .select_from(members)
    .join(communities, communities.c.id == members.c.community_id)
    .outerjoin(
        member_roles,
        (member_roles.c.community_id == members.c.community_id) & (member_roles.c.user_id == members.c.user_id),
    )
    .outerjoin(roles, roles.c.id == member_roles.c.role_id)
)
# One member's standing in one community, in one statement.
_MEMBERSHIP = Prepared(
    _MEMBERSHIP_ROWS.where(
        members.c.community_id == bindparam("community_id"), members.c.user_id == bindparam("user_id")
    )
)
# Every membership of a user.
_MEMBERSHIPS_OF = Prepared(
    _MEMBERSHIP_ROWS.where(members.c.user_id == bindparam("user_id")).order_by(members.c.joined_at, communities.c.id)
)


async def get_community(uow: UnitOfWork, community_id: int) -> CommunityRecord | None:
    row = (await uow.execute(select(*_COMMUNITY_COLUMNS).where(communities.c.id == community_id))).first()
    return _community(row) if row else None


async def membership(uow: UnitOfWork, community_id: int, user_id: int) -> Membership | None:
    """The community and the caller's standing in it, or None when the caller is not a member (or it is gone)."""
    rows = (await uow.execute(_MEMBERSHIP, {"community_id": community_id, "user_id": user_id})).all()
    return _membership_of_rows(rows, user_id)


async def read_membership(db: Database, community_id: int, user_id: int) -> Membership | None:
    """membership() as a statement on its own, outside any unit of work (one statement is consistent)."""
    return _membership_of_rows(await db.read(_MEMBERSHIP, {"community_id": community_id, "user_id": user_id}), user_id)


def _membership_of_rows(rows: list, user_id: int) -> Membership | None:
    if not rows:
        return None
    held = tuple(
        Role(id=row.role_id, permissions=row.role_permissions, priority=row.role_priority)
        for row in rows
        if row.role_id is not None
    )
    return _membership(rows[0], held, user_id)


async def memberships_of(db: Database, user_id: int) -> list[Membership]:
    """Every community the user is in, oldest membership first. One statement: consistent on its own."""
    return memberships_from_rows(await membership_rows(db, user_id), user_id)


async def membership_rows(db: Database, user_id: int) -> tuple:
    """memberships_of's rows, as read (hashable: a caller may key what it builds from them by them)."""
    return tuple(await db.read(_MEMBERSHIPS_OF, {"user_id": user_id}))


def memberships_from_rows(rows: tuple, user_id: int) -> list[Membership]:
    result: list[Membership] = []
    for index, row in enumerate(rows):
        if index and rows[index - 1].id == row.id:
            continue  # another role row of the community just built
        held = []
        for role_row in rows[index:]:
            if role_row.id != row.id:
                break
            if role_row.role_id is not None:
                held.append(
                    Role(id=role_row.role_id, permissions=role_row.role_permissions, priority=role_row.role_priority)
                )
        result.append(_membership(row, tuple(held), user_id))
    return result


async def insert_community(
    uow: UnitOfWork,
    *,
    community_id: int,
    name: str,
    owner_id: int,
    default_permissions: int,
    system_channel_id: int,
    now_ms: int,
) -> None:
    """The community, counting its first channel (`system_channel_id`, which the caller inserts in the same unit
    of work with channels.insert_channel(new_community=True)) and its first channels version."""
    params = {
        "id": community_id,
        "name": name,
        "owner_id": owner_id,
        "default_permissions": default_permissions,
        "system_channel_id": system_channel_id,
        "created_at": now_ms,
    }
    await uow.execute(_INSERT_COMMUNITY, params)


_INSERT_COMMUNITY = Prepared(
    insert(communities).values(
        id=bindparam("id"),
        name=bindparam("name"),
        owner_id=bindparam("owner_id"),
        default_permissions=bindparam("default_permissions"),
        system_channel_id=bindparam("system_channel_id"),
        join_messages=True,
        role_count=0,
        channel_count=1,
        channels_version=1,
        created_at=bindparam("created_at"),
    )
)


async def update_community(uow: UnitOfWork, community_id: int, **values) -> None:
    if values:
        await uow.execute(update(communities).where(communities.c.id == community_id).values(**values))


async def delete_community(uow: UnitOfWork, community_id: int) -> bool:
    """Deletes the community and, through ON DELETE CASCADE, its channels, roles, invites and overrides. The
    members go first, one statement that also says whose slots to free: the same lock order as a member leaving
    (membership row, then user row), so a racing leave and delete can neither deadlock nor free a slot twice.
    False if another call deleted it first."""
    removed = (
        await uow.execute(delete(members).where(members.c.community_id == community_id).returning(members.c.user_id))
    ).all()
    await release_membership_slots(uow, [row.user_id for row in removed])
    result = await uow.execute(delete(communities).where(communities.c.id == community_id))
    return result.rowcount == 1
