"""Community photos through the API: chunked uploads (UploadFilePart), EditPhoto, chunked downloads
(DownloadFilePart), who may read a photo, and what is left in the database and the blob store afterwards.

Images are made here with Pillow (factories shared with tests/unit/test_images.py). Blob store checks look at
every file under server.app.blobs.root; the module's server is shared by its tests, so they compare before and
after, and each test stores images no other test stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from PIL import ExifTags, Image
from sqlalchemy import select

from communities.services import media as media_service
from communities.storage import tables
from communities.storage.tables import files, upload_parts
from communities.v1 import (
    communities_pb2,
    invites_pb2,
    media_pb2,
    media_pb2_grpc,
    members_pb2,
    permissions_pb2,
    roles_pb2,
)
from tests.conftest import rpc_error
from tests.support.errors import assert_error
from tests.unit.test_images import (
    BLUE,
    GPS_LATITUDE,
    GREEN,
    ORIENTED_QUADRANTS,
    RED,
    REJECTED,
    animated,
    assert_clean_webp,
    assert_close,
    assert_corners,
    bands,
    center,
    decode,
    encode,
    oriented_jpeg,
    patterned,
    with_metadata,
)

KIB = 1024
MIB = 1024 * KIB
PART_MAX = 512 * KIB
UPLOAD_MAX = 10 * MIB
PARTS_MAX = 20
DOWNLOAD_DEFAULT = 512 * KIB
DOWNLOAD_MAX = 1 * MIB
PREVIEW_MAX_BYTES = 1000
DAY_MS = 24 * 3600 * 1000
MODIFY_COMMUNITY = permissions_pb2.CommunityPermission.COMMUNITY_PERMISSION_MODIFY_COMMUNITY

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
DENIED = grpc.StatusCode.PERMISSION_DENIED

_seeds = itertools.count(1000)
_upload_ids = itertools.count(1)


def fresh_image(size: tuple[int, int] = (120, 90), fmt: str = "PNG") -> bytes:
    """An image no other test in this module uploads (so its stored photo is a blob of its own)."""
    return encode(patterned(size, next(_seeds)), fmt)


def new_upload_id() -> int:
    return (next(_upload_ids) << 32) | random.getrandbits(31)


@pytest.fixture(scope="module")
def media_stub(grpc_channel):
    return media_pb2_grpc.MediaStub(grpc_channel)


class Photos:
    """The calls these tests make over and over, and looks at what the server stored."""

    def __init__(self, server, communities_stub, media_stub, invites_stub):
        self.server = server
        self.communities = communities_stub
        self.media = media_stub
        self.invites = invites_stub

    # --- calls
    def community(self, owner, name: str = "Pictured") -> int:
        return self.communities.CreateCommunity(communities_pb2.CreateCommunity(name=name), metadata=owner.metadata).id

    def send_part(self, account, upload_id: int, part: int, data: bytes) -> None:
        self.media.UploadFilePart(
            media_pb2.UploadFilePart(upload_id=upload_id, part=part, data=data), metadata=account.metadata
        )

    def upload(self, account, data: bytes, *, part_size: int = PART_MAX, order=None, upload_id: int | None = None):
        """Sends `data` in parts (in `order`, a list of part indexes, if given); returns the UploadedFileRef."""
        upload_id = upload_id or new_upload_id()
        parts = [data[offset : offset + part_size] for offset in range(0, len(data), part_size)]
        for index in order if order is not None else range(len(parts)):
            self.send_part(account, upload_id, index, parts[index])
        return media_pb2.UploadedFileRef(id=upload_id, name="photo.bin", part_count=len(parts))

    def edit(self, account, community_id: int, ref=None, timeout: float = 60) -> communities_pb2.Community:
        request = communities_pb2.EditPhoto(community_id=community_id)
        if ref is not None:
            request.file.CopyFrom(ref)
        return self.communities.EditPhoto(request, metadata=account.metadata, timeout=timeout)

    def set_photo(self, account, community_id: int, data: bytes) -> communities_pb2.ChatPhoto:
        community = self.edit(account, community_id, self.upload(account, data))
        assert community.HasField("photo") and community.photo.file_id
        return community.photo

    def part(self, account, file_id: int, offset: int = 0, length: int = 0) -> media_pb2.FilePart:
        return self.media.DownloadFilePart(
            media_pb2.DownloadFilePart(file_id=file_id, offset=offset, length=length), metadata=account.metadata
        )

    def download(self, account, file_id: int, chunk: int = 1000) -> bytes:
        """The whole file, chunk by chunk, until FilePart.size bytes are in."""
        data = b""
        while True:
            part = self.part(account, file_id, len(data), chunk)
            assert len(part.data) <= (chunk or DOWNLOAD_DEFAULT)
            data += part.data
            assert len(data) <= part.size
            if len(data) == part.size:
                return data
            assert part.data, "an empty part before the end"

    def listed_photo(self, account, community_id: int) -> communities_pb2.ChatPhoto | None:
        listed = self.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
        [community] = [c for c in listed.communities if c.id == community_id]
        return community.photo if community.HasField("photo") else None

    def general_channel(self, account, community_id: int) -> int:
        settings = self.communities.GetSettings(
            communities_pb2.GetSettings(community_id=community_id), metadata=account.metadata
        )
        return settings.system_messages.channel_id

    # --- what the server stored
    def blobs(self) -> set[str]:
        """Every stored blob: each file under the local store's root (temporary ones too) on SQLite, each row of
        the blobs table on PostgreSQL (where every replica must read them)."""
        store = self.server.app.blobs
        if not hasattr(store, "local"):
            return {row.key for row in self.rows(select(tables.blobs.c.key))}
        root = Path(store.local.root)
        return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}

    def blob_names(self) -> set[str]:
        return {Path(path).name for path in self.blobs()}

    def file_ids(self) -> set[int]:
        return {row.id for row in self.rows(select(files.c.id))}

    def pending_parts(self, account) -> set[tuple[int, int]]:
        rows = self.rows(
            select(upload_parts.c.upload_id, upload_parts.c.part).where(upload_parts.c.uploader_id == account.id)
        )
        return {(row.upload_id, row.part) for row in rows}

    def rows(self, statement) -> list:
        async def run():
            async with self.server.app.db.unit_of_work(write=False) as uow:
                return (await uow.execute(statement)).all()

        return self.server.run(run())


@pytest.fixture(scope="module")
def photos(server, communities_stub, media_stub, invites_stub) -> Photos:
    return Photos(server, communities_stub, media_stub, invites_stub)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_stored_photo(photos: Photos, account, community_id: int, photo, side: int) -> Image.Image:
    """The photo as every client sees it: the same bytes whatever the chunk size, a clean square WebP, a tiny
    decodable preview, listed by GetCommunities, and kept in the blob store under its SHA-256."""
    stored = photos.download(account, photo.file_id, chunk=1000)
    for chunk in (1, 333, 4096 + 7, 0, DOWNLOAD_MAX) if len(stored) < 600 else (333, 4096 + 7, 0, DOWNLOAD_MAX):
        assert photos.download(account, photo.file_id, chunk=chunk) == stored, chunk
    assert photos.part(account, photo.file_id).size == len(stored)
    image = assert_clean_webp(stored, side)
    assert 0 < len(photo.preview) <= PREVIEW_MAX_BYTES
    preview = decode(photo.preview)
    assert preview.width == preview.height > 0
    assert photos.listed_photo(account, community_id) == photo
    assert sha256(stored) in photos.blob_names()
    return image


def assert_no_photo_change(photos: Photos, owner, community_id: int, photo, stored: bytes) -> None:
    assert photos.listed_photo(owner, community_id) == photo
    assert photos.download(owner, photo.file_id, chunk=0) == stored


# ------------------------------------------------------------------------------------------------ formats and sizes


def half_transparent_png() -> bytes:
    image = Image.new("RGBA", (80, 80), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (40, 0, 80, 80))
    return encode(image, "PNG")


def palette_png() -> bytes:
    image = Image.new("P", (70, 70), 0)
    image.putpalette([*RED, *BLUE])
    image.paste(1, (35, 0, 70, 70))
    return encode(image, "PNG", transparency=0)


# name -> (factory, side of the stored square, color at its center or None)
ACCEPTED = {
    "png-rgb": (lambda: encode(Image.new("RGB", (64, 64), RED), "PNG"), 64, RED),
    "png-rgba-transparent": (half_transparent_png, 80, None),
    "png-palette-transparent": (palette_png, 70, None),
    "png-palette": (lambda: encode(Image.new("RGB", (66, 66), GREEN).convert("P"), "PNG"), 66, GREEN),
    "jpeg": (lambda: encode(Image.new("RGB", (90, 90), BLUE), "JPEG", quality=95), 90, BLUE),
    "jpeg-exif-gps": (lambda: with_metadata(patterned((160, 120), 1), "JPEG", quality=90), 120, None),
    "gif-animated": (lambda: animated("GIF", size=(50, 40)), 40, RED),
    "webp": (lambda: encode(Image.new("RGB", (72, 72), GREEN), "WEBP", quality=90), 72, GREEN),
    "webp-animated": (lambda: animated("WEBP", size=(44, 60)), 44, RED),
    "1x1": (lambda: encode(Image.new("RGB", (1, 1), RED), "PNG"), 1, RED),
    "tiny-3x2": (lambda: encode(Image.new("RGB", (3, 2), BLUE), "GIF"), 2, BLUE),
    "wide-300x100": (lambda: encode(bands((300, 100), (RED, GREEN, BLUE), vertical=False), "JPEG"), 100, GREEN),
    "tall-100x300": (lambda: encode(bands((100, 300), (RED, GREEN, BLUE), vertical=True), "WEBP"), 100, GREEN),
    "large-jpeg-4000x3000": (lambda: encode(patterned((4000, 3000), 2), "JPEG", quality=90), 512, None),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_edit_photo_stores_a_clean_square(photos, make_account, name):
    factory, side, color = ACCEPTED[name]
    owner = make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, factory())
    image = assert_stored_photo(photos, owner, community_id, photo, side)
    if color is not None:
        assert_close(center(image.convert("RGB")), color)
        assert_close(center(decode(photo.preview).convert("RGB")), color)
    if name in ("png-rgba-transparent", "png-palette-transparent"):
        rgba = image.convert("RGBA")
        assert rgba.getpixel((side // 4, side // 2))[3] <= 16, "the transparent half became opaque"
        assert rgba.getpixel((side * 3 // 4, side // 2))[3] >= 240


def test_orientation_applied_and_metadata_dropped(photos, make_account):
    """A 600x200 JPEG with EXIF orientation 6 (shown turned 90 degrees clockwise), GPS, an ICC profile and XMP."""
    data = oriented_jpeg(6)
    source = Image.open(io.BytesIO(data))
    assert source.getexif()[ExifTags.Base.Orientation] == 6
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == GPS_LATITUDE
    assert {"icc_profile", "xmp", "exif"} <= set(source.info)
    owner = make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, data)
    image = assert_stored_photo(photos, owner, community_id, photo, 200)
    assert_corners(image, ORIENTED_QUADRANTS[6])
    assert_clean_webp(photo.preview, decode(photo.preview).width)


def test_members_see_the_photo(photos, make_account, join_community):
    owner, member = make_account(), make_account()
    community_id = photos.community(owner)
    join_community(community_id, member)
    photo = photos.set_photo(owner, community_id, fresh_image())
    assert photos.listed_photo(member, community_id) == photo
    assert photos.download(member, photo.file_id) == photos.download(owner, photo.file_id)


# ------------------------------------------------------------------------------------------------ uploads


def test_parts_in_any_order(photos, make_account):
    """The same file sent in order and shuffled gives the same stored photo (blobs are content-addressed)."""
    owner = make_account()
    data = fresh_image((400, 300))
    part_size = len(data) // 6 + 1
    count = -(-len(data) // part_size)
    assert count >= 6
    shuffled = list(range(count))
    random.Random(5).shuffle(shuffled)
    assert shuffled != sorted(shuffled)
    stored = []
    for order in (None, shuffled, list(reversed(range(count)))):
        community_id = photos.community(owner)
        ref = photos.upload(owner, data, part_size=part_size, order=order)
        assert ref.part_count == count
        photo = photos.edit(owner, community_id, ref).photo
        stored.append(photos.download(owner, photo.file_id, chunk=0))
    assert stored[0] == stored[1] == stored[2]


def test_a_part_sent_again_replaces_the_first_copy(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    upload_id = new_upload_id()
    photos.send_part(owner, upload_id, 0, encode(Image.new("RGB", (40, 40), RED), "PNG"))
    photos.send_part(owner, upload_id, 0, encode(Image.new("RGB", (40, 40), BLUE), "PNG"))
    photo = photos.edit(owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=1)).photo
    assert_close(center(decode(photos.download(owner, photo.file_id)).convert("RGB")), BLUE)

    # A garbled part retried with the right bytes: accepted. The right bytes retried as garbage: refused.
    data = fresh_image((300, 200))
    parts = [data[: len(data) // 2], data[len(data) // 2 :]]
    retried, spoiled = new_upload_id(), new_upload_id()
    photos.send_part(owner, retried, 0, b"\0" * len(parts[0]))
    photos.send_part(owner, retried, 1, parts[1])
    photos.send_part(owner, retried, 0, parts[0])
    photos.edit(owner, community_id, media_pb2.UploadedFileRef(id=retried, part_count=2))
    photos.send_part(owner, spoiled, 0, parts[0])
    photos.send_part(owner, spoiled, 1, parts[1])
    photos.send_part(owner, spoiled, 0, b"\0" * len(parts[0]))
    error = rpc_error(photos.edit, owner, community_id, media_pb2.UploadedFileRef(id=spoiled, part_count=2))
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file")


def test_part_size_limit(photos, make_account):
    owner = make_account()
    upload_id = new_upload_id()
    photos.send_part(owner, upload_id, 0, b"\1" * PART_MAX)
    error = rpc_error(photos.send_part, owner, upload_id, 1, b"\1" * (PART_MAX + 1))
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="data")
    assert photos.pending_parts(owner) == {(upload_id, 0)}


def test_part_index_limit(photos, make_account):
    owner = make_account()
    upload_id = new_upload_id()
    photos.send_part(owner, upload_id, PARTS_MAX - 1, b"last")
    for part in (PARTS_MAX, PARTS_MAX + 1, 2**32 - 1):
        error = rpc_error(photos.send_part, owner, upload_id, part, b"x")
        assert_error(error, EXHAUSTED, "LIMIT_REACHED")
    assert photos.pending_parts(owner) == {(upload_id, PARTS_MAX - 1)}


def test_empty_part_and_upload_id_zero(photos, make_account):
    owner = make_account()
    assert_error(rpc_error(photos.send_part, owner, new_upload_id(), 0, b""), INVALID, "INVALID_ARGUMENT", field="data")
    error = rpc_error(photos.send_part, owner, 0, 0, b"data")
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="upload_id")
    assert photos.pending_parts(owner) == set()


def test_upload_ids_are_scoped_to_the_uploader(photos, make_account):
    alice, bob = make_account(), make_account()
    alices, bobs = photos.community(alice), photos.community(bob)
    data = encode(Image.new("RGB", (48, 48), GREEN), "PNG")
    ref = photos.upload(alice, data)
    error = rpc_error(photos.edit, bob, bobs, ref)
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.id")
    assert "no upload" in error.details().lower()
    assert photos.listed_photo(bob, bobs) is None
    # Bob's own parts under the same id are his, and leave Alice's alone.
    photos.upload(bob, encode(Image.new("RGB", (48, 48), RED), "PNG"), upload_id=ref.id)
    assert photos.pending_parts(alice) == {(ref.id, 0)}
    photo = photos.edit(alice, alices, ref).photo
    assert_close(center(decode(photos.download(alice, photo.file_id)).convert("RGB")), GREEN)
    bob_photo = photos.edit(bob, bobs, ref).photo
    assert_close(center(decode(photos.download(bob, bob_photo.file_id)).convert("RGB")), RED)


def three_parts(photos, account) -> tuple[bytes, int]:
    data = fresh_image((300, 300))
    upload_id = new_upload_id()
    third = len(data) // 3 + 1
    for index in range(3):
        photos.send_part(account, upload_id, index, data[index * third : (index + 1) * third])
    return data, upload_id


def test_missing_part(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    data = fresh_image((300, 300))
    upload_id = new_upload_id()
    third = len(data) // 3 + 1
    photos.send_part(owner, upload_id, 0, data[:third])
    photos.send_part(owner, upload_id, 2, data[2 * third :])
    error = rpc_error(photos.edit, owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=3))
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.part_count")
    assert "missing" in error.details() and "1" in error.details()
    photos.send_part(owner, upload_id, 1, data[third : 2 * third])
    assert photos.edit(owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=3)).photo.file_id


def test_part_count_too_small_or_too_large(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    _, upload_id = three_parts(photos, owner)
    error = rpc_error(photos.edit, owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=2))
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.part_count")
    assert "2" in error.details() and "beyond" in error.details()
    error = rpc_error(photos.edit, owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=4))
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.part_count")
    assert "missing" in error.details() and "3" in error.details()
    for count in (0, PARTS_MAX + 1):
        error = rpc_error(photos.edit, owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=count))
        assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.part_count")
    assert photos.listed_photo(owner, community_id) is None
    assert photos.edit(owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=3)).photo.file_id


def test_file_name_length(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    ref = photos.upload(owner, fresh_image())
    ref.name = "n" * 256
    assert_error(rpc_error(photos.edit, owner, community_id, ref), INVALID, "INVALID_ARGUMENT", field="file.name")
    ref.name = "é" * 255
    assert photos.edit(owner, community_id, ref).photo.file_id


def test_an_upload_is_used_once(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    ref = photos.upload(owner, fresh_image())
    photos.edit(owner, community_id, ref)
    assert photos.pending_parts(owner) == set()
    error = rpc_error(photos.edit, owner, community_id, ref)
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.id")


def test_uploads_are_limited_to_10_mib(photos, make_account):
    """20 full parts (exactly 10 MiB) make an acceptable upload; a 21st part is over the limit."""
    owner = make_account()
    community_id = photos.community(owner)
    image = encode(Image.new("RGB", (100, 100), BLUE), "JPEG", quality=95)
    data = image + b"\0" * (UPLOAD_MAX - len(image))  # decoders stop at the JPEG's end
    ref = photos.upload(owner, data)
    assert ref.part_count == PARTS_MAX
    error = rpc_error(photos.send_part, owner, ref.id, PARTS_MAX, b"\0")
    assert_error(error, EXHAUSTED, "LIMIT_REACHED")
    photo = photos.edit(owner, community_id, ref).photo
    assert_close(center(decode(photos.download(owner, photo.file_id)).convert("RGB")), BLUE)


def test_unused_uploads_are_removed_after_a_day(photos, server, make_account, monkeypatch):
    owner = make_account()
    community_id = photos.community(owner)
    start = server.app.clock_ms()
    old = photos.upload(owner, fresh_image())
    monkeypatch.setattr(server.app, "clock_ms", lambda: start + DAY_MS - 60_000)
    newer = photos.upload(owner, fresh_image())
    server.run(media_service.sweep_stale_uploads(server.app))
    assert photos.pending_parts(owner) == {(old.id, 0), (newer.id, 0)}, "nothing is a day old yet"
    monkeypatch.setattr(server.app, "clock_ms", lambda: start + DAY_MS + 60_000)
    server.run(media_service.sweep_stale_uploads(server.app))
    assert photos.pending_parts(owner) == {(newer.id, 0)}
    error = rpc_error(photos.edit, owner, community_id, old)
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.id")
    assert "no upload" in error.details().lower()
    assert photos.edit(owner, community_id, newer).photo.file_id


# ------------------------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def pictured(photos, make_account):
    """A community with a photo, for the failed attempts to replace it: (owner, community id, photo, bytes)."""
    owner = make_account("Pictured owner")
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image((200, 200)))
    return owner, community_id, photo, photos.download(owner, photo.file_id)


BAD_INPUTS = [
    "truncated-jpeg",
    "truncated-png",
    "png-signature-then-garbage",
    "corrupt-png-data",
    "random-bytes",
    "text",
    "bmp",
    "tiff",
    "svg",
    "xml",
    "png-bomb-20000x20000",
    "gif-huge-screen",
]


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_refused_and_the_old_photo_stays(photos, pictured, name):
    owner, community_id, photo, stored = pictured
    blobs, file_ids = photos.blobs(), photos.file_ids()
    ref = photos.upload(owner, REJECTED[name]())
    error = rpc_error(photos.edit, owner, community_id, ref)
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file")
    assert_no_photo_change(photos, owner, community_id, photo, stored)
    assert photos.blobs() == blobs
    assert photos.file_ids() == file_ids


def test_oversized_upload_is_refused_and_the_old_photo_stays(photos, pictured):
    owner, community_id, photo, stored = pictured
    upload_id = new_upload_id()
    photos.send_part(owner, upload_id, 0, b"\xff\xd8\xff")
    assert_error(rpc_error(photos.send_part, owner, upload_id, PARTS_MAX, b"\0"), EXHAUSTED, "LIMIT_REACHED")
    error = rpc_error(photos.edit, owner, community_id, media_pb2.UploadedFileRef(id=upload_id, part_count=21))
    assert_error(error, INVALID, "INVALID_ARGUMENT", field="file.part_count")
    assert_no_photo_change(photos, owner, community_id, photo, stored)


# ------------------------------------------------------------------------------------------------ permissions


def grant_modify_community(roles_stub, members_stub, owner, community_id: int, member) -> None:
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community_id, name="Decorator", permissions=MODIFY_COMMUNITY, priority=1),
        metadata=owner.metadata,
    )
    members_stub.EditMember(
        members_pb2.EditMember(
            community_id=community_id, member_id=member.id, role_ids=members_pb2.RoleIds(ids=[role.id])
        ),
        metadata=owner.metadata,
    )


def test_edit_photo_needs_modify_community(photos, make_account, join_community, roles_stub, members_stub):
    owner, member = make_account(), make_account()
    community_id = photos.community(owner)
    join_community(community_id, member)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    ref = photos.upload(member, fresh_image())
    for attempt in (ref, None):  # replacing and removing
        error = rpc_error(photos.edit, member, community_id, attempt)
        assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "MODIFY_COMMUNITY"})
    assert_no_photo_change(photos, owner, community_id, photo, stored)
    assert photos.pending_parts(member) == {(ref.id, 0)}, "a refused call uses no upload"
    grant_modify_community(roles_stub, members_stub, owner, community_id, member)
    new_photo = photos.edit(member, community_id, ref).photo
    assert new_photo.file_id != photo.file_id
    assert photos.listed_photo(owner, community_id) == new_photo


def test_non_members_get_not_found(photos, make_account):
    owner, stranger = make_account(), make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    ref = photos.upload(stranger, fresh_image())
    for target in (community_id, 12345):
        for attempt in (ref, None):
            error = rpc_error(photos.edit, stranger, target, attempt)
            assert_error(error, NOT_FOUND, "UNKNOWN_COMMUNITY")
    assert_no_photo_change(photos, owner, community_id, photo, stored)
    assert photos.pending_parts(stranger) == {(ref.id, 0)}, "a refused call uses no upload"
    own = photos.community(stranger)
    assert photos.edit(stranger, own, ref).photo.file_id


def assert_readable(photos, account, photo, stored: bytes) -> None:
    assert photos.download(account, photo.file_id, chunk=0) == stored


def assert_unreadable(photos, account, photo) -> None:
    for offset, length in ((0, 0), (0, 10), (5, 1)):
        error = rpc_error(photos.part, account, photo.file_id, offset, length)
        assert_error(error, NOT_FOUND, "UNKNOWN_FILE")


def test_only_members_read_a_photo(photos, make_account, join_community):
    owner, member, stranger = make_account(), make_account(), make_account()
    community_id = photos.community(owner)
    join_community(community_id, member)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    assert_readable(photos, member, photo, stored)
    assert_unreadable(photos, stranger, photo)
    photos.communities.LeaveCommunity(
        communities_pb2.LeaveCommunity(community_id=community_id), metadata=member.metadata
    )
    assert_unreadable(photos, member, photo)


def test_an_untargeted_invite_lets_anyone_read_the_photo(photos, make_account):
    owner, stranger = make_account(), make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    assert_unreadable(photos, stranger, photo)
    invite = photos.invites.CreateInvite(
        invites_pb2.CreateInvite(channel_id=photos.general_channel(owner, community_id)), metadata=owner.metadata
    )
    assert_readable(photos, stranger, photo, stored)
    preview = photos.invites.LookupInvite(invites_pb2.LookupInvite(code=invite.code), metadata=stranger.metadata)
    assert preview.community_photo == photo
    photos.invites.DeleteInvite(invites_pb2.DeleteInvite(code=invite.code), metadata=owner.metadata)
    assert_unreadable(photos, stranger, photo)


def test_an_expired_invite_no_longer_admits(photos, server, make_account, monkeypatch):
    owner, stranger = make_account(), make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    photos.invites.CreateInvite(
        invites_pb2.CreateInvite(channel_id=photos.general_channel(owner, community_id), max_age=60),
        metadata=owner.metadata,
    )
    assert_readable(photos, stranger, photo, stored)
    now = server.app.clock_ms()
    monkeypatch.setattr(server.app, "clock_ms", lambda: now + 61_000)
    assert_unreadable(photos, stranger, photo)


def test_a_used_up_invite_no_longer_admits(photos, make_account):
    owner, first, second = make_account(), make_account(), make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    invite = photos.invites.CreateInvite(
        invites_pb2.CreateInvite(channel_id=photos.general_channel(owner, community_id), max_uses=1),
        metadata=owner.metadata,
    )
    assert_readable(photos, second, photo, stored)
    photos.invites.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=first.metadata)
    assert_readable(photos, first, photo, stored)  # now a member
    assert_unreadable(photos, second, photo)


def test_a_targeted_invite_admits_only_its_targets(photos, make_account):
    owner, target, other = make_account(), make_account(), make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image())
    stored = photos.download(owner, photo.file_id)
    invite = photos.invites.CreateInvite(
        invites_pb2.CreateInvite(
            channel_id=photos.general_channel(owner, community_id), target_users_file=f"user_id\n{target.id}\n".encode()
        ),
        metadata=owner.metadata,
    )
    assert invite.targeted
    assert_readable(photos, target, photo, stored)
    assert_unreadable(photos, other, photo)


def test_download_arguments(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    noise = Image.frombytes("RGB", (600, 600), random.Random(next(_seeds)).randbytes(600 * 600 * 3))
    photo = photos.set_photo(owner, community_id, encode(noise, "PNG"))
    stored = photos.download(owner, photo.file_id, chunk=DOWNLOAD_MAX)
    size = len(stored)
    assert 50_000 < size < DOWNLOAD_DEFAULT
    for file_id in (0, 1, photo.file_id + 1, 2**64 - 1):
        assert_error(rpc_error(photos.part, owner, file_id), NOT_FOUND, "UNKNOWN_FILE")
    first = photos.part(owner, photo.file_id)  # length 0: the default
    assert first.size == size and first.data == stored[:DOWNLOAD_DEFAULT]
    assert photos.part(owner, photo.file_id, 1000).data == stored[1000 : 1000 + DOWNLOAD_DEFAULT]
    assert photos.part(owner, photo.file_id, 10, 25).data == stored[10:35]
    assert photos.part(owner, photo.file_id, size - 3, 100).data == stored[-3:]
    assert photos.part(owner, photo.file_id, 0, DOWNLOAD_MAX).data == stored[:DOWNLOAD_MAX]
    at_end = photos.part(owner, photo.file_id, size, 10)
    assert at_end.data == b"" and at_end.size == size
    for offset in (size + 1, 2**64 - 1):
        error = rpc_error(photos.part, owner, photo.file_id, offset, 10)
        assert_error(error, INVALID, "INVALID_ARGUMENT", field="offset")
    for length in (DOWNLOAD_MAX + 1, 2**32 - 1):
        error = rpc_error(photos.part, owner, photo.file_id, 0, length)
        assert_error(error, INVALID, "INVALID_ARGUMENT", field="length")


# ------------------------------------------------------------------------------------------------ removal and clean-up


def test_removing_the_photo(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    photo = photos.set_photo(owner, community_id, fresh_image())
    key = sha256(photos.download(owner, photo.file_id))
    blobs, file_ids = photos.blobs(), photos.file_ids()
    assert key in photos.blob_names() and photo.file_id in file_ids
    community = photos.edit(owner, community_id)
    assert not community.HasField("photo")
    assert photos.listed_photo(owner, community_id) is None
    assert_unreadable(photos, owner, photo)
    assert key not in photos.blob_names()
    assert len(photos.blobs()) == len(blobs) - 1
    assert photos.file_ids() == file_ids - {photo.file_id}
    assert not photos.edit(owner, community_id).HasField("photo"), "removing no photo is fine"
    assert photos.blobs() == blobs - {b for b in blobs if b.endswith(key)}


def test_replacing_the_photo_cleans_up(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    old = photos.set_photo(owner, community_id, fresh_image())
    old_key = sha256(photos.download(owner, old.file_id))
    blobs, file_ids = photos.blob_names(), photos.file_ids()
    new = photos.set_photo(owner, community_id, fresh_image())
    new_key = sha256(photos.download(owner, new.file_id))
    assert new.file_id != old.file_id and new_key != old_key
    assert_unreadable(photos, owner, old)
    assert photos.blob_names() == (blobs - {old_key}) | {new_key}
    assert photos.file_ids() == (file_ids - {old.file_id}) | {new.file_id}
    assert photos.listed_photo(owner, community_id) == new


def test_setting_the_same_image_again(photos, make_account):
    """Same bytes, same blob: the new file keeps it even though the old file goes."""
    owner = make_account()
    community_id = photos.community(owner)
    data = fresh_image()
    first = photos.set_photo(owner, community_id, data)
    stored = photos.download(owner, first.file_id)
    blobs = photos.blobs()
    second = photos.set_photo(owner, community_id, data)
    assert second.file_id != first.file_id
    assert_unreadable(photos, owner, first)
    assert photos.download(owner, second.file_id) == stored
    assert photos.blobs() == blobs


def test_communities_sharing_an_image_share_its_blob(photos, make_account):
    owner = make_account()
    first, second = photos.community(owner), photos.community(owner)
    data = fresh_image()
    blobs = photos.blob_names()
    one = photos.set_photo(owner, first, data)
    two = photos.set_photo(owner, second, data)
    stored = photos.download(owner, one.file_id)
    assert photos.download(owner, two.file_id) == stored
    assert photos.blob_names() == blobs | {sha256(stored)}
    photos.edit(owner, first)
    assert photos.download(owner, two.file_id) == stored, "the other community's photo lost its blob"
    photos.edit(owner, second)
    assert photos.blob_names() == blobs


def test_deleting_a_community_deletes_its_photo(photos, make_account):
    """DeleteCommunity "removes everything the community holds": its photo's file row and blob too."""
    owner = make_account()
    community_id = photos.community(owner)
    blobs, file_ids = photos.blob_names(), photos.file_ids()
    photo = photos.set_photo(owner, community_id, fresh_image())
    photos.communities.DeleteCommunity(
        communities_pb2.DeleteCommunity(community_id=community_id), metadata=owner.metadata
    )
    assert_unreadable(photos, owner, photo)
    assert photos.file_ids() == file_ids, "the deleted community's file row is left behind"
    assert photos.blob_names() == blobs, "the deleted community's blob is left behind"


