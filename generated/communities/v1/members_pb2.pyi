import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CommunityMember(_message.Message):
    __slots__ = ("id", "community_id", "role_ids", "nickname", "joined_at", "invite_code")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    INVITE_CODE_FIELD_NUMBER: _ClassVar[int]
    id: int
    community_id: int
    role_ids: _containers.RepeatedScalarFieldContainer[int]
    nickname: str
    joined_at: _timestamp_pb2.Timestamp
    invite_code: str
    def __init__(self, id: _Optional[int] = ..., community_id: _Optional[int] = ..., role_ids: _Optional[_Iterable[int]] = ..., nickname: _Optional[str] = ..., joined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., invite_code: _Optional[str] = ...) -> None: ...

class CommunityMembers(_message.Message):
    __slots__ = ("members", "next_page_token")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[CommunityMember]
    next_page_token: str
    def __init__(self, members: _Optional[_Iterable[_Union[CommunityMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RoleIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetMembers(_message.Message):
    __slots__ = ("community_id", "member_ids")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    member_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, community_id: _Optional[int] = ..., member_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ListMembers(_message.Message):
    __slots__ = ("community_id", "page_size", "page_token")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    page_size: int
    page_token: str
    def __init__(self, community_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class EditMember(_message.Message):
    __slots__ = ("community_id", "member_id", "nickname", "role_ids")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    NICKNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    member_id: int
    nickname: str
    role_ids: RoleIds
    def __init__(self, community_id: _Optional[int] = ..., member_id: _Optional[int] = ..., nickname: _Optional[str] = ..., role_ids: _Optional[_Union[RoleIds, _Mapping]] = ...) -> None: ...

class RemoveMembers(_message.Message):
    __slots__ = ("community_id", "member_ids", "until", "reason")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    member_ids: _containers.RepeatedScalarFieldContainer[int]
    until: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, community_id: _Optional[int] = ..., member_ids: _Optional[_Iterable[int]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RemovedMember(_message.Message):
    __slots__ = ("user_id", "until", "reason", "removed_by", "removed_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REMOVED_BY_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    until: _timestamp_pb2.Timestamp
    reason: str
    removed_by: int
    removed_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[int] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., removed_by: _Optional[int] = ..., removed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RemovedMembers(_message.Message):
    __slots__ = ("removed", "next_page_token")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedCompositeFieldContainer[RemovedMember]
    next_page_token: str
    def __init__(self, removed: _Optional[_Iterable[_Union[RemovedMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRemovedMembers(_message.Message):
    __slots__ = ("community_id", "page_size", "page_token")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    page_size: int
    page_token: str
    def __init__(self, community_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class UnbanMembers(_message.Message):
    __slots__ = ("community_id", "user_ids")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    user_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, community_id: _Optional[int] = ..., user_ids: _Optional[_Iterable[int]] = ...) -> None: ...
