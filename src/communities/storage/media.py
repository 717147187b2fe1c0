"""Queries for uploads (parts kept in the database until used) and stored files (contents in the blob store).

The bytes an uploader's parts take are counted in its upload_quotas row by the same transactions that store,
replace and remove parts; each of them locks that row first, and the limit is a conditional UPDATE of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, or_, select, update

from communities.storage.database import Prepared, UnitOfWork, dialect_insert
from communities.storage.invites import JOB_COMPLETED
from communities.storage.tables import (
    blobs,
    communities,
    files,
    invite_targets,
    invites,
    members,
    upload_parts,
    upload_quotas,
)


@dataclass(frozen=True)
class FileRecord:
    id: int
    blob_key: str
    size: int
    mime: str


async def _lock_quota(uow: UnitOfWork, uploader_id: int) -> None:
    """Makes sure the uploader's counter row exists and locks it until the transaction ends (PostgreSQL; SQLite
    writers already take turns). Every write of the uploader's parts takes this lock first, so while it is held
    nobody else changes them, and each statement that follows sees them as they are."""
    await uow.execute(_CREATE_QUOTA, {"uploader_id": uploader_id})
    await uow.execute(
        select(upload_quotas.c.pending_bytes).where(upload_quotas.c.uploader_id == uploader_id).with_for_update()
    )


_CREATE_QUOTA = Prepared.insert_or_ignore(
    upload_quotas, [upload_quotas.c.uploader_id], uploader_id=bindparam("uploader_id"), pending_bytes=0
)


def _part_key(uploader_id: int, upload_id: int, part: int):
    return and_(
        upload_parts.c.uploader_id == uploader_id, upload_parts.c.upload_id == upload_id, upload_parts.c.part == part
    )


async def upsert_part(
    uow: UnitOfWork, uploader_id: int, upload_id: int, part: int, data: bytes, now_ms: int, max_pending: int
) -> bool:
    """Stores a part unless the uploader's pending bytes would pass `max_pending`; sending a part again replaces
    it and counts only the difference (idempotent retries). False (and nothing stored) if over the limit.

    The limit is one conditional UPDATE of the uploader's counter row: the database decides, and parallel calls
    take turns on the row."""
    await _lock_quota(uow, uploader_id)
    # What the part adds: its size, less what a copy already stored takes (read by the UPDATE itself, under the
    # lock, so no other call can have changed it in between).
    replaced = select(upload_parts.c.size).where(_part_key(uploader_id, upload_id, part)).scalar_subquery()
    delta = len(data) - func.coalesce(replaced, 0)
    reserved = await uow.execute(
        update(upload_quotas)
        .where(
            upload_quotas.c.uploader_id == uploader_id,
            or_(delta <= 0, upload_quotas.c.pending_bytes + delta <= max_pending),
        )
        .values(pending_bytes=upload_quotas.c.pending_bytes + delta)
        .returning(upload_quotas.c.pending_bytes)
    )
    if reserved.first() is None:
        return False
    statement = dialect_insert(uow, upload_parts).values(
        uploader_id=uploader_id, upload_id=upload_id, part=part, data=data, size=len(data), created_at=now_ms
    )
    statement = statement.on_conflict_do_update(
        index_elements=[upload_parts.c.uploader_id, upload_parts.c.upload_id, upload_parts.c.part],
        set_={"data": statement.excluded.data, "size": statement.excluded.size, "created_at": now_ms},
    )
    await uow.execute(statement)
    return True


async def _release(uow: UnitOfWork, uploader_id: int, size: int) -> None:
    if size:
        await uow.execute(
            update(upload_quotas)
            .where(upload_quotas.c.uploader_id == uploader_id)
            .values(pending_bytes=upload_quotas.c.pending_bytes - size)
        )


async def upload_sizes(uow: UnitOfWork, uploader_id: int, upload_id: int) -> dict[int, int]:
    rows = await uow.execute(
        select(upload_parts.c.part, upload_parts.c.size).where(
            upload_parts.c.uploader_id == uploader_id, upload_parts.c.upload_id == upload_id
        )
    )
    return {row.part: row.size for row in rows}


async def upload_data(uow: UnitOfWork, uploader_id: int, upload_id: int) -> bytes:
    rows = await uow.execute(
        select(upload_parts.c.data)
        .where(upload_parts.c.uploader_id == uploader_id, upload_parts.c.upload_id == upload_id)
        .order_by(upload_parts.c.part)
    )
    return b"".join(rows.scalars())


async def delete_upload(uow: UnitOfWork, uploader_id: int, upload_id: int) -> None:
    """Removes an upload's parts (used, or given up) and takes their bytes off the uploader's counter."""
    await _lock_quota(uow, uploader_id)
    sizes = await uow.execute(
        delete(upload_parts)
        .where(upload_parts.c.uploader_id == uploader_id, upload_parts.c.upload_id == upload_id)
        .returning(upload_parts.c.size)
    )
    await _release(uow, uploader_id, sum(sizes.scalars()))


async def delete_uploads_before(uow: UnitOfWork, before_ms: int) -> int:
    """Removes parts stored before `before_ms`, uploader by uploader, and takes their bytes off the counters.
    Each counter is locked before its parts, as every other writer of parts does, and in id order; the others
    lock one counter only, so nobody waits in a cycle. Returns how many parts were removed."""
    uploaders = (
        await uow.execute(
            select(upload_parts.c.uploader_id)
            .where(upload_parts.c.created_at < before_ms)
            .distinct()
            .order_by(upload_parts.c.uploader_id)
        )
    ).scalars()
    removed = 0
    for uploader_id in list(uploaders):
        await _lock_quota(uow, uploader_id)
        sizes = list(
            (
                await uow.execute(
                    delete(upload_parts)
                    .where(upload_parts.c.uploader_id == uploader_id, upload_parts.c.created_at < before_ms)
                    .returning(upload_parts.c.size)
                )
            ).scalars()
        )
        await _release(uow, uploader_id, sum(sizes))
        removed += len(sizes)
    return removed


async def insert_file(uow: UnitOfWork, record: FileRecord, now_ms: int) -> None:
    await uow.execute(
        files.insert().values(
            id=record.id, blob_key=record.blob_key, size=record.size, mime=record.mime, created_at=now_ms
        )
    )


async def get_file(uow: UnitOfWork, file_id: int) -> FileRecord | None:
    row = (await uow.execute(select(files).where(files.c.id == file_id))).first()
    return FileRecord(row.id, row.blob_key, row.size, row.mime) if row else None


async def delete_file(uow: UnitOfWork, file_id: int) -> str | None:
    """Deletes the file row; returns its blob key (the caller removes the blob once nothing else uses it)."""
    row = (await uow.execute(delete(files).where(files.c.id == file_id).returning(files.c.blob_key))).first()
    return row.blob_key if row else None


async def blob_in_use(uow: UnitOfWork, blob_key: str) -> bool:
    return (await uow.execute(select(files.c.id).where(files.c.blob_key == blob_key).limit(1))).first() is not None


async def lock_community_photo(uow: UnitOfWork, community_id: int) -> int | None:
    """The community's current photo file id, with the row locked (PostgreSQL) so photo edits take turns."""
    row = (
        await uow.execute(select(communities.c.photo_file_id).where(communities.c.id == community_id).with_for_update())
    ).first()
    return row.photo_file_id if row else None


