from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PermissionSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERMISSION_SOURCE_UNSPECIFIED: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_OWNER: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_DEFAULT: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_ROLE: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_ADMINISTRATOR: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_EVERYONE_OVERRIDE: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_ROLE_OVERRIDE: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_ROLE_OVERRIDES: _ClassVar[PermissionSource]
    PERMISSION_SOURCE_NO_VIEW_CHANNEL: _ClassVar[PermissionSource]
PERMISSION_SOURCE_UNSPECIFIED: PermissionSource
PERMISSION_SOURCE_OWNER: PermissionSource
PERMISSION_SOURCE_DEFAULT: PermissionSource
PERMISSION_SOURCE_ROLE: PermissionSource
PERMISSION_SOURCE_ADMINISTRATOR: PermissionSource
PERMISSION_SOURCE_EVERYONE_OVERRIDE: PermissionSource
PERMISSION_SOURCE_ROLE_OVERRIDE: PermissionSource
PERMISSION_SOURCE_ROLE_OVERRIDES: PermissionSource
PERMISSION_SOURCE_NO_VIEW_CHANNEL: PermissionSource

class CommunityRole(_message.Message):
    __slots__ = ("id", "community_id", "name", "permissions", "priority", "color", "separated", "public")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    SEPARATED_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    id: int
    community_id: int
    name: str
    permissions: int
    priority: int
    color: int
    separated: bool
    public: bool
    def __init__(self, id: _Optional[int] = ..., community_id: _Optional[int] = ..., name: _Optional[str] = ..., permissions: _Optional[int] = ..., priority: _Optional[int] = ..., color: _Optional[int] = ..., separated: _Optional[bool] = ..., public: _Optional[bool] = ...) -> None: ...

class CommunityRoles(_message.Message):
    __slots__ = ("roles", "default_permissions")
    ROLES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    roles: _containers.RepeatedCompositeFieldContainer[CommunityRole]
    default_permissions: int
    def __init__(self, roles: _Optional[_Iterable[_Union[CommunityRole, _Mapping]]] = ..., default_permissions: _Optional[int] = ...) -> None: ...

class GetRoles(_message.Message):
    __slots__ = ("community_id",)
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    def __init__(self, community_id: _Optional[int] = ...) -> None: ...

class CreateRole(_message.Message):
    __slots__ = ("community_id", "name", "permissions", "priority", "color", "separated", "public")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    SEPARATED_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    name: str
    permissions: int
    priority: int
    color: int
    separated: bool
    public: bool
    def __init__(self, community_id: _Optional[int] = ..., name: _Optional[str] = ..., permissions: _Optional[int] = ..., priority: _Optional[int] = ..., color: _Optional[int] = ..., separated: _Optional[bool] = ..., public: _Optional[bool] = ...) -> None: ...

class EditRole(_message.Message):
    __slots__ = ("community_id", "role_id", "name", "permissions", "priority", "color", "separated", "public")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    SEPARATED_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    role_id: int
    name: str
    permissions: int
    priority: int
    color: int
    separated: bool
    public: bool
    def __init__(self, community_id: _Optional[int] = ..., role_id: _Optional[int] = ..., name: _Optional[str] = ..., permissions: _Optional[int] = ..., priority: _Optional[int] = ..., color: _Optional[int] = ..., separated: _Optional[bool] = ..., public: _Optional[bool] = ...) -> None: ...

class DeleteRole(_message.Message):
    __slots__ = ("community_id", "role_id")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    role_id: int
    def __init__(self, community_id: _Optional[int] = ..., role_id: _Optional[int] = ...) -> None: ...

class EditDefaultPermissions(_message.Message):
    __slots__ = ("community_id", "permissions")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    permissions: int
    def __init__(self, community_id: _Optional[int] = ..., permissions: _Optional[int] = ...) -> None: ...

class ExplainPermissions(_message.Message):
    __slots__ = ("community_id", "user_id", "channel_id")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    user_id: int
    channel_id: int
    def __init__(self, community_id: _Optional[int] = ..., user_id: _Optional[int] = ..., channel_id: _Optional[int] = ...) -> None: ...

class PermissionStep(_message.Message):
    __slots__ = ("source", "role_id", "allow", "deny", "result")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    source: PermissionSource
    role_id: int
    allow: int
    deny: int
    result: int
    def __init__(self, source: _Optional[_Union[PermissionSource, str]] = ..., role_id: _Optional[int] = ..., allow: _Optional[int] = ..., deny: _Optional[int] = ..., result: _Optional[int] = ...) -> None: ...

class PermissionExplanation(_message.Message):
    __slots__ = ("community_id", "user_id", "channel_id", "permissions", "steps", "rank", "owner")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    user_id: int
    channel_id: int
    permissions: int
    steps: _containers.RepeatedCompositeFieldContainer[PermissionStep]
    rank: int
    owner: bool
    def __init__(self, community_id: _Optional[int] = ..., user_id: _Optional[int] = ..., channel_id: _Optional[int] = ..., permissions: _Optional[int] = ..., steps: _Optional[_Iterable[_Union[PermissionStep, _Mapping]]] = ..., rank: _Optional[int] = ..., owner: _Optional[bool] = ...) -> None: ...
