"""Use cases of the Messages service: sending, history, edits, deletes, read state; join messages; unread totals.

Unread counts are counters, never a scan of history, and sending never writes a row per member:
- per channel (message_channels): `last_seq`, the channel's gap-free message sequence (taken under the row's lock,
  so it is the channel's commit order: history pages by it), and `live_count`, its messages not deleted;
- per (member, channel) that ever read or wrote there (read_states): the marker (`read_seq`), `live_read` = live
  messages at or before it, `own_unread` = the member's own live messages after it;
- unread(member, channel) = live_count - live_read - own_unread; no read_states row = everything live is unread.
SendMessage bumps the channel's row and upserts the sender's own row: two rows whatever the member count. A delete
(a tombstone) lowers live_count, and `live_read` of the readers already past the message in one set-based UPDATE;
the author's own_unread if it was after the author's marker. MarkRead recomputes the reader's row, counting only
the shorter of (old marker, new marker] and (new marker, end]. Mentions are rows only for what a message names
(users, roles, the community id for @everyone); unread mentions count those rows after the marker.
Visibility is applied when totals are read: a channel the member cannot view now adds nothing, so role and
override changes need no writes here. GetCommunities reads the unread channels of all the caller's communities
and their unread mentions in one statement, and the applicable overrides only for channels whose visibility for
the caller's standing is not cached yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from communities.domain import mentions as mention_parser
from communities.domain import validation
from communities.domain.channels import ChannelType
from communities.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from communities.domain.permissions import Permission, channel_permissions, community_permissions
from communities.services.access import ChannelAccess, require_channel, require_flag, require_membership
from communities.services.context import App, Principal
from communities.storage import channels as channels_repo
from communities.storage import messages as messages_repo
from communities.storage import repository as repo
from communities.storage import roles as roles_repo
from communities.storage.database import StorageUnavailable, UnitOfWork
from communities.storage.messages import ChannelUnread, MessageRecord
from communities.updates import publish

TEXT_MAX = 4000
HISTORY_DEFAULT = 50
HISTORY_MAX = 100
UINT32_MAX = 2**32 - 1

TYPE_DEFAULT = 1
TYPE_JOIN = 2


@dataclass(frozen=True)
class ReadStateView:
    channel_id: int
    last_read_message_id: int
    unread_count: int
    unread_mention_count: int


class _Duplicate(Exception):
    """A racing call stored the same client_id first: roll back this one's seq and answer with that message."""


def check_text(text: str) -> str:
    validation.no_nul(text, "text")
    if not text.strip():
        raise InvalidArgument.field("text", "must not be empty")
    if len(text) > TEXT_MAX:
        raise InvalidArgument.field("text", f"must be at most {TEXT_MAX} characters, got {len(text)}")
    return text


async def _require_text_channel(uow: UnitOfWork, channel_id: int, principal: Principal) -> ChannelAccess:
    access = await require_channel(uow, channel_id, principal)
    if access.channel.type != ChannelType.TEXT:
        raise FailedPrecondition(
            "Messages live in text channels", reason="CHANNEL_NOT_TEXT", metadata={"channel_id": str(channel_id)}
        )
    return access


async def _resolve_mentions(uow: UnitOfWork, access: ChannelAccess, text: str) -> mention_parser.Mentions:
    """The parsed mentions that name members and roles of the community; @everyone only with MENTION_EVERYONE."""
    parsed = mention_parser.parse(text)
    community_id = access.channel.community_id
    users: tuple[int, ...] = ()
    roles: tuple[int, ...] = ()
    if parsed.user_ids:
        found = await _existing_members(uow, community_id, parsed.user_ids)
        users = tuple(user_id for user_id in parsed.user_ids if user_id in found)
    if parsed.role_ids:
        found_roles = await roles_repo.roles_by_id(uow, community_id, list(parsed.role_ids))
        roles = tuple(role_id for role_id in parsed.role_ids if role_id in found_roles)
    everyone = parsed.everyone and bool(access.permissions & Permission.MENTION_EVERYONE)
    return mention_parser.Mentions(users, roles, everyone)


async def _existing_members(uow: UnitOfWork, community_id: int, user_ids) -> set[int]:
    return await messages_repo.existing_members(uow, community_id, list(user_ids))


async def send_message(
    app: App, principal: Principal, channel_id: int, text: str, client_id: int | None
) -> MessageRecord:
    text = check_text(text)
    try:
        return await _send(app, principal, channel_id, text, client_id)
    except _Duplicate:
        async with app.db.unit_of_work(write=False) as uow:
            await _require_text_channel(uow, channel_id, principal)
            existing = await messages_repo.by_client_id(uow, channel_id, principal.id, client_id or 0)
        if existing is None:  # the first one was deleted meanwhile
            raise StorageUnavailable("The message was deleted while this retry ran; retry") from None
        return existing


