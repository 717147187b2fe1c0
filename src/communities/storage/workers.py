"""Leases on snowflake worker ids, so that two servers sharing a database never mint the same ids."""

from __future__ import annotations

from sqlalchemy import delete, update

from communities.storage.database import UnitOfWork, dialect_insert
from communities.storage.tables import server_workers


async def claim(uow: UnitOfWork, worker_id: int, instance: str, now_ms: int, lease_ms: int) -> bool:
    """Takes the lease if it is free or its holder stopped renewing it; False if a live server holds it."""
    statement = dialect_insert(uow, server_workers).values(worker_id=worker_id, instance=instance, heartbeat_at=now_ms)
    statement = statement.on_conflict_do_update(
        index_elements=[server_workers.c.worker_id],
        set_={"instance": instance, "heartbeat_at": now_ms},
        where=server_workers.c.heartbeat_at < now_ms - lease_ms,
    )
    return (await uow.execute(statement)).rowcount == 1


async def renew(uow: UnitOfWork, worker_id: int, instance: str, now_ms: int) -> bool:
    result = await uow.execute(
        update(server_workers)
        .where(server_workers.c.worker_id == worker_id, server_workers.c.instance == instance)
        .values(heartbeat_at=now_ms)
    )
    return result.rowcount == 1


async def release(uow: UnitOfWork, worker_id: int, instance: str) -> None:
    await uow.execute(
        delete(server_workers).where(server_workers.c.worker_id == worker_id, server_workers.c.instance == instance)
    )
