"""communities.v1.Media."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api.calls import current_principal
from communities.services import media as service
from communities.services.context import App
from communities.v1 import media_pb2, media_pb2_grpc


class MediaServicer(media_pb2_grpc.MediaServicer):
    def __init__(self, app: App):
        self.app = app

    async def UploadFilePart(self, request, context):
        await service.upload_part(self.app, current_principal(), request.upload_id, request.part, request.data)
        return empty_pb2.Empty()

    async def DownloadFilePart(self, request, context):
        chunk = await service.download_part(
            self.app, current_principal(), request.file_id, request.offset, request.length
        )
        return media_pb2.FilePart(data=chunk.data, size=chunk.size)
