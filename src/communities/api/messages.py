"""communities.v1.Messages."""

from __future__ import annotations

from google.protobuf import empty_pb2

from communities.api.calls import current_principal
from communities.services import messages as service
from communities.services.context import App
from communities.updates.encode_messages import message, read_state
from communities.v1 import messages_pb2, messages_pb2_grpc


def _state(view: service.ReadStateView) -> messages_pb2.ReadState:
    return read_state(view.channel_id, view.last_read_message_id, view.unread_count, view.unread_mention_count)


class MessagesServicer(messages_pb2_grpc.MessagesServicer):
    def __init__(self, app: App):
        self.app = app

    async def SendMessage(self, request, context):
        client_id = request.client_id if request.HasField("client_id") else None
        record = await service.send_message(self.app, current_principal(), request.channel_id, request.text, client_id)
        return message(record)

    async def GetHistory(self, request, context):
        which = request.WhichOneof("cursor")
        cursor = {which: getattr(request, which)} if which else {}
        records = await service.get_history(
            self.app, current_principal(), request.channel_id, limit=request.limit, **cursor
        )
        answer = messages_pb2.MessageList()
        answer.messages.extend(message(record) for record in records)
        return answer

    async def EditMessage(self, request, context):
        record = await service.edit_message(
            self.app, current_principal(), request.channel_id, request.message_id, request.text
        )
        return message(record)

    async def DeleteMessage(self, request, context):
        await service.delete_message(self.app, current_principal(), request.channel_id, request.message_id)
        return empty_pb2.Empty()

    async def MarkRead(self, request, context):
        return _state(await service.mark_read(self.app, current_principal(), request.channel_id, request.message_id))

    async def GetReadStates(self, request, context):
        views = await service.get_read_states(self.app, current_principal(), request.community_id)
        return messages_pb2.ReadStates(states=[_state(view) for view in views])
