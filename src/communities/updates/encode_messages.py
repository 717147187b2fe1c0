"""Message records -> protobuf, for events and the API alike."""

from __future__ import annotations

from communities.storage.messages import MessageRecord
from communities.updates.encode import timestamp
from communities.v1 import messages_pb2


def message(record: MessageRecord) -> messages_pb2.Message:
    result = messages_pb2.Message(
        id=record.id,
        community_id=record.community_id,
        channel_id=record.channel_id,
        author_id=record.author_id,
        text=record.text,
        type=record.type,
        created_at=timestamp(record.created_at_ms),
        mention_user_ids=record.mention_user_ids,
        mention_role_ids=record.mention_role_ids,
        mention_everyone=record.mention_everyone,
    )
    if record.edited_at_ms is not None:
        result.edited_at.CopyFrom(timestamp(record.edited_at_ms))
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