# ------------------------------------------------------------------------------------------------ races


def test_concurrent_edits_leave_one_photo(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    blobs, file_ids = photos.blob_names(), photos.file_ids()
    refs = [photos.upload(owner, fresh_image((160, 160))) for _ in range(8)]
    barrier = threading.Barrier(len(refs))

    def edit(ref):
        barrier.wait()
        try:
            return photos.edit(owner, community_id, ref).photo.file_id
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(max_workers=len(refs)) as pool:
        outcomes = list(pool.map(edit, refs))
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes  # nothing here should fail
    photo = photos.listed_photo(owner, community_id)
    assert photo is not None and photo.file_id in outcomes
    stored = photos.download(owner, photo.file_id)
    assert photos.file_ids() == file_ids | {photo.file_id}, "files rows of replaced photos are left"
    assert photos.blob_names() == blobs | {sha256(stored)}, "blobs of replaced photos are left"
    for file_id in set(outcomes) - {photo.file_id}:
        assert_error(rpc_error(photos.part, owner, file_id), NOT_FOUND, "UNKNOWN_FILE")
    assert photos.pending_parts(owner) == set()


def test_concurrent_set_and_remove_stay_consistent(photos, make_account):
    owner = make_account()
    community_id = photos.community(owner)
    blobs, file_ids = photos.blob_names(), photos.file_ids()
    refs = [photos.upload(owner, fresh_image((150, 150))) if index % 2 else None for index in range(8)]
    barrier = threading.Barrier(len(refs))

    def edit(ref):
        barrier.wait()
        photos.edit(owner, community_id, ref)

    with ThreadPoolExecutor(max_workers=len(refs)) as pool:
        list(pool.map(edit, refs))
    photo = photos.listed_photo(owner, community_id)
    if photo is None:
        assert photos.file_ids() == file_ids and photos.blob_names() == blobs
    else:
        stored = photos.download(owner, photo.file_id)
        assert photos.file_ids() == file_ids | {photo.file_id}
        assert photos.blob_names() == blobs | {sha256(stored)}


def test_an_edit_refused_after_storing_leaves_no_blob(
    photos, server, make_account, join_community, roles_stub, members_stub, monkeypatch
):
    """The permission is checked again when the photo is saved. If it was lost in between (here: the owner takes
    the role away while the image is being stored), the call fails and the stored blob must not stay behind."""
    owner, decorator = make_account(), make_account()
    community_id = photos.community(owner)
    join_community(community_id, decorator)
    grant_modify_community(roles_stub, members_stub, owner, community_id, decorator)
    ref = photos.upload(decorator, fresh_image())
    blobs, file_ids = photos.blob_names(), photos.file_ids()
    store = server.app.blobs
    real_put = store.put

    async def put_then_revoke(data: bytes) -> str:
        key = await real_put(data)
        await asyncio.to_thread(  # a call from another client, while the server's loop goes on
            members_stub.EditMember,
            members_pb2.EditMember(community_id=community_id, member_id=decorator.id, role_ids=members_pb2.RoleIds()),
            metadata=owner.metadata,
            timeout=30,
        )
        return key

    monkeypatch.setattr(store, "put", put_then_revoke)
    error = rpc_error(photos.edit, decorator, community_id, ref)
    monkeypatch.undo()
    assert_error(error, DENIED, "MISSING_PERMISSIONS")
    assert photos.listed_photo(owner, community_id) is None
    assert photos.file_ids() == file_ids
    assert photos.blob_names() == blobs, "a blob no file refers to was left in the store"


def test_a_blob_being_reused_is_not_collected(photos, server, make_account, monkeypatch):
    """Community A drops a photo while community B sets the same image. A's clean-up checks that no file uses the
    blob and then deletes it; if B saves its photo in between, the blob B's photo refers to must survive."""
    owner = make_account()
    first, second = photos.community(owner), photos.community(owner)
    data = fresh_image()
    photos.set_photo(owner, first, data)
    ref = photos.upload(owner, data)
    store = server.app.blobs
    real_delete = store.delete
    results = []
    other = threading.Thread(target=lambda: results.append(photos.edit(owner, second, ref, timeout=30).photo))

    async def delete_after_reuse(key: str) -> None:
        # A has found the blob unused and is about to delete it. B's EditPhoto starts now and gets as far as the
        # server lets it (without a lock, all the way: its file row and its "make sure the blob is there").
        if not other.is_alive() and not results:
            other.start()
            await asyncio.sleep(1.0)
        await real_delete(key)

    monkeypatch.setattr(store, "delete", delete_after_reuse)
    photos.edit(owner, first)  # A drops the photo
    other.join(timeout=60)
    monkeypatch.undo()
    [photo] = results
    assert photos.listed_photo(owner, second) == photo
    assert decode(photos.download(owner, photo.file_id)).size == (90, 90), "B's photo has no blob any more"


def test_a_photo_set_through_one_replica_downloads_through_the_other(photos, server, replica_channel, make_account):
    """On PostgreSQL (the multi-replica database) stored photos live in the database: no shared folder is needed.
    (SQLite is one machine: its photos are files under --media-dir.)"""
    if server.database_url.startswith("sqlite"):
        pytest.skip("replicas share a PostgreSQL database; SQLite keeps photos under --media-dir")
    owner = make_account()
    community_id = photos.community(owner)
    data = fresh_image((200, 150))
    photo = photos.set_photo(owner, community_id, data)
    through_first = photos.download(owner, photo.file_id)
    other = media_pb2_grpc.MediaStub(replica_channel)
    received, size = b"", None
    while size is None or len(received) < size:
        part = other.DownloadFilePart(
            media_pb2.DownloadFilePart(file_id=photo.file_id, offset=len(received), length=4096),
            metadata=owner.metadata,
        )
        received, size = received + part.data, part.size
    assert received == through_first and decode(received).size == (150, 150)
