import datetime

from communities.v1 import channels_pb2 as _channels_pb2
from communities.v1 import communities_pb2 as _communities_pb2
from communities.v1 import invites_pb2 as _invites_pb2
from communities.v1 import members_pb2 as _members_pb2
from communities.v1 import messages_pb2 as _messages_pb2
from communities.v1 import roles_pb2 as _roles_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MemberLeftReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_LEFT_REASON_UNSPECIFIED: _ClassVar[MemberLeftReason]
    MEMBER_LEFT_REASON_LEFT: _ClassVar[MemberLeftReason]
    MEMBER_LEFT_REASON_KICKED: _ClassVar[MemberLeftReason]
    MEMBER_LEFT_REASON_BANNED: _ClassVar[MemberLeftReason]
    MEMBER_LEFT_REASON_TEMPORARY_EXPIRED: _ClassVar[MemberLeftReason]
MEMBER_LEFT_REASON_UNSPECIFIED: MemberLeftReason
MEMBER_LEFT_REASON_LEFT: MemberLeftReason
MEMBER_LEFT_REASON_KICKED: MemberLeftReason
MEMBER_LEFT_REASON_BANNED: MemberLeftReason
MEMBER_LEFT_REASON_TEMPORARY_EXPIRED: MemberLeftReason

class Subscribe(_message.Message):
    __slots__ = ("cursor",)
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    def __init__(self, cursor: _Optional[str] = ...) -> None: ...

