import datetime

from communities.v1 import media_pb2 as _media_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Community(_message.Message):
    __slots__ = ("id", "owner", "name", "photo", "permissions", "muted")
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    id: int
    owner: bool
    name: str
    photo: ChatPhoto
    permissions: int
    muted: bool
    def __init__(self, id: _Optional[int] = ..., owner: _Optional[bool] = ..., name: _Optional[str] = ..., photo: _Optional[_Union[ChatPhoto, _Mapping]] = ..., permissions: _Optional[int] = ..., muted: _Optional[bool] = ...) -> None: ...

class ChatPhoto(_message.Message):
    __slots__ = ("file_id", "preview")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    file_id: int
    preview: bytes
    def __init__(self, file_id: _Optional[int] = ..., preview: _Optional[bytes] = ...) -> None: ...

class CommunityList(_message.Message):
    __slots__ = ("communities", "community_user_info", "unavailable")
    COMMUNITIES_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_USER_INFO_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    communities: _containers.RepeatedCompositeFieldContainer[Community]
    community_user_info: _containers.RepeatedCompositeFieldContainer[CommunityUserInfo]
    unavailable: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, communities: _Optional[_Iterable[_Union[Community, _Mapping]]] = ..., community_user_info: _Optional[_Iterable[_Union[CommunityUserInfo, _Mapping]]] = ..., unavailable: _Optional[_Iterable[int]] = ...) -> None: ...

class CommunityUserInfo(_message.Message):
    __slots__ = ("community_id", "unread_count", "unread_mention_count")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNREAD_MENTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    unread_count: int
    unread_mention_count: int
    def __init__(self, community_id: _Optional[int] = ..., unread_count: _Optional[int] = ..., unread_mention_count: _Optional[int] = ...) -> None: ...

class CommunitySettings(_message.Message):
    __slots__ = ("system_messages",)
    SYSTEM_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    system_messages: SystemMessages
    def __init__(self, system_messages: _Optional[_Union[SystemMessages, _Mapping]] = ...) -> None: ...

class SystemMessages(_message.Message):
    __slots__ = ("channel_id", "join_messages")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    JOIN_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    join_messages: bool
    def __init__(self, channel_id: _Optional[int] = ..., join_messages: _Optional[bool] = ...) -> None: ...

class GetCommunities(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateCommunity(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class EditCommunity(_message.Message):
    __slots__ = ("community_id", "name")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    name: str
    def __init__(self, community_id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class EditPhoto(_message.Message):
    __slots__ = ("community_id", "file")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    file: _media_pb2.UploadedFileRef
    def __init__(self, community_id: _Optional[int] = ..., file: _Optional[_Union[_media_pb2.UploadedFileRef, _Mapping]] = ...) -> None: ...

class LeaveCommunity(_message.Message):
    __slots__ = ("community_id",)
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    def __init__(self, community_id: _Optional[int] = ...) -> None: ...

class DeleteCommunity(_message.Message):
    __slots__ = ("community_id",)
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    def __init__(self, community_id: _Optional[int] = ...) -> None: ...

class EditSettings(_message.Message):
    __slots__ = ("community_id", "settings")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    settings: CommunitySettings
    def __init__(self, community_id: _Optional[int] = ..., settings: _Optional[_Union[CommunitySettings, _Mapping]] = ...) -> None: ...

class GetSettings(_message.Message):
    __slots__ = ("community_id",)
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    def __init__(self, community_id: _Optional[int] = ...) -> None: ...

class SetMuted(_message.Message):
    __slots__ = ("community_id", "muted")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    MUTED_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    muted: bool
    def __init__(self, community_id: _Optional[int] = ..., muted: _Optional[bool] = ...) -> None: ...

class GetAuditLog(_message.Message):
    __slots__ = ("community_id", "page_size", "page_token", "action", "actor_id")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    page_size: int
    page_token: str
    action: str
    actor_id: int
    def __init__(self, community_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., action: _Optional[str] = ..., actor_id: _Optional[int] = ...) -> None: ...

class AuditLogEntry(_message.Message):
    __slots__ = ("id", "action", "actor_id", "target_id", "at", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: int
    action: str
    actor_id: int
    target_id: int
    at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, id: _Optional[int] = ..., action: _Optional[str] = ..., actor_id: _Optional[int] = ..., target_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class AuditLog(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditLogEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditLogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
