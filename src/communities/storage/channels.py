"""Queries for channels and their permission overrides."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row

from communities.domain.permissions import Override
from communities.storage.database import Prepared, UnitOfWork, dialect_insert
from communities.storage.tables import channel_overrides, channels, communities, member_roles


@dataclass(slots=True)  # built per channel on hot paths: plain slots are cheapest
class ChannelRecord:
    id: int
    community_id: int
    name: str
    type: int
    parent_id: int | None
    position: int


_COLUMNS = (
    channels.c.id,
    channels.c.community_id,
    channels.c.name,
    channels.c.type,
    channels.c.parent_id,
    channels.c.position,
)


def _channel(row: Row) -> ChannelRecord:
    return ChannelRecord(
        id=row.id,
        community_id=row.community_id,
        name=row.name,
        type=row.type,
        parent_id=row.parent_id,
        position=row.position,
    )


_BUMP_VERSION = Prepared(
    update(communities)
    .where(communities.c.id == bindparam("community_id"))
    .values(channels_version=communities.c.channels_version + 1)
)


async def _bump_version(uow: UnitOfWork, community_id) -> None:
    """Marks the community's channels as changed; `community_id` may be a scalar subquery."""
    if isinstance(community_id, int):
        await uow.execute(_BUMP_VERSION, {"community_id": community_id})
        return
    await uow.execute(
        update(communities)
        .where(communities.c.id == community_id)
        .values(channels_version=communities.c.channels_version + 1)
    )


def _community_of_channel(channel_id: int):
    return select(channels.c.community_id).where(channels.c.id == channel_id).scalar_subquery()


_CLAIM_CHANNEL_SLOT = Prepared(
    update(communities)
    .where(communities.c.id == bindparam("community_id"), communities.c.channel_count < bindparam("limit"))
    .values(channel_count=communities.c.channel_count + 1)
)


async def claim_channel_slot(uow: UnitOfWork, community_id: int, limit: int) -> bool:
    result = await uow.execute(_CLAIM_CHANNEL_SLOT, {"community_id": community_id, "limit": limit})
    return result.rowcount == 1


_INSERT_CHANNEL = Prepared(
    insert(channels).values(
        id=bindparam("id"),
        community_id=bindparam("community_id"),
        name=bindparam("name"),
        type=bindparam("type"),
        parent_id=bindparam("parent_id"),
        position=bindparam("position"),
        created_at=bindparam("created_at"),
    )
)


async def insert_channel(
    uow: UnitOfWork,
    *,
    channel_id: int,
    community_id: int,
    name: str,
    channel_type: int,
    parent_id: int | None,
    position: int,
    now_ms: int,
    new_community: bool = False,
) -> None:
    """`new_community`: the first channel of a community inserted in this unit of work, which already counts it
    (repository.insert_community): its version need not be bumped."""
    params = {
        "id": channel_id,
        "community_id": community_id,
        "name": name,
        "type": channel_type,
        "parent_id": parent_id,
        "position": position,
        "created_at": now_ms,
    }
    await uow.execute(_INSERT_CHANNEL, params)
    if not new_community:
        await _bump_version(uow, community_id)


_GET_CHANNEL = Prepared(select(*_COLUMNS).where(channels.c.id == bindparam("channel_id")))


async def get_channel(uow: UnitOfWork, channel_id: int) -> ChannelRecord | None:
    row = (await uow.execute(_GET_CHANNEL, {"channel_id": channel_id})).first()
    return _channel(row) if row else None


async def channel_in_community(uow: UnitOfWork, community_id: int, channel_id: int) -> ChannelRecord | None:
    channel = await get_channel(uow, channel_id)
    return channel if channel is not None and channel.community_id == community_id else None


_CHANNELS_OF = Prepared(
    select(*_COLUMNS)
    .where(channels.c.community_id == bindparam("community_id"))
    .order_by(channels.c.position, channels.c.id)
)


async def channels_of(uow: UnitOfWork, community_id: int) -> list[ChannelRecord]:
    rows = await uow.execute(_CHANNELS_OF, {"community_id": community_id})
    return [_channel(row) for row in rows]


_HIGHEST_POSITION = Prepared(
    select(func.max(channels.c.position).label("highest")).where(
        channels.c.community_id == bindparam("community_id"), channels.c.parent_id == bindparam("parent_id")
    )
)
_HIGHEST_TOP_POSITION = Prepared(
    select(func.max(channels.c.position).label("highest")).where(
        channels.c.community_id == bindparam("community_id"), channels.c.parent_id.is_(None)
    )
)


async def highest_position(uow: UnitOfWork, community_id: int, parent_id: int | None) -> int | None:
    """The highest position among the channels with this parent (None: top level); None when there are none.
    (Where a new channel goes is the service's rule: validation.position_after.)"""
    if parent_id is None:
        return (await uow.execute(_HIGHEST_TOP_POSITION, {"community_id": community_id})).scalar()
    params = {"community_id": community_id, "parent_id": parent_id}
    return (await uow.execute(_HIGHEST_POSITION, params)).scalar()


async def update_channel(uow: UnitOfWork, channel_id: int, **values) -> None:
    if values:
        await uow.execute(update(channels).where(channels.c.id == channel_id).values(**values))
        await _bump_version(uow, _community_of_channel(channel_id))


