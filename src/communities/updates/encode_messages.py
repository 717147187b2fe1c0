"""Message records -> protobuf, for events and the API alike."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from communities.storage.messages import MessageRecord
from communities.v1 import messages_pb2

_Message = messages_pb2.Message


def _timestamp(ms: int) -> Timestamp:
    # Timestamp.FromMilliseconds validates and converts in Python: half the cost of a whole Message here.
    return Timestamp(seconds=ms // 1000, nanos=ms % 1000 * 1_000_000)


def message(record: MessageRecord) -> messages_pb2.Message:
    """Built for every message of a history page: empty and unset fields are left out rather than assigned."""
    result = _Message(
        id=record.id,
        community_id=record.community_id,
        channel_id=record.channel_id,
        author_id=record.author_id,
        text=record.text,
        type=record.type,
        created_at=_timestamp(record.created_at_ms),
    )
    if record.mention_user_ids:
        result.mention_user_ids.extend(record.mention_user_ids)
    if record.mention_role_ids:
        result.mention_role_ids.extend(record.mention_role_ids)
    if record.mention_everyone:
        result.mention_everyone = True
    if record.edited_at_ms is not None:
        result.edited_at.CopyFrom(_timestamp(record.edited_at_ms))
    if record.client_id is not None:
        result.client_id = record.client_id
    return result


def read_state(channel_id: int, last_read_message_id: int, unread: int, mentions: int) -> messages_pb2.ReadState:
    return messages_pb2.ReadState(
        channel_id=channel_id,
        last_read_message_id=last_read_message_id,
        unread_count=unread,
        unread_mention_count=mentions,
    )
