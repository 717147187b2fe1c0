"""One-time sign-in links for the web console: stored as the SHA-256 of their code; redeemed by one conditional
UPDATE ... RETURNING, so of any number of racing redeems (on any replica) exactly one gets the user."""

from __future__ import annotations

from sqlalchemy import delete, insert, update

from communities.storage.database import UnitOfWork
from communities.storage.tables import console_login_links as links


async def insert_link(uow: UnitOfWork, code_hash: bytes, user_id: int, now_ms: int, expires_ms: int) -> None:
    await uow.execute(
        insert(links).values(code_hash=code_hash, user_id=user_id, created_at=now_ms, expires_at=expires_ms)
    )


async def redeem(uow: UnitOfWork, code_hash: bytes, now_ms: int) -> int | None:
    """Mark the link used if it is unused and unexpired at this instant; its user id, or None."""
    statement = (
        update(links)
        .where(links.c.code_hash == code_hash, links.c.used_at.is_(None), links.c.expires_at > now_ms)
        .values(used_at=now_ms)
        .returning(links.c.user_id)
    )
    row = (await uow.execute(statement)).first()
    return None if row is None else row.user_id


async def delete_expired(uow: UnitOfWork, now_ms: int) -> int:
    return (await uow.execute(delete(links).where(links.c.expires_at <= now_ms))).rowcount
