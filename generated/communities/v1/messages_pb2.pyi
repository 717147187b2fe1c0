import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_TYPE_UNSPECIFIED: _ClassVar[MessageType]
    MESSAGE_TYPE_DEFAULT: _ClassVar[MessageType]
    MESSAGE_TYPE_JOIN: _ClassVar[MessageType]
MESSAGE_TYPE_UNSPECIFIED: MessageType
MESSAGE_TYPE_DEFAULT: MessageType
MESSAGE_TYPE_JOIN: MessageType

class Message(_message.Message):
    __slots__ = ("id", "community_id", "channel_id", "author_id", "text", "type", "created_at", "edited_at", "mention_user_ids", "mention_role_ids", "mention_everyone", "client_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EDITED_AT_FIELD_NUMBER: _ClassVar[int]
    MENTION_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    MENTION_ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    MENTION_EVERYONE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    community_id: int
    channel_id: int
    author_id: int
    text: str
    type: MessageType
    created_at: _timestamp_pb2.Timestamp
    edited_at: _timestamp_pb2.Timestamp
    mention_user_ids: _containers.RepeatedScalarFieldContainer[int]
    mention_role_ids: _containers.RepeatedScalarFieldContainer[int]
    mention_everyone: bool
    client_id: int
    def __init__(self, id: _Optional[int] = ..., community_id: _Optional[int] = ..., channel_id: _Optional[int] = ..., author_id: _Optional[int] = ..., text: _Optional[str] = ..., type: _Optional[_Union[MessageType, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., edited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mention_user_ids: _Optional[_Iterable[int]] = ..., mention_role_ids: _Optional[_Iterable[int]] = ..., mention_everyone: _Optional[bool] = ..., client_id: _Optional[int] = ...) -> None: ...

class SendMessage(_message.Message):
    __slots__ = ("channel_id", "text", "client_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    text: str
    client_id: int
    def __init__(self, channel_id: _Optional[int] = ..., text: _Optional[str] = ..., client_id: _Optional[int] = ...) -> None: ...

class GetHistory(_message.Message):
    __slots__ = ("channel_id", "limit", "before", "after", "around")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    AROUND_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    limit: int
    before: int
    after: int
    around: int
    def __init__(self, channel_id: _Optional[int] = ..., limit: _Optional[int] = ..., before: _Optional[int] = ..., after: _Optional[int] = ..., around: _Optional[int] = ...) -> None: ...

class MessageList(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ...) -> None: ...

class EditMessage(_message.Message):
    __slots__ = ("channel_id", "message_id", "text")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    message_id: int
    text: str
    def __init__(self, channel_id: _Optional[int] = ..., message_id: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class DeleteMessage(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    message_id: int
    def __init__(self, channel_id: _Optional[int] = ..., message_id: _Optional[int] = ...) -> None: ...

class MarkRead(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    message_id: int
    def __init__(self, channel_id: _Optional[int] = ..., message_id: _Optional[int] = ...) -> None: ...

class ReadState(_message.Message):
    __slots__ = ("channel_id", "last_read_message_id", "unread_count", "unread_mention_count")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_READ_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNREAD_MENTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    last_read_message_id: int
    unread_count: int
    unread_mention_count: int
    def __init__(self, channel_id: _Optional[int] = ..., last_read_message_id: _Optional[int] = ..., unread_count: _Optional[int] = ..., unread_mention_count: _Optional[int] = ...) -> None: ...

class GetReadStates(_message.Message):
    __slots__ = ("community_id",)
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    def __init__(self, community_id: _Optional[int] = ...) -> None: ...

class ReadStates(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedCompositeFieldContainer[ReadState]
    def __init__(self, states: _Optional[_Iterable[_Union[ReadState, _Mapping]]] = ...) -> None: ...
