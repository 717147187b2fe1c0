"""Domain views -> proto messages, shared by the servicers."""

from __future__ import annotations

from communities.v1 import communities_pb2, users_pb2

from communities.services.communities import CommunityView, SettingsView
from communities.storage.repository import UserRecord


def community(view: CommunityView) -> communities_pb2.Community:
    message = communities_pb2.Community(
        id=view.id, owner=view.owner, name=view.name, permissions=view.permissions, muted=view.muted
    )
    if view.photo_file_id is not None:
        message.photo.file_id = view.photo_file_id
        message.photo.preview = view.photo_preview or b""
    return message


def settings(view: SettingsView) -> communities_pb2.CommunitySettings:
    return communities_pb2.CommunitySettings(
        system_messages=communities_pb2.SystemMessages(
            channel_id=view.system_channel_id or 0, join_messages=view.join_messages
        )
    )


def user(record: UserRecord) -> users_pb2.User:
    return users_pb2.User(id=record.id, name=record.name, bot=record.bot)
