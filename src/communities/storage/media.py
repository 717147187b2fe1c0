"""Queries for uploads (parts kept in the database until used) and stored files (contents in the blob store)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select

from communities.storage.database import UnitOfWork, dialect_insert
from communities.storage.invites import JOB_COMPLETED
from communities.storage.tables import communities, files, invite_targets, invites, members, upload_parts


@dataclass(frozen=True)
class FileRecord:
    id: int
    blob_key: str
    size: int
    mime: str


async def upsert_part(uow: UnitOfWork, uploader_id: int, upload_id: int, part: int, data: bytes, now_ms: int) -> None:
    """Stores a part; sending it again replaces it (idempotent retries)."""
    statement = dialect_insert(uow, upload_parts).values(
        uploader_id=uploader_id, upload_id=upload_id, part=part, data=data, size=len(data), created_at=now_ms
    )
    statement = statement.on_conflict_do_update(
        index_elements=[upload_parts.c.uploader_id, upload_parts.c.upload_id, upload_parts.c.part],
        set_={"data": statement.excluded.data, "size": statement.excluded.size, "created_at": now_ms},
    )
    await uow.execute(statement)


async def pending_bytes(uow: UnitOfWork, uploader_id: int) -> int:
    total = (
        await uow.execute(select(func.sum(upload_parts.c.size)).where(upload_parts.c.uploader_id == uploader_id))
    ).scalar()
    return int(total or 0)


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
    await uow.execute(
        delete(upload_parts).where(upload_parts.c.uploader_id == uploader_id, upload_parts.c.upload_id == upload_id)
    )


async def delete_uploads_before(uow: UnitOfWork, before_ms: int) -> int:
    return (await uow.execute(delete(upload_parts).where(upload_parts.c.created_at < before_ms))).rowcount


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
