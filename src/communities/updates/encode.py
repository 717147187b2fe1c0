"""Stored records -> protobuf messages, for events (and shared with the API's converters)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import timestamp_pb2

from communities.storage.channels import ChannelRecord
from communities.storage.invites import InviteRecord
from communities.storage.members import MemberRecord
from communities.storage.roles import RoleRecord
from communities.v1 import channels_pb2, communities_pb2, invites_pb2, members_pb2, roles_pb2


def timestamp(ms: int) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromMilliseconds(ms)
    return value


def member(record: MemberRecord) -> members_pb2.CommunityMember:
    return members_pb2.CommunityMember(
        id=record.user_id,
        community_id=record.community_id,
        role_ids=record.role_ids,
        nickname=record.nickname or "",
        joined_at=timestamp(record.joined_at_ms),
        invite_code=record.invite_code or "",
    )


def role(record: RoleRecord) -> roles_pb2.CommunityRole:
    return roles_pb2.CommunityRole(
        id=record.id,
        community_id=record.community_id,
        name=record.name,
        permissions=record.permissions,
        priority=record.priority,
        color=record.color,
        separated=record.separated,
        public=record.public,
    )


def channel(record: ChannelRecord, permissions: int) -> channels_pb2.Channel:
    return channels_pb2.Channel(
        id=record.id,
        community_id=record.community_id,
        name=record.name,
        type=record.type,
        parent_id=record.parent_id or 0,
        position=record.position,
        permissions=permissions,
    )


def channel_override(channel_id: int, role_id: int, allow: int, deny: int) -> channels_pb2.ChannelOverride:
    return channels_pb2.ChannelOverride(
        channel_id=channel_id, role_id=role_id, overrides=channels_pb2.PermissionOverrides(pos=allow, neg=deny)
    )


def invite_role(record: RoleRecord) -> invites_pb2.InviteRole:
    return invites_pb2.InviteRole(id=record.id, name=record.name, color=record.color)


def invite(record: InviteRecord, roles: Iterable[RoleRecord], state: int) -> invites_pb2.Invite:
    message = invites_pb2.Invite(
        code=record.code,
        community_id=record.community_id,
        channel_id=record.channel_id,
        inviter_id=record.inviter_id,
        roles=[invite_role(granted) for granted in roles],
        uses=record.uses,
        max_uses=record.max_uses,
        max_age=record.max_age,
        created_at=timestamp(record.created_at_ms),
        targeted=record.targeted,
        state=state,
        temporary=record.temporary,
    )
    if record.expires_at_ms is not None:
        message.expires_at.CopyFrom(timestamp(record.expires_at_ms))
    return message


def settings(system_channel_id: int | None, join_messages: bool) -> communities_pb2.CommunitySettings:
    return communities_pb2.CommunitySettings(
        system_messages=communities_pb2.SystemMessages(channel_id=system_channel_id or 0, join_messages=join_messages)
    )


def community(
    community_id: int, name: str, photo_file_id: int | None, photo_preview: bytes | None
) -> communities_pb2.Community:
    """The caller-independent part of a Community (the stream fills owner, permissions and muted per caller)."""
    message = communities_pb2.Community(id=community_id, name=name)
    if photo_file_id is not None:
        message.photo.file_id = photo_file_id
        message.photo.preview = photo_preview or b""
    return message
