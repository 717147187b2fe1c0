from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChannelType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEXT: _ClassVar[ChannelType]
    VOICE: _ClassVar[ChannelType]
    CATEGORY: _ClassVar[ChannelType]
TEXT: ChannelType
VOICE: ChannelType
CATEGORY: ChannelType

class Channel(_message.Message):
    __slots__ = ("id", "community_id", "name", "type", "parent_id", "position", "permissions")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    id: int
    community_id: int
    name: str
    type: ChannelType
    parent_id: int
    position: int
    permissions: int
    def __init__(self, id: _Optional[int] = ..., community_id: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[_Union[ChannelType, str]] = ..., parent_id: _Optional[int] = ..., position: _Optional[int] = ..., permissions: _Optional[int] = ...) -> None: ...

class ChannelList(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ...) -> None: ...

class PermissionOverrides(_message.Message):
    __slots__ = ("pos", "neg")
    POS_FIELD_NUMBER: _ClassVar[int]
    NEG_FIELD_NUMBER: _ClassVar[int]
    pos: int
    neg: int
    def __init__(self, pos: _Optional[int] = ..., neg: _Optional[int] = ...) -> None: ...

class ChannelOverride(_message.Message):
    __slots__ = ("channel_id", "role_id", "overrides")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    role_id: int
    overrides: PermissionOverrides
    def __init__(self, channel_id: _Optional[int] = ..., role_id: _Optional[int] = ..., overrides: _Optional[_Union[PermissionOverrides, _Mapping]] = ...) -> None: ...

class ChannelOverrides(_message.Message):
    __slots__ = ("overrides",)
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    overrides: _containers.RepeatedCompositeFieldContainer[ChannelOverride]
    def __init__(self, overrides: _Optional[_Iterable[_Union[ChannelOverride, _Mapping]]] = ...) -> None: ...

class GetChannels(_message.Message):
    __slots__ = ("community_id",)
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    def __init__(self, community_id: _Optional[int] = ...) -> None: ...

class CreateChannel(_message.Message):
    __slots__ = ("community_id", "name", "type", "parent_id", "position")
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    community_id: int
    name: str
    type: ChannelType
    parent_id: int
    position: int
    def __init__(self, community_id: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[_Union[ChannelType, str]] = ..., parent_id: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class EditChannel(_message.Message):
    __slots__ = ("channel_id", "name", "position", "parent_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    name: str
    position: int
    parent_id: int
    def __init__(self, channel_id: _Optional[int] = ..., name: _Optional[str] = ..., position: _Optional[int] = ..., parent_id: _Optional[int] = ...) -> None: ...

class DeleteChannel(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    def __init__(self, channel_id: _Optional[int] = ...) -> None: ...

class GetChannelOverrides(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    def __init__(self, channel_id: _Optional[int] = ...) -> None: ...

class CreateChannelOverride(_message.Message):
    __slots__ = ("channel_id", "role_id", "overrides")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    role_id: int
    overrides: PermissionOverrides
    def __init__(self, channel_id: _Optional[int] = ..., role_id: _Optional[int] = ..., overrides: _Optional[_Union[PermissionOverrides, _Mapping]] = ...) -> None: ...

class DeleteChannelOverride(_message.Message):
    __slots__ = ("channel_id", "role_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    role_id: int
    def __init__(self, channel_id: _Optional[int] = ..., role_id: _Optional[int] = ...) -> None: ...
