"""Domain views -> proto messages, shared by the servicers; and the proto values of requests that need more than
reading a field (Timestamps)."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from communities.domain import validation
from communities.services.channels import ChannelView, OverrideView
from communities.services.communities import AuditPage, CommunityView, SettingsView
from communities.services.invites import InviteView, JobView, PreviewView
from communities.services.roles import Explanation, RolesView
from communities.storage.members import BanRecord
from communities.storage.repository import UserRecord
from communities.updates import encode
from communities.v1 import channels_pb2, communities_pb2, invites_pb2, members_pb2, roles_pb2, users_pb2


def community(view: CommunityView) -> communities_pb2.Community:
    return _fill_community(communities_pb2.Community(), view)


def community_list(views: list[CommunityView]) -> communities_pb2.CommunityList:
    # Filled in place with add(): building separate messages and passing them in would copy each one.
    message = communities_pb2.CommunityList()
    add_community, add_info = message.communities.add, message.community_user_info.add
    for view in views:
        _fill_community(add_community(), view)
        add_info(community_id=view.id, unread_count=view.unread_count, unread_mention_count=view.unread_mention_count)
    return message


def _fill_community(message: communities_pb2.Community, view: CommunityView) -> communities_pb2.Community:
    message.id = view.id
    message.owner = view.owner
    message.name = view.name
    message.permissions = view.permissions
    message.muted = view.muted
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


# Records -> messages that update events carry too: one conversion, in updates/encode.py.
role = encode.role
member = encode.member
timestamp = encode.timestamp
invite_role = encode.invite_role


def community_roles(view: RolesView) -> roles_pb2.CommunityRoles:
    return roles_pb2.CommunityRoles(
        roles=[role(record) for record in view.roles], default_permissions=view.default_permissions
    )


def explanation(view: Explanation) -> roles_pb2.PermissionExplanation:
    return roles_pb2.PermissionExplanation(
        community_id=view.community_id,
        user_id=view.user_id,
        channel_id=view.channel_id,
        permissions=view.permissions,
        rank=view.rank,
        owner=view.owner,
        steps=[
            roles_pb2.PermissionStep(
                source=int(step.source), role_id=step.role_id, allow=step.allow, deny=step.deny, result=step.result
            )
            for step in view.steps
        ],
    )


def channel(view: ChannelView) -> channels_pb2.Channel:
    return encode.channel(view.channel, view.permissions)


def channel_override(view: OverrideView) -> channels_pb2.ChannelOverride:
    return encode.channel_override(view.channel_id, view.role_id, view.allow, view.deny)


def request_time_ms(value: timestamp_pb2.Timestamp, field: str) -> int:
    """A Timestamp from a request as Unix milliseconds. Every request Timestamp is read through this: one outside
    0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999999Z is INVALID_ARGUMENT naming `field` (protobuf's own
    ToMilliseconds raises ValueError, which would be INTERNAL)."""
    return validation.timestamp_ms(value.seconds, value.nanos, field)


def removed_member(record: BanRecord) -> members_pb2.RemovedMember:
    message = members_pb2.RemovedMember(
        user_id=record.user_id,
        reason=record.reason,
        removed_by=record.banned_by,
        removed_at=timestamp(record.created_at_ms),
    )
    if record.until_ms is not None:
        message.until.CopyFrom(timestamp(record.until_ms))
    return message


def invite(view: InviteView) -> invites_pb2.Invite:
    return encode.invite(view.invite, view.roles, view.state)


def invite_preview(view: PreviewView) -> invites_pb2.InvitePreview:
    record = view.invite
    message = invites_pb2.InvitePreview(
        code=record.code,
        community_id=record.community_id,
        community_name=view.community.name,
        channel_id=record.channel_id,
        channel_name=view.channel.name,
        channel_type=view.channel.type,
        approximate_member_count=view.member_count,
        roles=[invite_role(role) for role in view.roles],
        inviter_id=record.inviter_id,
        targeted=record.targeted,
    )
    if view.community.photo_file_id is not None:
        message.community_photo.file_id = view.community.photo_file_id
        message.community_photo.preview = view.community.photo_preview or b""
    if record.expires_at_ms is not None:
        message.expires_at.CopyFrom(timestamp(record.expires_at_ms))
    return message


def job_status(view: JobView) -> invites_pb2.TargetUsersJobStatus:
    message = invites_pb2.TargetUsersJobStatus(
        status=view.status,
        total_users=view.total,
        processed_users=view.processed,
        unknown_users=view.unknown,
        error_message=view.error,
    )
    if view.created_at_ms is not None:
        message.created_at.CopyFrom(timestamp(view.created_at_ms))
    if view.completed_at_ms is not None:
        message.completed_at.CopyFrom(timestamp(view.completed_at_ms))
    return message


def audit_log(page: AuditPage) -> communities_pb2.AuditLog:
    return communities_pb2.AuditLog(
        entries=[
            communities_pb2.AuditLogEntry(
                id=entry.id,
                action=entry.kind,
                actor_id=entry.actor_id or 0,
                target_id=entry.target_id or 0,
                at=timestamp(entry.at_ms),
                reason=entry.reason or "",
            )
            for entry in page.entries
        ],
        next_page_token=page.next_page_token,
    )
