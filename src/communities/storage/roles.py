"""Queries for roles and who holds them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Row

from communities.storage.database import Prepared, UnitOfWork
from communities.storage.tables import communities, member_roles, roles


@dataclass(frozen=True)
class RoleRecord:
    id: int
    community_id: int
    name: str
    permissions: int
    priority: int
    color: int
    separated: bool
    public: bool


_COLUMNS = (
    roles.c.id,
    roles.c.community_id,
    roles.c.name,
    roles.c.permissions,
    roles.c.priority,
    roles.c.color,
    roles.c.separated,
    roles.c.public,
)


def _role(row: Row) -> RoleRecord:
    return RoleRecord(
        id=row.id,
        community_id=row.community_id,
        name=row.name,
        permissions=row.permissions,
        priority=row.priority,
        color=row.color,
        separated=bool(row.separated),
        public=bool(row.public),
    )


async def roles_of(uow: UnitOfWork, community_id: int) -> list[RoleRecord]:
    """Highest priority first."""
    rows = await uow.execute(
        select(*_COLUMNS).where(roles.c.community_id == community_id).order_by(roles.c.priority.desc(), roles.c.id)
    )
    return [_role(row) for row in rows]


async def get_role(uow: UnitOfWork, community_id: int, role_id: int) -> RoleRecord | None:
    row = (
        await uow.execute(select(*_COLUMNS).where(roles.c.id == role_id, roles.c.community_id == community_id))
    ).first()
    return _role(row) if row else None


_ROLES_BY_ID = Prepared(
    select(*_COLUMNS).where(
        roles.c.community_id == bindparam("community_id"), roles.c.id.in_(bindparam("role_ids", expanding=True))
    )
)


async def roles_by_id(uow: UnitOfWork, community_id: int, role_ids: Iterable[int]) -> dict[int, RoleRecord]:
    ids = list(role_ids)
    if not ids:
        return {}
    rows = await uow.execute(_ROLES_BY_ID, {"community_id": community_id, "role_ids": ids})
    return {row.id: _role(row) for row in rows}


_CLAIM_ROLE_SLOT = Prepared(
    update(communities)
    .where(communities.c.id == bindparam("community_id"), communities.c.role_count < bindparam("limit"))
    .values(role_count=communities.c.role_count + 1)
)


async def claim_role_slot(uow: UnitOfWork, community_id: int, limit: int) -> bool:
    result = await uow.execute(_CLAIM_ROLE_SLOT, {"community_id": community_id, "limit": limit})
    return result.rowcount == 1


_ROLE_FIELDS = tuple(RoleRecord.__dataclass_fields__)
_INSERT_ROLE = Prepared(insert(roles).values(**{name: bindparam(name) for name in _ROLE_FIELDS}))


async def insert_role(uow: UnitOfWork, role: RoleRecord) -> None:
    await uow.execute(_INSERT_ROLE, {name: getattr(role, name) for name in _ROLE_FIELDS})


async def update_role(uow: UnitOfWork, role_id: int, **values) -> None:
    if values:
        await uow.execute(update(roles).where(roles.c.id == role_id).values(**values))


async def delete_role(uow: UnitOfWork, community_id: int, role_id: int) -> bool:
    """Deletes the role; members lose it (ON DELETE CASCADE); frees its slot. Overrides: see channels."""
    await uow.execute(delete(member_roles).where(member_roles.c.role_id == role_id))
    result = await uow.execute(delete(roles).where(roles.c.id == role_id, roles.c.community_id == community_id))
    if result.rowcount != 1:
        return False
    await uow.execute(
        update(communities).where(communities.c.id == community_id).values(role_count=communities.c.role_count - 1)
    )
    return True


async def set_default_permissions(uow: UnitOfWork, community_id: int, permissions: int) -> None:
    await uow.execute(
        update(communities).where(communities.c.id == community_id).values(default_permissions=permissions)
    )
