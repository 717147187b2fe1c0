"""EditPhoto from a real image through chunked upload, and reading it back in chunks."""

import io

from PIL import Image

from communities.v1 import communities_pb2, media_pb2


def test_photo_round_trip(communities_stub, grpc_channel, make_account):
    from communities.v1 import media_pb2_grpc

    media = media_pb2_grpc.MediaStub(grpc_channel)
    owner = make_account("Owner")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="P"), metadata=owner.metadata)
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 800), (200, 30, 30)).save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    part_size = 100_000
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    for index in reversed(range(len(parts))):  # any order
        media.UploadFilePart(
            media_pb2.UploadFilePart(upload_id=7, part=index, data=parts[index]), metadata=owner.metadata
        )
    updated = communities_stub.EditPhoto(
        communities_pb2.EditPhoto(
            community_id=community.id, file=media_pb2.UploadedFileRef(id=7, name="a.jpg", part_count=len(parts))
        ),
        metadata=owner.metadata,
    )
    assert updated.photo.file_id and 0 < len(updated.photo.preview) < 1000
    chunks, offset = [], 0
    while True:
        chunk = media.DownloadFilePart(
            media_pb2.DownloadFilePart(file_id=updated.photo.file_id, offset=offset, length=1000),
            metadata=owner.metadata,
        )
        if not chunk.data:
            break
        chunks.append(chunk.data)
        offset += len(chunk.data)
    stored = Image.open(io.BytesIO(b"".join(chunks)))
    assert stored.size == (512, 512)