async def _send(app: App, principal: Principal, channel_id: int, text: str, client_id: int | None) -> MessageRecord:
    async with app.db.unit_of_work(write=True) as uow:
        access = await _require_text_channel(uow, channel_id, principal)
        require_flag(access.permissions, Permission.SEND_MESSAGES)
        if client_id is not None:
            existing = await messages_repo.by_client_id(uow, channel_id, principal.id, client_id)
            if existing is not None:
                return existing
        found = await _resolve_mentions(uow, access, text)
        record = await _post(
            app, uow, access.channel.community_id, channel_id, principal.id, text, TYPE_DEFAULT, found, client_id
        )
        if record is None:
            raise _Duplicate()
    return record


async def _post(
    app: App,
    uow: UnitOfWork,
    community_id: int,
    channel_id: int,
    author_id: int,
    text: str,
    kind: int,
    found: mention_parser.Mentions,
    client_id: int | None,
    seq: int | None = None,
) -> MessageRecord | None:
    """`seq`: the message's, when the caller already took it (messages_repo.join_message_seq)."""
    if seq is None:
        seq = await messages_repo.next_seq(uow, community_id, channel_id)
    # The id is taken under the channel's lock (after next_seq), so on one server ids grow with seq.
    record = MessageRecord(
        id=app.next_id(),
        community_id=community_id,
        channel_id=channel_id,
        seq=seq,
        author_id=author_id,
        type=kind,
        text=text,
        created_at_ms=app.now_ms(),
        edited_at_ms=None,
        mention_user_ids=list(found.user_ids),
        mention_role_ids=list(found.role_ids),
        mention_everyone=found.everyone,
        client_id=client_id,
        deleted=False,
    )
    if not await messages_repo.insert_message(uow, record):
        return None
    await publish.message_created(app, uow, record)
    return record


async def announce_join(app: App, uow: UnitOfWork, community_id: int, user_id: int) -> MessageRecord | None:
    """In the join's unit of work: with join messages on and a system channel, a MESSAGE_TYPE_JOIN message there
    by the new member. Finding the channel takes its seq in the same statement: it runs in every join's
    transaction."""
    found = await messages_repo.join_message_seq(uow, community_id, ChannelType.TEXT)
    if found is None:
        return None
    channel_id, seq = found
    return await _post(app, uow, community_id, channel_id, user_id, "", TYPE_JOIN, mention_parser.NONE, None, seq)


def _limit(value: int) -> int:
    return validation.bounded(value, "limit", HISTORY_MAX) or HISTORY_DEFAULT


async def get_history(
    app: App,
    principal: Principal,
    channel_id: int,
    *,
    limit: int,
    before: int | None = None,
    after: int | None = None,
    around: int | None = None,
) -> list[MessageRecord]:
    """Newest first."""
    size = _limit(limit)
    async with app.db.unit_of_work(write=False) as uow:
        await require_channel(uow, channel_id, principal)
        if before is None and after is None and around is None:
            return await messages_repo.newest(uow, channel_id, size)
        anchor_id = before if before is not None else after if after is not None else around
        found = await messages_repo.cursor(uow, channel_id, anchor_id)
        if found is None:  # no message at or before the id
            if before is not None:
                return []
            return list(reversed(await messages_repo.after_seq(uow, channel_id, 0, size)))
        found_id, seq = found
        exact = found_id == anchor_id
        if before is not None:
            # Before an id naming no message: the messages up to the last one sent before it.
            return await messages_repo.before_seq(uow, channel_id, seq if exact else seq + 1, size)
        if after is not None:
            return list(reversed(await messages_repo.after_seq(uow, channel_id, seq, size)))
        older = size // 2
        start = seq - 1 if exact else seq  # the named message (if any) belongs to the newer half
        newer = list(reversed(await messages_repo.after_seq(uow, channel_id, start, size - older)))
        return newer + await messages_repo.before_seq(uow, channel_id, start + 1, older)


async def _require_message(uow: UnitOfWork, channel_id: int, message_id: int) -> MessageRecord:
    record = await messages_repo.get_message(uow, channel_id, message_id) if message_id else None
    if record is None:
        raise NotFound.of("MESSAGE")
    return record


async def edit_message(app: App, principal: Principal, channel_id: int, message_id: int, text: str) -> MessageRecord:
    text = check_text(text)
    async with app.db.unit_of_work(write=True) as uow:
        access = await require_channel(uow, channel_id, principal)
        record = await _require_message(uow, channel_id, message_id)
        if record.author_id != principal.id or record.type != TYPE_DEFAULT:
            raise PermissionDenied("Only its author can edit a message", reason="NOT_AUTHOR")
        found = await _resolve_mentions(uow, access, text)
        record.text = text
        record.edited_at_ms = app.now_ms()
        record.mention_user_ids = list(found.user_ids)
        record.mention_role_ids = list(found.role_ids)
        record.mention_everyone = found.everyone
        if not await messages_repo.edit_message(uow, record):
            raise NotFound.of("MESSAGE")  # deleted by a racing call
        await publish.message_edited(app, uow, principal.id, record)
    return record


