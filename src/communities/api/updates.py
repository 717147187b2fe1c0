"""communities.v1.Updates."""

from __future__ import annotations

from communities.api.calls import current_principal
from communities.services import updates as service
from communities.services.context import App
from communities.services.updates import Delivery
from communities.updates import encode
from communities.v1 import updates_pb2, updates_pb2_grpc


def update(delivery: Delivery) -> updates_pb2.Update:
    event = delivery.event
    if event is None:  # the stream's own: ready or checkpoint
        message = updates_pb2.Update(cursor=delivery.cursor)
        getattr(message, delivery.kind).SetInParent()
        return message
    message = updates_pb2.Update.FromString(event.payload)
    message.cursor = delivery.cursor
    message.community_id = event.community_id
    message.at.CopyFrom(encode.timestamp(event.at_ms))
    # The parts that depend on who receives it.
    which = message.WhichOneof("event")
    if which in ("channel_created", "channel_updated"):
        getattr(message, which).permissions = delivery.channel_permissions
    elif which == "community_updated" and delivery.membership is not None:
        community = message.community_updated
        community.owner = delivery.membership.member.is_owner
        community.permissions = delivery.permissions
        community.muted = delivery.membership.muted
    return message


class UpdatesServicer(updates_pb2_grpc.UpdatesServicer):
    def __init__(self, app: App):
        self.app = app

    async def Subscribe(self, request, context):
        async for delivery in service.subscribe(self.app, current_principal(), request.cursor):
            yield update(delivery)
