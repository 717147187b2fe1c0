"""communities.v1.Channels."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api import convert
from communities.api.calls import current_principal
from communities.services import channels as service
from communities.services.context import App
from communities.v1 import channels_pb2, channels_pb2_grpc


class ChannelsServicer(channels_pb2_grpc.ChannelsServicer):
    def __init__(self, app: App):
        self.app = app

    async def GetChannels(self, request, context):
        views = await service.get_channels(self.app, current_principal(), request.community_id)
        if views.encoded is None:  # the list is cached (services/channels.py): so is its message, never mutated
            views.encoded = channels_pb2.ChannelList(channels=[convert.channel(view) for view in views])
        return views.encoded

    async def CreateChannel(self, request, context):
        view = await service.create_channel(
            self.app,
            current_principal(),
            request.community_id,
            name=request.name,
            channel_type=request.type,
            parent_id=request.parent_id if request.HasField("parent_id") else None,
            position=request.position if request.HasField("position") else None,
        )
        return convert.channel(view)

    async def EditChannel(self, request, context):
        view = await service.edit_channel(
            self.app,
            current_principal(),
            request.channel_id,
            name=request.name if request.HasField("name") else None,
            position=request.position if request.HasField("position") else None,
            parent_id=request.parent_id if request.HasField("parent_id") else None,
        )
        return convert.channel(view)

    async def DeleteChannel(self, request, context):
        await service.delete_channel(self.app, current_principal(), request.channel_id)
        return empty_pb2.Empty()

    async def GetChannelOverrides(self, request, context):
        views = await service.get_overrides(self.app, current_principal(), request.channel_id)
        return channels_pb2.ChannelOverrides(overrides=[convert.channel_override(view) for view in views])

    async def CreateChannelOverride(self, request, context):
        view = await service.create_override(
            self.app,
            current_principal(),
            request.channel_id,
            request.role_id,
            request.overrides.pos,
            request.overrides.neg,
        )
        return convert.channel_override(view)

    async def DeleteChannelOverride(self, request, context):
        await service.delete_override(self.app, current_principal(), request.channel_id, request.role_id)
        return empty_pb2.Empty()