@dataclass(frozen=True)
class DeletedChannel:
    """What deleting a channel changed besides the channel itself."""

    children: list[ChannelRecord]  # a category's channels, moved out of it (parent_id now None)
    was_system_channel: bool  # the community's system channel is now None


async def delete_channel(uow: UnitOfWork, channel: ChannelRecord) -> DeletedChannel | None:
    """Deletes the channel (its overrides cascade), moves its children out of it, frees its slot; None when it
    was already gone."""
    result = await uow.execute(delete(channels).where(channels.c.id == channel.id))
    if result.rowcount != 1:
        return None
    moved = await uow.execute(
        update(channels).where(channels.c.parent_id == channel.id).values(parent_id=None).returning(*_COLUMNS)
    )
    children = sorted((_channel(row) for row in moved), key=lambda child: child.id)
    await _bump_version(uow, channel.community_id)
    await uow.execute(
        update(communities)
        .where(communities.c.id == channel.community_id)
        .values(channel_count=communities.c.channel_count - 1)
    )
    cleared = await uow.execute(
        update(communities)
        .where(communities.c.id == channel.community_id, communities.c.system_channel_id == channel.id)
        .values(system_channel_id=None)
    )
    return DeletedChannel(children, cleared.rowcount == 1)


# ------------------------------------------------------------------------------------------------ overrides


_OVERRIDES_OF = Prepared(
    select(channel_overrides.c.target_id, channel_overrides.c.allow, channel_overrides.c.deny).where(
        channel_overrides.c.channel_id == bindparam("channel_id")
    )
)


async def overrides_of(uow: UnitOfWork, channel_id: int) -> dict[int, Override]:
    rows = await uow.execute(_OVERRIDES_OF, {"channel_id": channel_id})
    return {row.target_id: Override(allow=row.allow, deny=row.deny) for row in rows}


_OVERRIDES_FOR_MEMBER = Prepared(
    select(
        channel_overrides.c.channel_id,
        channel_overrides.c.target_id,
        channel_overrides.c.allow,
        channel_overrides.c.deny,
    )
    .join(channels, channels.c.id == channel_overrides.c.channel_id)
    .where(
        channels.c.community_id == bindparam("community_id"),
        or_(
            channel_overrides.c.target_id == bindparam("community_id"),
            channel_overrides.c.target_id.in_(
                select(member_roles.c.role_id).where(
                    member_roles.c.community_id == bindparam("community_id"),
                    member_roles.c.user_id == bindparam("user_id"),
                )
            ),
        ),
    )
)


async def overrides_for_member(uow: UnitOfWork, community_id: int, user_id: int) -> dict[int, dict[int, Override]]:
    """The overrides in a community that can apply to one member (everyone's, and its roles'), per channel:
    channel id -> target id -> override. The others cannot change its permissions, so they are not read."""
    rows = await uow.execute(_OVERRIDES_FOR_MEMBER, {"community_id": community_id, "user_id": user_id})
    result: dict[int, dict[int, Override]] = {}
    for row in rows:
        result.setdefault(row.channel_id, {})[row.target_id] = Override(allow=row.allow, deny=row.deny)
    return result


async def upsert_override(uow: UnitOfWork, channel_id: int, target_id: int, override: Override) -> None:
    """Create or replace, atomically on both databases (ON CONFLICT DO UPDATE)."""
    statement = dialect_insert(uow, channel_overrides).values(
        channel_id=channel_id, target_id=target_id, allow=override.allow, deny=override.deny
    )
    statement = statement.on_conflict_do_update(
        index_elements=[channel_overrides.c.channel_id, channel_overrides.c.target_id],
        set_={"allow": statement.excluded.allow, "deny": statement.excluded.deny},
    )
    await uow.execute(statement)
    await _bump_version(uow, _community_of_channel(channel_id))


_INSERT_OVERRIDE = Prepared(
    insert(channel_overrides).values(
        channel_id=bindparam("channel_id"),
        target_id=bindparam("target_id"),
        allow=bindparam("allow"),
        deny=bindparam("deny"),
    )
)


async def copy_overrides(uow: UnitOfWork, from_channel_id: int, to_channel_id: int) -> dict[int, Override]:
    """Gives `to_channel_id` the overrides of `from_channel_id`; returns them."""
    overrides = await overrides_of(uow, from_channel_id)
    rows = [
        {"channel_id": to_channel_id, "target_id": target_id, "allow": override.allow, "deny": override.deny}
        for target_id, override in overrides.items()
    ]
    if rows:
        await uow.execute_many(_INSERT_OVERRIDE, rows)
    return overrides


async def delete_override(uow: UnitOfWork, channel_id: int, target_id: int) -> bool:
    result = await uow.execute(
        delete(channel_overrides).where(
            channel_overrides.c.channel_id == channel_id, channel_overrides.c.target_id == target_id
        )
    )
    if result.rowcount != 1:
        return False
    await _bump_version(uow, _community_of_channel(channel_id))
    return True


async def delete_overrides_for_target(uow: UnitOfWork, community_id: int, target_id: int) -> None:
    await uow.execute(delete(channel_overrides).where(channel_overrides.c.target_id == target_id))
    await _bump_version(uow, community_id)
