import datetime

from communities.v1 import channels_pb2 as _channels_pb2
from communities.v1 import communities_pb2 as _communities_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InviteState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVITE_STATE_UNSPECIFIED: _ClassVar[InviteState]
    INVITE_STATE_ACTIVE: _ClassVar[InviteState]
    INVITE_STATE_EXPIRED: _ClassVar[InviteState]
    INVITE_STATE_USED_UP: _ClassVar[InviteState]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    PROCESSING: _ClassVar[JobStatus]
    COMPLETED: _ClassVar[JobStatus]
    FAILED: _ClassVar[JobStatus]
INVITE_STATE_UNSPECIFIED: InviteState
INVITE_STATE_ACTIVE: InviteState
INVITE_STATE_EXPIRED: InviteState
INVITE_STATE_USED_UP: InviteState
JOB_STATUS_UNSPECIFIED: JobStatus
PROCESSING: JobStatus
COMPLETED: JobStatus
FAILED: JobStatus

class InviteRole(_message.Message):
    __slots__ = ("id", "name", "color")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    color: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., color: _Optional[int] = ...) -> None: ...

class Invite(_message.Message):
    __slots__ = ("code", "community_id", "channel_id", "inviter_id", "roles", "uses", "max_uses", "max_age", "created_at", "expires_at", "targeted", "state", "temporary")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    INVITER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TARGETED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TEMPORARY_FIELD_NUMBER: _ClassVar[int]
    code: str
    community_id: int
    channel_id: int
    inviter_id: int
    roles: _containers.RepeatedCompositeFieldContainer[InviteRole]
    uses: int
    max_uses: int
    max_age: int
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    targeted: bool
    state: InviteState
    temporary: bool
    def __init__(self, code: _Optional[str] = ..., community_id: _Optional[int] = ..., channel_id: _Optional[int] = ..., inviter_id: _Optional[int] = ..., roles: _Optional[_Iterable[_Union[InviteRole, _Mapping]]] = ..., uses: _Optional[int] = ..., max_uses: _Optional[int] = ..., max_age: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., targeted: _Optional[bool] = ..., state: _Optional[_Union[InviteState, str]] = ..., temporary: _Optional[bool] = ...) -> None: ...

class InviteList(_message.Message):
    __slots__ = ("invites", "next_page_token")
    INVITES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    invites: _containers.RepeatedCompositeFieldContainer[Invite]
    next_page_token: str
    def __init__(self, invites: _Optional[_Iterable[_Union[Invite, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class InvitePreview(_message.Message):
    __slots__ = ("code", "community_id", "community_name", "community_photo", "channel_id", "channel_name", "channel_type", "approximate_member_count", "roles", "expires_at", "inviter_id", "targeted")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_NAME_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_PHOTO_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_TYPE_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATE_MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    INVITER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGETED_FIELD_NUMBER: _ClassVar[int]
    code: str
    community_id: int
    community_name: str
    community_photo: _communities_pb2.ChatPhoto
    channel_id: int
    channel_name: str
    channel_type: _channels_pb2.ChannelType
    approximate_member_count: int
    roles: _containers.RepeatedCompositeFieldContainer[InviteRole]
    expires_at: _timestamp_pb2.Timestamp
    inviter_id: int
    targeted: bool
    def __init__(self, code: _Optional[str] = ..., community_id: _Optional[int] = ..., community_name: _Optional[str] = ..., community_photo: _Optional[_Union[_communities_pb2.ChatPhoto, _Mapping]] = ..., channel_id: _Optional[int] = ..., channel_name: _Optional[str] = ..., channel_type: _Optional[_Union[_channels_pb2.ChannelType, str]] = ..., approximate_member_count: _Optional[int] = ..., roles: _Optional[_Iterable[_Union[InviteRole, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inviter_id: _Optional[int] = ..., targeted: _Optional[bool] = ...) -> None: ...

class CreateInvite(_message.Message):
    __slots__ = ("channel_id", "max_age", "max_uses", "unique", "role_ids", "target_users_file", "temporary")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    TARGET_USERS_FILE_FIELD_NUMBER: _ClassVar[int]
    TEMPORARY_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    max_age: int
    max_uses: int
    unique: bool
    role_ids: _containers.RepeatedScalarFieldContainer[int]
    target_users_file: bytes
    temporary: bool
    def __init__(self, channel_id: _Optional[int] = ..., max_age: _Optional[int] = ..., max_uses: _Optional[int] = ..., unique: _Optional[bool] = ..., role_ids: _Optional[_Iterable[int]] = ..., target_users_file: _Optional[bytes] = ..., temporary: _Optional[bool] = ...) -> None: ...

class LookupInvite(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class UseInvite(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class ListInvites(_message.Message):
    __slots__ = ("community_id", "channel_id", "include_inactive", "page_size", "page_token")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INACTIVE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    channel_id: int
    include_inactive: bool
    page_size: int
    page_token: str
    def __init__(self, community_id: _Optional[int] = ..., channel_id: _Optional[int] = ..., include_inactive: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class DeleteInvite(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class GetTargetUsers(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class TargetUsersFile(_message.Message):
    __slots__ = ("target_users_file",)
    TARGET_USERS_FILE_FIELD_NUMBER: _ClassVar[int]
    target_users_file: bytes
    def __init__(self, target_users_file: _Optional[bytes] = ...) -> None: ...

class UpdateTargetUsers(_message.Message):
    __slots__ = ("code", "target_users_file")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_USERS_FILE_FIELD_NUMBER: _ClassVar[int]
    code: str
    target_users_file: bytes
    def __init__(self, code: _Optional[str] = ..., target_users_file: _Optional[bytes] = ...) -> None: ...

class GetTargetUsersJobStatus(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class TargetUsersJobStatus(_message.Message):
    __slots__ = ("status", "total_users", "processed_users", "created_at", "completed_at", "error_message", "unknown_users")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_USERS_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_USERS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_USERS_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    total_users: int
    processed_users: int
    created_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    error_message: str
    unknown_users: int
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., total_users: _Optional[int] = ..., processed_users: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_message: _Optional[str] = ..., unknown_users: _Optional[int] = ...) -> None: ...
