from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class CommunityPermission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMUNITY_PERMISSION_UNSPECIFIED: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_ADMINISTRATOR: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_VIEW_CHANNEL: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_SEND_MESSAGES: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_CONNECT_VOICE: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_MODIFY_CHANNEL: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_SEND_MEDIA: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_DELETE_MESSAGES: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_PIN_MESSAGES: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_SPEAK_VOICE: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_MODIFY_COMMUNITY: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_MODIFY_ROLES: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_REMOVE_MEMBERS: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_ADD_REACTIONS: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_CREATE_INVITE: _ClassVar[CommunityPermission]
    COMMUNITY_PERMISSION_MENTION_EVERYONE: _ClassVar[CommunityPermission]
COMMUNITY_PERMISSION_UNSPECIFIED: CommunityPermission
COMMUNITY_PERMISSION_ADMINISTRATOR: CommunityPermission
COMMUNITY_PERMISSION_VIEW_CHANNEL: CommunityPermission
COMMUNITY_PERMISSION_SEND_MESSAGES: CommunityPermission
COMMUNITY_PERMISSION_CONNECT_VOICE: CommunityPermission
COMMUNITY_PERMISSION_MODIFY_CHANNEL: CommunityPermission
COMMUNITY_PERMISSION_SEND_MEDIA: CommunityPermission
COMMUNITY_PERMISSION_DELETE_MESSAGES: CommunityPermission
COMMUNITY_PERMISSION_PIN_MESSAGES: CommunityPermission
COMMUNITY_PERMISSION_SPEAK_VOICE: CommunityPermission
COMMUNITY_PERMISSION_MODIFY_COMMUNITY: CommunityPermission
COMMUNITY_PERMISSION_MODIFY_ROLES: CommunityPermission
COMMUNITY_PERMISSION_REMOVE_MEMBERS: CommunityPermission
COMMUNITY_PERMISSION_ADD_REACTIONS: CommunityPermission
COMMUNITY_PERMISSION_CREATE_INVITE: CommunityPermission
COMMUNITY_PERMISSION_MENTION_EVERYONE: CommunityPermission
