"""communities.v1.Updates."""

from __future__ import annotations

from communities.api.calls import current_principal
from communities.services import updates as service
from communities.services.context import App
from communities.services.updates import Delivery
from communities.storage.events import EventRow
from communities.updates import encode
from communities.v1 import updates_pb2, updates_pb2_grpc

# Streams send the bytes of an update (api/calls.py passes bytes through the serializer), encoded once per event
# and per variant of its per-viewer fields for the whole process: a thousand streams share one encoding. Keyed by
# position, for the events the hub holds now (a stream far behind reads its events from the database: new
# objects, which replace the entry).
_ENCODED_EVENTS = 256
_encoded: dict[int, _Encoded] = {}


class _Encoded:
    __slots__ = ("event", "message", "variants", "which")

    def __init__(self, event: EventRow):
        self.event = event
        message = updates_pb2.Update.FromString(event.payload)
        message.cursor = service.encode_cursor(event.position)
        message.community_id = event.community_id
        message.at.CopyFrom(encode.timestamp(event.at_ms))
        self.message = message
        self.which = message.WhichOneof("event")
        self.variants: dict[tuple, bytes] = {}


def update(delivery: Delivery) -> bytes:
    event = delivery.event
    if event is None:  # the stream's own: ready or checkpoint
        message = updates_pb2.Update(cursor=delivery.cursor)
        getattr(message, delivery.kind).SetInParent()
        return message.SerializeToString()
    encoded = _encoded.get(event.position)
    if encoded is None or encoded.event is not event:
        encoded = _Encoded(event)
        _encoded[event.position] = encoded
        if len(_encoded) > _ENCODED_EVENTS:
            del _encoded[next(iter(_encoded))]
    # The parts that depend on who receives it.
    which = encoded.which
    if which in ("channel_created", "channel_updated"):
        variant: tuple = (delivery.channel_permissions,)
    elif which == "community_updated" and delivery.membership is not None:
        variant = (delivery.membership.member.is_owner, delivery.permissions, delivery.membership.muted)
    else:
        variant = ()
    data = encoded.variants.get(variant)
    if data is None:
        message = encoded.message
        if len(variant) == 1:
            getattr(message, which).permissions = variant[0]
        elif variant:
            community = message.community_updated
            community.owner, community.permissions, community.muted = variant
        data = encoded.variants[variant] = message.SerializeToString()
    return data


class UpdatesServicer(updates_pb2_grpc.UpdatesServicer):
    def __init__(self, app: App):
        self.app = app

    async def Subscribe(self, request, context):
        async for delivery in service.subscribe(self.app, current_principal(), request.cursor):
            yield update(delivery)
