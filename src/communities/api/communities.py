"""communities.v1.Communities: translate proto <-> services.communities and nothing else."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api import convert
from communities.api.calls import current_principal
from communities.services import communities as service
from communities.services import media as media_service
from communities.services.context import App
from communities.v1 import communities_pb2_grpc


class CommunitiesServicer(communities_pb2_grpc.CommunitiesServicer):
    def __init__(self, app: App):
        self.app = app

    async def GetCommunities(self, request, context):
        views = await service.get_communities(self.app, current_principal())
        if views.encoded is None:  # possibly cached (services/communities.py): so is its message, never mutated
            views.encoded = convert.community_list(views)
        return views.encoded

    async def CreateCommunity(self, request, context):
        return convert.community(await service.create_community(self.app, current_principal(), request.name))

    async def EditCommunity(self, request, context):
        name = request.name if request.HasField("name") else None
        view = await service.edit_community(self.app, current_principal(), request.community_id, name)
        return convert.community(view)

    async def EditPhoto(self, request, context):
        ref = None
        if request.HasField("file"):
            ref = media_service.FileRef(
                upload_id=request.file.id, name=request.file.name, part_count=request.file.part_count
            )
        view = await media_service.edit_photo(self.app, current_principal(), request.community_id, ref)
        return convert.community(view)

    async def LeaveCommunity(self, request, context):
        await service.leave_community(self.app, current_principal(), request.community_id)
        return empty_pb2.Empty()

    async def DeleteCommunity(self, request, context):
        await service.delete_community(self.app, current_principal(), request.community_id)
        return empty_pb2.Empty()

    async def EditSettings(self, request, context):
        system = request.settings.system_messages
        view = await service.edit_settings(
            self.app,
            current_principal(),
            request.community_id,
            system_channel_id=system.channel_id if system.HasField("channel_id") else None,
            join_messages=system.join_messages if system.HasField("join_messages") else None,
        )
        return convert.settings(view)

    async def GetSettings(self, request, context):
        return convert.settings(await service.get_settings(self.app, current_principal(), request.community_id))

    async def SetMuted(self, request, context):
        view = await service.set_muted(self.app, current_principal(), request.community_id, request.muted)
        return convert.community(view)

    async def GetAuditLog(self, request, context):
        page = await service.get_audit_log(
            self.app,
            current_principal(),
            request.community_id,
            page_size=request.page_size,
            page_token=request.page_token,
            action=request.action if request.HasField("action") else None,
            actor_id=request.actor_id if request.HasField("actor_id") else None,
        )
        return convert.audit_log(page)