class Update(_message.Message):
    __slots__ = ("cursor", "community_id", "at", "ready", "community_updated", "community_deleted", "settings_updated", "member_joined", "member_updated", "member_left", "member_unbanned", "role_created", "role_updated", "role_deleted", "default_permissions_updated", "channel_created", "channel_updated", "channel_deleted", "override_updated", "override_deleted", "invite_created", "invite_deleted", "message_created", "message_edited", "message_deleted", "read_state_updated", "checkpoint")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_UPDATED_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_DELETED_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_JOINED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_UPDATED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_LEFT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_UNBANNED_FIELD_NUMBER: _ClassVar[int]
    ROLE_CREATED_FIELD_NUMBER: _ClassVar[int]
    ROLE_UPDATED_FIELD_NUMBER: _ClassVar[int]
    ROLE_DELETED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PERMISSIONS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_CREATED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_DELETED_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_UPDATED_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_DELETED_FIELD_NUMBER: _ClassVar[int]
    INVITE_CREATED_FIELD_NUMBER: _ClassVar[int]
    INVITE_DELETED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CREATED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_EDITED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DELETED_FIELD_NUMBER: _ClassVar[int]
    READ_STATE_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    community_id: int
    at: _timestamp_pb2.Timestamp
    ready: Ready
    community_updated: _communities_pb2.Community
    community_deleted: CommunityDeleted
    settings_updated: _communities_pb2.CommunitySettings
    member_joined: MemberJoined
    member_updated: MemberUpdated
    member_left: MemberLeft
    member_unbanned: MemberUnbanned
    role_created: _roles_pb2.CommunityRole
    role_updated: _roles_pb2.CommunityRole
    role_deleted: RoleDeleted
    default_permissions_updated: DefaultPermissionsUpdated
    channel_created: _channels_pb2.Channel
    channel_updated: _channels_pb2.Channel
    channel_deleted: ChannelDeleted
    override_updated: _channels_pb2.ChannelOverride
    override_deleted: OverrideDeleted
    invite_created: _invites_pb2.Invite
    invite_deleted: InviteDeleted
    message_created: _messages_pb2.Message
    message_edited: _messages_pb2.Message
    message_deleted: MessageDeleted
    read_state_updated: _messages_pb2.ReadState
    checkpoint: Checkpoint
    def __init__(self, cursor: _Optional[str] = ..., community_id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ready: _Optional[_Union[Ready, _Mapping]] = ..., community_updated: _Optional[_Union[_communities_pb2.Community, _Mapping]] = ..., community_deleted: _Optional[_Union[CommunityDeleted, _Mapping]] = ..., settings_updated: _Optional[_Union[_communities_pb2.CommunitySettings, _Mapping]] = ..., member_joined: _Optional[_Union[MemberJoined, _Mapping]] = ..., member_updated: _Optional[_Union[MemberUpdated, _Mapping]] = ..., member_left: _Optional[_Union[MemberLeft, _Mapping]] = ..., member_unbanned: _Optional[_Union[MemberUnbanned, _Mapping]] = ..., role_created: _Optional[_Union[_roles_pb2.CommunityRole, _Mapping]] = ..., role_updated: _Optional[_Union[_roles_pb2.CommunityRole, _Mapping]] = ..., role_deleted: _Optional[_Union[RoleDeleted, _Mapping]] = ..., default_permissions_updated: _Optional[_Union[DefaultPermissionsUpdated, _Mapping]] = ..., channel_created: _Optional[_Union[_channels_pb2.Channel, _Mapping]] = ..., channel_updated: _Optional[_Union[_channels_pb2.Channel, _Mapping]] = ..., channel_deleted: _Optional[_Union[ChannelDeleted, _Mapping]] = ..., override_updated: _Optional[_Union[_channels_pb2.ChannelOverride, _Mapping]] = ..., override_deleted: _Optional[_Union[OverrideDeleted, _Mapping]] = ..., invite_created: _Optional[_Union[_invites_pb2.Invite, _Mapping]] = ..., invite_deleted: _Optional[_Union[InviteDeleted, _Mapping]] = ..., message_created: _Optional[_Union[_messages_pb2.Message, _Mapping]] = ..., message_edited: _Optional[_Union[_messages_pb2.Message, _Mapping]] = ..., message_deleted: _Optional[_Union[MessageDeleted, _Mapping]] = ..., read_state_updated: _Optional[_Union[_messages_pb2.ReadState, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class Ready(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CommunityDeleted(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberJoined(_message.Message):
    __slots__ = ("member", "invite_code", "inviter_id", "granted_role_ids", "temporary")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    INVITE_CODE_FIELD_NUMBER: _ClassVar[int]
    INVITER_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTED_ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    TEMPORARY_FIELD_NUMBER: _ClassVar[int]
    member: _members_pb2.CommunityMember
    invite_code: str
    inviter_id: int
    granted_role_ids: _containers.RepeatedScalarFieldContainer[int]
    temporary: bool
    def __init__(self, member: _Optional[_Union[_members_pb2.CommunityMember, _Mapping]] = ..., invite_code: _Optional[str] = ..., inviter_id: _Optional[int] = ..., granted_role_ids: _Optional[_Iterable[int]] = ..., temporary: _Optional[bool] = ...) -> None: ...

class MemberUpdated(_message.Message):
    __slots__ = ("member", "invite_code", "inviter_id", "granted_role_ids")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    INVITE_CODE_FIELD_NUMBER: _ClassVar[int]
    INVITER_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTED_ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    member: _members_pb2.CommunityMember
    invite_code: str
    inviter_id: int
    granted_role_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, member: _Optional[_Union[_members_pb2.CommunityMember, _Mapping]] = ..., invite_code: _Optional[str] = ..., inviter_id: _Optional[int] = ..., granted_role_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class MemberLeft(_message.Message):
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    reason: MemberLeftReason
    def __init__(self, user_id: _Optional[int] = ..., reason: _Optional[_Union[MemberLeftReason, str]] = ...) -> None: ...

class MemberUnbanned(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    def __init__(self, user_id: _Optional[int] = ...) -> None: ...

class RoleDeleted(_message.Message):
    __slots__ = ("role_id",)
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    role_id: int
    def __init__(self, role_id: _Optional[int] = ...) -> None: ...

class DefaultPermissionsUpdated(_message.Message):
    __slots__ = ("permissions",)
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    permissions: int
    def __init__(self, permissions: _Optional[int] = ...) -> None: ...

class ChannelDeleted(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    def __init__(self, channel_id: _Optional[int] = ...) -> None: ...

class OverrideDeleted(_message.Message):
    __slots__ = ("channel_id", "role_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    role_id: int
    def __init__(self, channel_id: _Optional[int] = ..., role_id: _Optional[int] = ...) -> None: ...

class MessageDeleted(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    message_id: int
    def __init__(self, channel_id: _Optional[int] = ..., message_id: _Optional[int] = ...) -> None: ...

class InviteDeleted(_message.Message):
    __slots__ = ("code", "channel_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    channel_id: int
    def __init__(self, code: _Optional[str] = ..., channel_id: _Optional[int] = ...) -> None: ...
