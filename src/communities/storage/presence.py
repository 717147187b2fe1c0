"""Which users have an update stream open, for temporary memberships: one row per stream, heartbeated by the
server holding it, kept a while after it closes (its heartbeat is then the time it closed)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, delete, exists, or_, select, update

from communities.storage.database import Database, Prepared, UnitOfWork
from communities.storage.tables import members, stream_presence, tokens

# An open stream whose server stopped refreshing it for this long died with that server: it counts as closed
# at its last heartbeat.
STALE_MS = 30_000

_OPEN = Prepared(
    stream_presence.insert().values(
        stream_id=bindparam("stream_id"), user_id=bindparam("user_id"), heartbeat_at=bindparam("now"), open=True
    )
)


async def opened(uow: UnitOfWork, stream_id: str, user_id: int, now_ms: int) -> None:
    await uow.execute(_OPEN, {"stream_id": stream_id, "user_id": user_id, "now": now_ms})


async def heartbeat(uow: UnitOfWork, stream_ids: Sequence[str], now_ms: int, *, closing: bool = False) -> None:
    if stream_ids:
        values = {"heartbeat_at": now_ms, **({"open": False} if closing else {})}
        await uow.execute(update(stream_presence).where(stream_presence.c.stream_id.in_(stream_ids)).values(values))


async def forget_before(uow: UnitOfWork, before_ms: int) -> None:
    await uow.execute(delete(stream_presence).where(stream_presence.c.heartbeat_at < before_ms))


async def expired_temporary_members(uow: UnitOfWork, now_ms: int, grace_ms: int, limit: int) -> list[tuple[int, int]]:
    """(community_id, user_id) of temporary members who joined more than `grace_ms` ago and have had no stream
    open for `grace_ms`: none open now (with a fresh heartbeat), none closed within the grace period."""
    cutoff_ms = now_ms - grace_ms
    seen = exists().where(
        and_(
            stream_presence.c.user_id == members.c.user_id,
            or_(
                and_(stream_presence.c.open.is_(True), stream_presence.c.heartbeat_at >= now_ms - STALE_MS),
                stream_presence.c.heartbeat_at >= cutoff_ms,
            ),
        )
    )
    rows = await uow.execute(
        select(members.c.community_id, members.c.user_id)
        .where(members.c.temporary.is_(True), members.c.joined_at < cutoff_ms, ~seen)
        .limit(limit)
    )
    return [(row.community_id, row.user_id) for row in rows]


async def live_credentials(db: Database, hashes: Sequence[bytes]) -> set[bytes]:
    """The token hashes among `hashes` that still exist (not revoked)."""
    if not hashes:
        return set()
    async with db.unit_of_work(write=False) as uow:
        rows = await uow.execute(select(tokens.c.token_hash).where(tokens.c.token_hash.in_(list(hashes))))
        return {bytes(row.token_hash) for row in rows}
