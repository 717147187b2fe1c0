"""Publishing: each use case that changes something calls one of these inside its unit of work, so the event is
written in the same transaction as the change (an outbox). A call that fails rolls both back: a stream never shows
a change that did not happen and never misses one that did.

Each function says who may receive the event (see storage/events.py) and whether it enters the audit log.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import Protocol

from google.protobuf.message import Message

from communities.domain.permissions import Override, Permission
from communities.storage import events as events_repo
from communities.storage.channels import ChannelRecord
from communities.storage.database import UnitOfWork
from communities.storage.events import AUDIENCE_INVITE, AUDIENCE_MEMBERS, AUDIENCE_PERMISSION, AUDIENCE_USER
from communities.storage.invites import InviteRecord
from communities.storage.members import MemberRecord
from communities.storage.repository import CommunityRecord
from communities.storage.roles import RoleRecord
from communities.updates import encode
from communities.updates.encode_messages import message, read_state
from communities.v1 import channels_pb2, updates_pb2

# The `x-audit-log-reason` of the call being served (set by the API's interceptor), recorded with its events.
audit_reason: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_reason", default=None)

LEFT = updates_pb2.MEMBER_LEFT_REASON_LEFT
KICKED = updates_pb2.MEMBER_LEFT_REASON_KICKED
BANNED = updates_pb2.MEMBER_LEFT_REASON_BANNED
TEMPORARY_EXPIRED = updates_pb2.MEMBER_LEFT_REASON_TEMPORARY_EXPIRED
# The audit log's action for each member_left reason.
_LEFT_ACTIONS = {
    LEFT: "member_left",
    KICKED: "member_kicked",
    BANNED: "member_banned",
    TEMPORARY_EXPIRED: "member_expired",
}
# Actions GetAuditLog knows (the Update event names, member_left split by reason).
AUDIT_ACTIONS = frozenset(
    {field.name for field in updates_pb2.Update.DESCRIPTOR.oneofs_by_name["event"].fields} - {"ready", "member_left"}
) | frozenset(_LEFT_ACTIONS.values())


class Publisher(Protocol):
    """What publishing needs of the application: ids and the clock."""

    def next_id(self) -> int: ...

    def now_ms(self) -> int: ...


async def _publish(
    source: Publisher,
    uow: UnitOfWork,
    community_id: int,
    event: str,
    message: Message,
    *,
    actor_id: int | None,
    target_id: int | None = None,
    channel_id: int | None = None,
    audience: int = AUDIENCE_MEMBERS,
    audience_permission: int = 0,
    audience_user_id: int | None = None,
    overrides: bytes | None = None,
    audited: bool = True,
    action: str | None = None,
) -> None:
    payload = updates_pb2.Update()
    getattr(payload, event).CopyFrom(message)
    events_repo.append(
        uow,
        event_id=source.next_id(),
        community_id=community_id,
        kind=action or event,
        at_ms=source.now_ms(),
        actor_id=actor_id,
        target_id=target_id,
        channel_id=channel_id,
        audience=audience,
        audience_permission=audience_permission,
        audience_user_id=audience_user_id,
        overrides=overrides,
        reason=audit_reason.get() if audited else None,
        audited=audited,
        payload=payload.SerializeToString(),
    )
    uow.published = True


# ------------------------------------------------------------------------------------------------ communities


async def community_updated(source: Publisher, uow: UnitOfWork, actor_id: int, community: CommunityRecord) -> None:
    message = encode.community(community.id, community.name, community.photo_file_id, community.photo_preview)
    await _publish(source, uow, community.id, "community_updated", message, actor_id=actor_id, target_id=community.id)


async def community_deleted(source: Publisher, uow: UnitOfWork, actor_id: int, community_id: int) -> None:
    await _publish(
        source,
        uow,
        community_id,
        "community_deleted",
        updates_pb2.CommunityDeleted(),
        actor_id=actor_id,
        target_id=community_id,
    )


async def settings_updated(
    source: Publisher,
    uow: UnitOfWork,
    actor_id: int,
    community_id: int,
    system_channel_id: int | None,
    join_messages: bool,
) -> None:
    message = encode.settings(system_channel_id, join_messages)
    await _publish(source, uow, community_id, "settings_updated", message, actor_id=actor_id, target_id=community_id)


# ------------------------------------------------------------------------------------------------ members


async def member_joined(
    source: Publisher,
    uow: UnitOfWork,
    member: MemberRecord,
    *,
    invite_code: str | None,
    inviter_id: int | None,
    granted_role_ids: Iterable[int],
    temporary: bool,
) -> None:
    message = updates_pb2.MemberJoined(
        member=encode.member(member),
        invite_code=invite_code or "",
        inviter_id=inviter_id or 0,
        granted_role_ids=list(granted_role_ids),
        temporary=temporary,
    )
    await _publish(
        source, uow, member.community_id, "member_joined", message, actor_id=member.user_id, target_id=member.user_id
    )


async def member_updated(
    source: Publisher,
    uow: UnitOfWork,
    actor_id: int,
    member: MemberRecord,
    *,
    invite_code: str | None = None,
    inviter_id: int | None = None,
    granted_role_ids: Iterable[int] = (),
) -> None:
    message = updates_pb2.MemberUpdated(
        member=encode.member(member),
        invite_code=invite_code or "",
        inviter_id=inviter_id or 0,
        granted_role_ids=list(granted_role_ids),
    )
    await _publish(
        source, uow, member.community_id, "member_updated", message, actor_id=actor_id, target_id=member.user_id
    )


async def member_left(
    source: Publisher, uow: UnitOfWork, actor_id: int | None, community_id: int, user_id: int, reason: int
) -> None:
    message = updates_pb2.MemberLeft(user_id=user_id, reason=reason)
    await _publish(
        source,
        uow,
        community_id,
        "member_left",
        message,
        actor_id=actor_id,
        target_id=user_id,
        action=_LEFT_ACTIONS[reason],
    )


async def member_unbanned(source: Publisher, uow: UnitOfWork, actor_id: int, community_id: int, user_id: int) -> None:
    await _publish(
        source,
        uow,
        community_id,
        "member_unbanned",
        updates_pb2.MemberUnbanned(user_id=user_id),
        actor_id=actor_id,
        target_id=user_id,
        audience=AUDIENCE_PERMISSION,
        audience_permission=Permission.REMOVE_MEMBERS,
    )


# ------------------------------------------------------------------------------------------------ roles


async def role_created(source: Publisher, uow: UnitOfWork, actor_id: int, role: RoleRecord) -> None:
    await _publish(
        source, uow, role.community_id, "role_created", encode.role(role), actor_id=actor_id, target_id=role.id
    )


async def role_updated(source: Publisher, uow: UnitOfWork, actor_id: int, role: RoleRecord) -> None:
    await _publish(
        source, uow, role.community_id, "role_updated", encode.role(role), actor_id=actor_id, target_id=role.id
    )


async def role_deleted(source: Publisher, uow: UnitOfWork, actor_id: int, community_id: int, role_id: int) -> None:
    message = updates_pb2.RoleDeleted(role_id=role_id)
    await _publish(source, uow, community_id, "role_deleted", message, actor_id=actor_id, target_id=role_id)


async def default_permissions_updated(
    source: Publisher, uow: UnitOfWork, actor_id: int, community_id: int, permissions: int
) -> None:
    message = updates_pb2.DefaultPermissionsUpdated(permissions=permissions)
    await _publish(
        source, uow, community_id, "default_permissions_updated", message, actor_id=actor_id, target_id=community_id
    )


# ------------------------------------------------------------------------------------------------ channels


async def channel_created(source: Publisher, uow: UnitOfWork, actor_id: int, channel: ChannelRecord) -> None:
    await _publish(
        source,
        uow,
        channel.community_id,
        "channel_created",
        encode.channel(channel, 0),
        actor_id=actor_id,
        target_id=channel.id,
        channel_id=channel.id,
    )


async def channel_updated(source: Publisher, uow: UnitOfWork, actor_id: int, channel: ChannelRecord) -> None:
    await _publish(
        source,
        uow,
        channel.community_id,
        "channel_updated",
        encode.channel(channel, 0),
        actor_id=actor_id,
        target_id=channel.id,
        channel_id=channel.id,
    )


async def channel_deleted(
    source: Publisher,
    uow: UnitOfWork,
    actor_id: int,
    community_id: int,
    channel_id: int,
    overrides: Mapping[int, Override],
) -> None:
    """`overrides`: the channel's, read before deleting it: who could view it is decided from them."""
    await _publish(
        source,
        uow,
        community_id,
        "channel_deleted",
        updates_pb2.ChannelDeleted(channel_id=channel_id),
        actor_id=actor_id,
        target_id=channel_id,
        channel_id=channel_id,
        overrides=encode_overrides(channel_id, overrides),
    )


