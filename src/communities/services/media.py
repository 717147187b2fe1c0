"""Use cases of the Media service and of Communities.EditPhoto: chunked uploads, photos, downloads."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from communities.domain import validation
from communities.domain.errors import InvalidArgument, LimitReached, NotFound
from communities.domain.permissions import Permission
from communities.media import images
from communities.services import blobs
from communities.services.access import require_membership, require_permission
from communities.services.communities import CommunityView, view
from communities.services.context import App, Principal
from communities.storage import media as media_repo
from communities.storage import repository as repo
from communities.updates import publish

log = logging.getLogger("communities.media")

PART_MAX = 512 * 1024
PHOTO_MAX = 10 * 1024 * 1024
PARTS_MAX = PHOTO_MAX // PART_MAX
# Parts not yet used, per uploader: a client may prepare a few uploads at once, not fill the database.
PENDING_MAX = 4 * PHOTO_MAX
UPLOAD_TTL_MS = 24 * 3600 * 1000
DOWNLOAD_DEFAULT = 512 * 1024
DOWNLOAD_MAX = 1024 * 1024
FILE_NAME_MAX = 255


@dataclass(frozen=True)
class FileRef:
    upload_id: int
    name: str
    part_count: int


@dataclass(frozen=True)
class Chunk:
    data: bytes
    size: int


async def upload_part(app: App, principal: Principal, upload_id: int, part: int, data: bytes) -> None:
    validation.require_id(upload_id, "upload_id")
    if part >= PARTS_MAX:
        raise LimitReached("upload_parts", PARTS_MAX, f"An upload has at most {PARTS_MAX} parts (0..{PARTS_MAX - 1})")
    if not data:
        raise InvalidArgument.field("data", "must not be empty")
    if len(data) > PART_MAX:
        raise InvalidArgument.field("data", f"a part is at most {PART_MAX} bytes, got {len(data)}")
    async with app.db.unit_of_work(write=True) as uow:
        # The limit is checked and the bytes counted by one conditional write (see storage/media.py), so parallel
        # parts cannot pass it; a part sent again counts only what it adds.
        if not await media_repo.upsert_part(uow, principal.id, upload_id, part, data, app.clock_ms(), PENDING_MAX):
            raise LimitReached("pending_upload_bytes", PENDING_MAX, "Too much uploaded and not yet used; use or wait")


async def _assemble(app: App, principal: Principal, ref: FileRef) -> bytes:
    if len(ref.name) > FILE_NAME_MAX:
        raise InvalidArgument.field("file.name", f"at most {FILE_NAME_MAX} characters")
    if not 1 <= ref.part_count <= PARTS_MAX:
        raise InvalidArgument.field("file.part_count", f"must be within 1..{PARTS_MAX}")
    async with app.db.unit_of_work(write=False) as uow:
        sizes = await media_repo.upload_sizes(uow, principal.id, ref.upload_id)
        if not sizes:
            raise InvalidArgument.field("file.id", f"no upload {ref.upload_id}: send its parts with UploadFilePart")
        missing = [part for part in range(ref.part_count) if part not in sizes]
        if missing:
            raise InvalidArgument.field("file.part_count", f"upload {ref.upload_id} is missing parts {missing}")
        extra = sorted(part for part in sizes if part >= ref.part_count)
        if extra:
            raise InvalidArgument.field(
                "file.part_count", f"upload {ref.upload_id} has parts {extra} beyond part_count {ref.part_count}"
            )
        if sum(sizes.values()) > PHOTO_MAX:
            raise LimitReached("photo_bytes", PHOTO_MAX, f"A photo upload is at most {PHOTO_MAX} bytes")
        return await media_repo.upload_data(uow, principal.id, ref.upload_id)


async def edit_photo(app: App, principal: Principal, community_id: int, ref: FileRef | None) -> CommunityView:
    async with app.db.unit_of_work(write=False) as uow:
        require_permission(await require_membership(uow, community_id, principal), Permission.MODIFY_COMMUNITY)
    new_file = None
    if ref is not None:
        data = await _assemble(app, principal, ref)
        try:
            # Decoding and encoding take milliseconds to a second: off the event loop.
            photo = await asyncio.to_thread(images.normalize, data)
        except images.ImageRejected as error:
            raise InvalidArgument.field("file", str(error)) from None
        key = await app.blobs.put(photo.data)
        new_file = (media_repo.FileRecord(app.ids.next_id(), key, len(photo.data), images.MIME), photo.preview)
    try:
        async with app.blob_lock:
            async with app.db.unit_of_work(write=True) as uow:
                membership = await require_membership(uow, community_id, principal)
                require_permission(membership, Permission.MODIFY_COMMUNITY)
                old_file_id = await media_repo.lock_community_photo(uow, community_id)
                if new_file is not None:
                    record, preview = new_file
                    await media_repo.insert_file(uow, record, app.clock_ms())
                    await repo.update_community(uow, community_id, photo_file_id=record.id, photo_preview=preview)
                    await media_repo.delete_upload(uow, principal.id, ref.upload_id)  # type: ignore[union-attr]
                else:
                    await repo.update_community(uow, community_id, photo_file_id=None, photo_preview=None)
                old_key = await media_repo.delete_file(uow, old_file_id) if old_file_id is not None else None
                membership = await require_membership(uow, community_id, principal)
                await publish.community_updated(app, uow, principal.id, membership.community)
            if new_file is not None:
                # Stored before the transaction; make sure it is still there now that a file row names it.
                await app.blobs.put(photo.data)
    except BaseException:
        if new_file is not None:
            await blobs.collect(app, new_file[0].blob_key)  # refused or failed: do not leave the blob behind
        raise
    if old_key is not None and old_key != (new_file[0].blob_key if new_file else None):
        await blobs.collect(app, old_key)
    return view(membership)


async def download_part(app: App, principal: Principal, file_id: int, offset: int, length: int) -> Chunk:
    length = DOWNLOAD_DEFAULT if length == 0 else validation.bounded(length, "length", DOWNLOAD_MAX)
    async with app.db.unit_of_work(write=False) as uow:
        record = await media_repo.get_file(uow, file_id) if file_id else None
        if record is None or not await media_repo.photo_readable_by(uow, file_id, principal.id, app.clock_ms()):
            raise NotFound.of("FILE")
    if offset > record.size:
        raise InvalidArgument.field("offset", f"past the end of the file ({record.size} bytes)")
    try:
        data = await app.blobs.read(record.blob_key, offset, length)
    except KeyError:
        log.error("file %d has no blob %s", file_id, record.blob_key)
        raise NotFound.of("FILE") from None
    return Chunk(data=data, size=record.size)


async def sweep_stale_uploads(app: App) -> int:
    async with app.db.unit_of_work(write=True) as uow:
        return await media_repo.delete_uploads_before(uow, app.clock_ms() - UPLOAD_TTL_MS)
