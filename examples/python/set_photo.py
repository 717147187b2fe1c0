"""Set a community's photo from an image file: upload it in parts, then EditPhoto; print the ChatPhoto.

COMMUNITIES_BOT_TOKEN=... .venv/bin/python examples/python/set_photo.py COMMUNITY_ID path/to/image.png
"""

import os
import secrets
import sys

import grpc

from communities.v1 import communities_pb2, communities_pb2_grpc, media_pb2, media_pb2_grpc

PART = 512 * 1024  # the largest part the server takes


def main(community_id: int, path: str) -> None:
    metadata = (("authorization", f"Bot {os.environ['COMMUNITIES_BOT_TOKEN']}"),)
    channel = grpc.insecure_channel(os.environ.get("COMMUNITIES_ADDRESS", "127.0.0.1:50051"))
    media, communities = media_pb2_grpc.MediaStub(channel), communities_pb2_grpc.CommunitiesStub(channel)
    data = open(path, "rb").read()
    upload_id = secrets.randbits(63)  # any id of ours; parts may go in any order and be retried
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    for number, part in enumerate(parts):
        media.UploadFilePart(media_pb2.UploadFilePart(upload_id=upload_id, part=number, data=part), metadata=metadata)
    ref = media_pb2.UploadedFileRef(id=upload_id, name=os.path.basename(path), part_count=len(parts))
    community = communities.EditPhoto(communities_pb2.EditPhoto(community_id=community_id, file=ref), metadata=metadata)
    print(f"photo file_id {community.photo.file_id}, preview {len(community.photo.preview)} bytes")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