async def override_updated(
    source: Publisher,
    uow: UnitOfWork,
    actor_id: int,
    community_id: int,
    channel_id: int,
    role_id: int,
    allow: int,
    deny: int,
) -> None:
    await _publish(
        source,
        uow,
        community_id,
        "override_updated",
        encode.channel_override(channel_id, role_id, allow, deny),
        actor_id=actor_id,
        target_id=channel_id,
        channel_id=channel_id,
    )


async def override_deleted(
    source: Publisher, uow: UnitOfWork, actor_id: int, community_id: int, channel_id: int, role_id: int
) -> None:
    await _publish(
        source,
        uow,
        community_id,
        "override_deleted",
        updates_pb2.OverrideDeleted(channel_id=channel_id, role_id=role_id),
        actor_id=actor_id,
        target_id=channel_id,
        channel_id=channel_id,
    )


def encode_overrides(channel_id: int, overrides: Mapping[int, Override]) -> bytes:
    return channels_pb2.ChannelOverrides(
        overrides=[
            encode.channel_override(channel_id, role_id, override.allow, override.deny)
            for role_id, override in overrides.items()
        ]
    ).SerializeToString()


def decode_overrides(data: bytes) -> dict[int, Override]:
    message = channels_pb2.ChannelOverrides.FromString(data)
    return {entry.role_id: Override(allow=entry.overrides.pos, deny=entry.overrides.neg) for entry in message.overrides}