async def photo_readable_by(uow: UnitOfWork, file_id: int, user_id: int, now_ms: int) -> bool:
    """A community photo is readable by the community's members and by anyone an active invite to it admits."""
    community_ids = select(communities.c.id).where(communities.c.photo_file_id == file_id).scalar_subquery()
    member = (
        await uow.execute(
            select(members.c.user_id).where(members.c.community_id.in_(community_ids), members.c.user_id == user_id)
        )
    ).first()
    if member is not None:
        return True
    targeted_at_user = and_(
        invites.c.targeted,
        invites.c.job_status == JOB_COMPLETED,
        select(invite_targets.c.user_id)
        .where(invite_targets.c.code == invites.c.code, invite_targets.c.user_id == user_id)
        .exists(),
    )
    invite = (
        await uow.execute(
            select(invites.c.code)
            .where(
                invites.c.community_id.in_(community_ids),
                invites.c.active,
                or_(invites.c.expires_at.is_(None), invites.c.expires_at > now_ms),
                or_(invites.c.targeted.is_(False), targeted_at_user),
            )
            .limit(1)
        )
    ).first()
    return invite is not None


# ------------------------------------------------------------------------------------------------ blobs (PostgreSQL)


async def put_blob(uow: UnitOfWork, key: str, data: bytes) -> None:
    """Content-addressed: storing the same bytes again changes nothing."""
    await uow.execute(
        dialect_insert(uow, blobs).values(key=key, data=data).on_conflict_do_nothing(index_elements=["key"])
    )


async def read_blob(uow: UnitOfWork, key: str, offset: int, length: int) -> bytes | None:
    row = (
        await uow.execute(select(func.substr(blobs.c.data, offset + 1, length).label("part")).where(blobs.c.key == key))
    ).first()
    return None if row is None else bytes(row.part or b"")


async def delete_blob(uow: UnitOfWork, key: str) -> None:
    await uow.execute(delete(blobs).where(blobs.c.key == key))