async def delete_message(app: App, principal: Principal, channel_id: int, message_id: int) -> None:
    async with app.db.unit_of_work(write=True) as uow:
        access = await require_channel(uow, channel_id, principal)
        record = await _require_message(uow, channel_id, message_id)
        if record.author_id != principal.id:
            require_flag(access.permissions, Permission.DELETE_MESSAGES)
        if not await messages_repo.delete_message(uow, record):
            raise NotFound.of("MESSAGE")  # deleted by a racing call: this one changes nothing
        await publish.message_deleted(app, uow, principal.id, record)


async def mark_read(app: App, principal: Principal, channel_id: int, message_id: int) -> ReadStateView:
    async with app.db.unit_of_work(write=True) as uow:
        access = await require_channel(uow, channel_id, principal)
        record = await _require_message(uow, channel_id, message_id)
        community_id = access.channel.community_id
        moved = await messages_repo.mark_read(uow, community_id, principal.id, record)
        [state] = (await _read_states(uow, principal.id, community_id, [channel_id])).values()
        if moved is not None:  # at or past it already: nothing changed, nothing to tell
            await publish.read_state_updated(app, uow, principal.id, community_id, state)
    return state


async def _read_states(
    uow: UnitOfWork, user_id: int, community_id: int, channel_ids: list[int]
) -> dict[int, ReadStateView]:
    known = await messages_repo.community_channels(uow, user_id, community_id)
    unread = [known[channel_id] for channel_id in channel_ids if channel_id in known and known[channel_id].unread]
    await messages_repo.count_mentions(uow, user_id, unread)
    states = {}
    for channel_id in channel_ids:
        entry = known.get(channel_id)
        states[channel_id] = (
            ReadStateView(channel_id, entry.read_message_id or 0, _u32(entry.unread), _u32(entry.mentions))
            if entry is not None
            else ReadStateView(channel_id, 0, 0, 0)
        )
    return states


def _u32(value: int) -> int:
    return min(max(value, 0), UINT32_MAX)


async def get_read_states(app: App, principal: Principal, community_id: int) -> list[ReadStateView]:
    """One per channel of the community the caller can view, in channel order."""
    async with app.db.unit_of_work(write=False) as uow:
        membership = await require_membership(uow, community_id, principal)
        channels = await channels_repo.channels_of(uow, community_id)
        overrides = await channels_repo.overrides_for_member(uow, community_id, principal.id)
        base = community_permissions(membership.member)
        visible = [
            channel.id
            for channel in channels
            if channel_permissions(membership.member, overrides.get(channel.id, {}), base)
        ]
        states = await _read_states(uow, principal.id, community_id, visible)
    return [states[channel_id] for channel_id in visible]


def _visibility_key(membership: repo.Membership) -> tuple:
    """What decides which channels of the community the member can view (as GetChannels' cache key): the
    community's channels_version (bumped by every channel and override change) and the member's standing."""
    member = membership.member
    return (
        "unread-visibility",
        membership.community.id,
        membership.community.channels_version,
        member.is_owner,
        member.default_permissions,
        tuple(sorted((role.id, role.permissions) for role in member.roles)),
    )


async def unread_totals(app: App, user_id: int, memberships: list[repo.Membership]) -> dict[int, tuple[int, int]]:
    """community id -> (unread messages, unread mentions) over the channels the user can view now. One statement
    for all its communities, never one per community or per message; a second (the overrides that apply to the
    user) only for channels whose visibility for this standing is not known yet: it is kept in app.channel_lists
    under the same kind of key as GetChannels' lists."""
    channels = await messages_repo.unread_channels(app.db, user_id)
    if not channels:
        return {}
    by_community = {membership.community.id: membership for membership in memberships}
    known: dict[int, dict[int, bool]] = {}  # community id -> channel id -> visible
    unknown: list[ChannelUnread] = []
    for channel in channels:
        membership = by_community.get(channel.community_id)
        if membership is None:
            continue
        visible = known.get(channel.community_id)
        if visible is None:
            key = _visibility_key(membership)
            visible = app.channel_lists.get(key)
            if visible is None:
                visible = {}
                app.channel_lists.put(key, visible)
            known[channel.community_id] = visible
        if channel.channel_id not in visible:
            unknown.append(channel)
    if unknown:
        overrides = await messages_repo.overrides_for_user(app.db, user_id)
        for channel in unknown:
            member = by_community[channel.community_id].member
            permissions = channel_permissions(member, overrides.get(channel.channel_id, {}))
            known[channel.community_id][channel.channel_id] = bool(permissions)
    totals: dict[int, tuple[int, int]] = {}
    for channel in channels:
        if known.get(channel.community_id, {}).get(channel.channel_id):
            unread, mentioned = totals.get(channel.community_id, (0, 0))
            totals[channel.community_id] = (unread + channel.unread, mentioned + channel.mentions)
    return {key: (_u32(unread), _u32(mentioned)) for key, (unread, mentioned) in totals.items()}