# ------------------------------------------------------------------------------------------------ invites


async def invite_created(
    source: Publisher, uow: UnitOfWork, invite: InviteRecord, roles: Iterable[RoleRecord], state: int
) -> None:
    """To those who could list it: its inviter, MODIFY_COMMUNITY, MODIFY_CHANNEL in its channel."""
    await _publish(
        source,
        uow,
        invite.community_id,
        "invite_created",
        encode.invite(invite, roles, state),
        actor_id=invite.inviter_id,
        channel_id=invite.channel_id,
        audience=AUDIENCE_INVITE,
        audience_user_id=invite.inviter_id,
    )


async def invite_deleted(source: Publisher, uow: UnitOfWork, actor_id: int | None, invite: InviteRecord) -> None:
    await _publish(
        source,
        uow,
        invite.community_id,
        "invite_deleted",
        updates_pb2.InviteDeleted(code=invite.code, channel_id=invite.channel_id),
        actor_id=actor_id,
        channel_id=invite.channel_id,
        audience=AUDIENCE_INVITE,
        audience_user_id=invite.inviter_id,
    )


# ------------------------------------------------------------------------------------------------ messages


async def message_created(source: Publisher, uow: UnitOfWork, record) -> None:
    """A channel event (its viewers); not audited. `record`: storage.messages.MessageRecord."""
    await _publish(
        source,
        uow,
        record.community_id,
        "message_created",
        message(record),
        actor_id=record.author_id,
        target_id=record.id,
        channel_id=record.channel_id,
        audited=False,
    )


async def message_edited(source: Publisher, uow: UnitOfWork, actor_id: int, record) -> None:
    await _publish(
        source,
        uow,
        record.community_id,
        "message_edited",
        message(record),
        actor_id=actor_id,
        target_id=record.id,
        channel_id=record.channel_id,
        audited=False,
    )


async def message_deleted(source: Publisher, uow: UnitOfWork, actor_id: int, record) -> None:
    """Audited when someone other than the author deleted it (a moderator's action)."""
    await _publish(
        source,
        uow,
        record.community_id,
        "message_deleted",
        updates_pb2.MessageDeleted(channel_id=record.channel_id, message_id=record.id),
        actor_id=actor_id,
        target_id=record.id,
        channel_id=record.channel_id,
        audited=actor_id != record.author_id,
    )


async def read_state_updated(source: Publisher, uow: UnitOfWork, user_id: int, community_id: int, state) -> None:
    """Only to the reader's own streams; not audited. `state`: services.messages.ReadStateView."""
    await _publish(
        source,
        uow,
        community_id,
        "read_state_updated",
        read_state(state.channel_id, state.last_read_message_id, state.unread_count, state.unread_mention_count),
        actor_id=user_id,
        target_id=state.channel_id,
        audience=AUDIENCE_USER,
        audience_user_id=user_id,
        audited=False,
    )


__all__ = ["AUDIENCE_USER", "AUDIT_ACTIONS", "Publisher", "audit_reason"]
