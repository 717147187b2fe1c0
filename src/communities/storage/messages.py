"""Queries for messages, the per-channel counters, read states and mention rows (see tables.py and
services/messages.py for the counter design). Hot statements are `Prepared`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from communities.domain.permissions import Override
from communities.storage.database import Database, Prepared, UnitOfWork
from communities.storage.tables import (
    channel_overrides,
    channels,
    communities,
    member_roles,
    members,
    message_channels,
    message_mentions,
    messages,
    read_states,
)


@dataclass(slots=True)
class MessageRecord:
    id: int
    community_id: int
    channel_id: int
    seq: int
    author_id: int
    type: int
    text: str
    created_at_ms: int
    edited_at_ms: int | None
    mention_user_ids: list[int]
    mention_role_ids: list[int]
    mention_everyone: bool
    client_id: int | None
    deleted: bool


@dataclass(slots=True)
class ReadRecord:
    read_seq: int
    read_message_id: int | None
    live_read: int
    own_unread: int


_COLUMNS = (
    messages.c.id,
    messages.c.community_id,
    messages.c.channel_id,
    messages.c.seq,
    messages.c.author_id,
    messages.c.type,
    messages.c.text,
    messages.c.created_at,
    messages.c.edited_at,
    messages.c.mention_user_ids,
    messages.c.mention_role_ids,
    messages.c.mention_everyone,
    messages.c.client_id,
    messages.c.deleted,
)


def join_ids(ids: Iterable[int]) -> str:
    return " ".join(str(value) for value in ids)


def _message(row) -> MessageRecord:
    """A row of _COLUMNS (in MessageRecord's field order) as a record: built for every message of a history page."""
    user_ids, role_ids = row[9], row[10]
    return MessageRecord(
        *row[:9],
        [int(part) for part in user_ids.split()] if user_ids else [],
        [int(part) for part in role_ids.split()] if role_ids else [],
        bool(row[11]),
        row[12],
        bool(row[13]),
    )


# ------------------------------------------------------------------------------------------------ sending


def _bump(dialect_insert):
    statement = dialect_insert(message_channels).values(
        channel_id=bindparam("channel_id"), community_id=bindparam("community_id"), last_seq=1, live_count=1
    )
    return statement.on_conflict_do_update(
        index_elements=[message_channels.c.channel_id],
        set_={"last_seq": message_channels.c.last_seq + 1, "live_count": message_channels.c.live_count + 1},
    ).returning(message_channels.c.last_seq)


# Takes the channel's counter row (and, on PostgreSQL, its lock until commit): the new message's seq.
_NEXT_SEQ = Prepared(_bump(sqlite.insert), postgresql=_bump(postgresql.insert))


def _insert(dialect_insert):
    return (
        dialect_insert(messages)
        .values(
            id=bindparam("id"),
            channel_id=bindparam("channel_id"),
            community_id=bindparam("community_id"),
            seq=bindparam("seq"),
            author_id=bindparam("author_id"),
            type=bindparam("type"),
            text=bindparam("text"),
            created_at=bindparam("created_at"),
            edited_at=None,
            mention_user_ids=bindparam("mention_user_ids"),
            mention_role_ids=bindparam("mention_role_ids"),
            mention_everyone=bindparam("mention_everyone"),
            client_id=bindparam("client_id"),
            deleted=False,
        )
        .on_conflict_do_nothing(index_elements=[messages.c.channel_id, messages.c.author_id, messages.c.client_id])
        .returning(messages.c.id)
    )


# ON CONFLICT on (channel, author, client_id): a second message with the same client_id is never stored, however
# the calls race (the unique index decides, on PostgreSQL after the first transaction commits).
_INSERT = Prepared(_insert(sqlite.insert), postgresql=_insert(postgresql.insert))


def _own_sent(dialect_insert):
    statement = dialect_insert(read_states).values(
        user_id=bindparam("user_id"),
        channel_id=bindparam("channel_id"),
        community_id=bindparam("community_id"),
        read_seq=0,
        read_message_id=None,
        live_read=0,
        own_unread=1,
    )
    return statement.on_conflict_do_update(
        index_elements=[read_states.c.user_id, read_states.c.channel_id],
        set_={"own_unread": read_states.c.own_unread + 1},
    )


# The sender's own row: its new message is after its read marker, and never unread for it.
_OWN_SENT = Prepared(_own_sent(sqlite.insert), postgresql=_own_sent(postgresql.insert))
_INSERT_MENTION = Prepared(
    message_mentions.insert().values(
        message_id=bindparam("message_id"),
        target_id=bindparam("target_id"),
        channel_id=bindparam("channel_id"),
        community_id=bindparam("community_id"),
        seq=bindparam("seq"),
        author_id=bindparam("author_id"),
    )
)


async def next_seq(uow: UnitOfWork, community_id: int, channel_id: int) -> int:
    return (await uow.execute(_NEXT_SEQ, {"channel_id": channel_id, "community_id": community_id})).scalar_one()


async def insert_message(uow: UnitOfWork, record: MessageRecord) -> bool:
    """False when a message with the same (channel, author, client_id) exists."""
    rows = (
        await uow.execute(
            _INSERT,
            {
                "id": record.id,
                "channel_id": record.channel_id,
                "community_id": record.community_id,
                "seq": record.seq,
                "author_id": record.author_id,
                "type": record.type,
                "text": record.text,
                "created_at": record.created_at_ms,
                "mention_user_ids": join_ids(record.mention_user_ids),
                "mention_role_ids": join_ids(record.mention_role_ids),
                "mention_everyone": record.mention_everyone,
                "client_id": record.client_id,
            },
        )
    ).all()
    if not rows:
        return False
    await uow.execute(
        _OWN_SENT,
        {"user_id": record.author_id, "channel_id": record.channel_id, "community_id": record.community_id},
    )
    await insert_mentions(uow, record, mention_targets(record))
    return True


def mention_targets(record: MessageRecord) -> list[int]:
    """The mention rows of a message: its users, its roles, and the community id for @everyone."""
    targets = dict.fromkeys([*record.mention_user_ids, *record.mention_role_ids])
    if record.mention_everyone:
        targets[record.community_id] = None
    return list(targets)


async def insert_mentions(uow: UnitOfWork, record: MessageRecord, targets: Sequence[int]) -> None:
    if targets:
        await uow.execute_many(
            _INSERT_MENTION,
            [
                {
                    "message_id": record.id,
                    "target_id": target,
                    "channel_id": record.channel_id,
                    "community_id": record.community_id,
                    "seq": record.seq,
                    "author_id": record.author_id,
                }
                for target in targets
            ],
        )


async def existing_members(uow: UnitOfWork, community_id: int, user_ids: list[int]) -> set[int]:
    """Which of these ids are members of the community."""
    if not user_ids:
        return set()
    rows = await uow.execute(
        select(members.c.user_id).where(members.c.community_id == community_id, members.c.user_id.in_(user_ids))
    )
    return {row.user_id for row in rows}


# The community's system channel when join messages are on and it is one of its channels of the given type.
def _bump_join_channel(dialect_insert):
    """_bump of the community's join-message channel, found in the same statement (INSERT ... SELECT): its
    system channel, if join messages are on and that is a channel of the community of `channel_type`."""
    channel = select(channels.c.id, communities.c.id, literal(1), literal(1)).select_from(
        communities.join(channels, channels.c.id == communities.c.system_channel_id)
    )
    channel = channel.where(
        communities.c.id == bindparam("community_id"),
        communities.c.join_messages.is_(True),
        channels.c.community_id == communities.c.id,
        channels.c.type == bindparam("channel_type"),
    )
    statement = dialect_insert(message_channels).from_select(
        [
            message_channels.c.channel_id,
            message_channels.c.community_id,
            message_channels.c.last_seq,
            message_channels.c.live_count,
        ],
        channel,
    )
    return statement.on_conflict_do_update(
        index_elements=[message_channels.c.channel_id],
        set_={"last_seq": message_channels.c.last_seq + 1, "live_count": message_channels.c.live_count + 1},
    ).returning(message_channels.c.channel_id, message_channels.c.last_seq)


_JOIN_CHANNEL_SEQ = Prepared(_bump_join_channel(sqlite.insert), postgresql=_bump_join_channel(postgresql.insert))


async def join_message_seq(uow: UnitOfWork, community_id: int, channel_type: int) -> tuple[int, int] | None:
    """Where a join to the community is announced and the seq of the message announcing it (next_seq of that
    channel), in one statement; None when joins are not announced."""
    params = {"community_id": community_id, "channel_type": channel_type}
    row = (await uow.execute(_JOIN_CHANNEL_SEQ, params)).first()
    return (row.channel_id, row.last_seq) if row else None


_BY_CLIENT_ID = Prepared(
    select(*_COLUMNS).where(
        messages.c.channel_id == bindparam("channel_id"),
        messages.c.author_id == bindparam("author_id"),
        messages.c.client_id == bindparam("client_id"),
    )
)


async def by_client_id(uow: UnitOfWork, channel_id: int, author_id: int, client_id: int) -> MessageRecord | None:
    row = (
        await uow.execute(_BY_CLIENT_ID, {"channel_id": channel_id, "author_id": author_id, "client_id": client_id})
    ).first()
    return _message(row) if row else None


_GET = Prepared(
    select(*_COLUMNS).where(messages.c.id == bindparam("message_id"), messages.c.channel_id == bindparam("channel_id"))
)


async def get_message(uow: UnitOfWork, channel_id: int, message_id: int) -> MessageRecord | None:
    """A live message of the channel."""
    row = (await uow.execute(_GET, {"message_id": message_id, "channel_id": channel_id})).first()
    if row is None or row.deleted:
        return None
    return _message(row)


# ------------------------------------------------------------------------------------------------ history

_LIVE = and_(messages.c.channel_id == bindparam("channel_id"), messages.c.deleted.is_(False))
_NEWEST = Prepared(select(*_COLUMNS).where(_LIVE).order_by(messages.c.seq.desc()).limit(bindparam("limit")))
_BEFORE = Prepared(
    select(*_COLUMNS)
    .where(_LIVE, messages.c.seq < bindparam("seq"))
    .order_by(messages.c.seq.desc())
    .limit(bindparam("limit"))
)
_AFTER = Prepared(
    select(*_COLUMNS).where(_LIVE, messages.c.seq > bindparam("seq")).order_by(messages.c.seq).limit(bindparam("limit"))
)
# The message a cursor names, or the one sent last before an id that names none (deleted messages included).
_CURSOR = Prepared(
    select(messages.c.id, messages.c.seq)
    .where(messages.c.channel_id == bindparam("channel_id"), messages.c.id <= bindparam("message_id"))
    .order_by(messages.c.id.desc())
    .limit(1)
)


async def newest(uow: UnitOfWork, channel_id: int, limit: int) -> list[MessageRecord]:
    return [_message(row) for row in await uow.execute(_NEWEST, {"channel_id": channel_id, "limit": limit})]


async def before_seq(uow: UnitOfWork, channel_id: int, seq: int, limit: int) -> list[MessageRecord]:
    """Newest first."""
    rows = await uow.execute(_BEFORE, {"channel_id": channel_id, "seq": seq, "limit": limit})
    return [_message(row) for row in rows]


async def after_seq(uow: UnitOfWork, channel_id: int, seq: int, limit: int) -> list[MessageRecord]:
    """Oldest first."""
    rows = await uow.execute(_AFTER, {"channel_id": channel_id, "seq": seq, "limit": limit})
    return [_message(row) for row in rows]


async def cursor(uow: UnitOfWork, channel_id: int, message_id: int) -> tuple[int, int] | None:
    """(id, seq) of the message named by `message_id`, or of the last one with a smaller id; None: none."""
    row = (await uow.execute(_CURSOR, {"channel_id": channel_id, "message_id": message_id})).first()
    return (row.id, row.seq) if row else None


# ------------------------------------------------------------------------------------------------ edit, delete

_EDIT = Prepared(
    update(messages)
    .where(messages.c.id == bindparam("message_id"), messages.c.deleted.is_(False))
    .values(
        text=bindparam("text"),
        edited_at=bindparam("edited_at"),
        mention_user_ids=bindparam("mention_user_ids"),
        mention_role_ids=bindparam("mention_role_ids"),
        mention_everyone=bindparam("mention_everyone"),
    )
)
_DELETE_MENTIONS = Prepared(message_mentions.delete().where(message_mentions.c.message_id == bindparam("message_id")))


async def edit_message(uow: UnitOfWork, record: MessageRecord) -> bool:
    result = await uow.execute(
        _EDIT,
        {
            "message_id": record.id,
            "text": record.text,
            "edited_at": record.edited_at_ms,
            "mention_user_ids": join_ids(record.mention_user_ids),
            "mention_role_ids": join_ids(record.mention_role_ids),
            "mention_everyone": record.mention_everyone,
        },
    )
    if result.rowcount != 1:
        return False
    await uow.execute(_DELETE_MENTIONS, {"message_id": record.id})
    await insert_mentions(uow, record, mention_targets(record))
    return True


_LOSE_LIVE = Prepared(
    update(message_channels)
    .where(message_channels.c.channel_id == bindparam("channel_id"))
    .values(live_count=message_channels.c.live_count - 1)
)
_TOMBSTONE = Prepared(
    update(messages)
    .where(messages.c.id == bindparam("message_id"), messages.c.deleted.is_(False))
    .values(deleted=True, text="", client_id=None, mention_user_ids="", mention_role_ids="", mention_everyone=False)
)
_READ_PAST = Prepared(
    update(read_states)
    .where(read_states.c.channel_id == bindparam("channel_id"), read_states.c.read_seq >= bindparam("seq"))
    .values(live_read=read_states.c.live_read - 1)
)
_OWN_UNREAD_GONE = Prepared(
    update(read_states)
    .where(
        read_states.c.channel_id == bindparam("channel_id"),
        read_states.c.user_id == bindparam("author_id"),
        read_states.c.read_seq < bindparam("seq"),
    )
    .values(own_unread=read_states.c.own_unread - 1)
)


async def delete_message(uow: UnitOfWork, record: MessageRecord) -> bool:
    """Tombstones a live message and keeps the counters right: the channel's live count, the rows of those who had
    read past it (one statement, however many), the author's own count if it was after the author's marker.
    False if it was deleted meanwhile (nothing changed)."""
    params = {"channel_id": record.channel_id, "message_id": record.id, "seq": record.seq}
    await uow.execute(_LOSE_LIVE, params)  # first: the channel's row lock orders this against sends and reads
    if (await uow.execute(_TOMBSTONE, params)).rowcount != 1:
        return False
    await uow.execute(_READ_PAST, params)
    await uow.execute(_OWN_UNREAD_GONE, {**params, "author_id": record.author_id})
    await uow.execute(_DELETE_MENTIONS, params)
    return True


# ------------------------------------------------------------------------------------------------ read state

_CHANNEL_COUNTERS = select(message_channels.c.last_seq, message_channels.c.live_count).where(
    message_channels.c.channel_id == bindparam("channel_id")
)
# On PostgreSQL the row stays locked until commit (SQLite's writer holds the database lock anyway).
_LOCK_CHANNEL = Prepared(_CHANNEL_COUNTERS, postgresql=_CHANNEL_COUNTERS.with_for_update())
_READ_STATE = Prepared(
    select(
        read_states.c.read_seq, read_states.c.read_message_id, read_states.c.live_read, read_states.c.own_unread
    ).where(read_states.c.user_id == bindparam("user_id"), read_states.c.channel_id == bindparam("channel_id"))
)
_COUNT_LIVE = Prepared(
    select(func.count().label("n"))
    .select_from(messages)
    .where(_LIVE, messages.c.seq > bindparam("low"), messages.c.seq <= bindparam("high"))
)
_COUNT_OWN = Prepared(
    select(func.count().label("n"))
    .select_from(messages)
    .where(
        _LIVE,
        messages.c.author_id == bindparam("author_id"),
        messages.c.seq > bindparam("low"),
        messages.c.seq <= bindparam("high"),
    )
)


def _save_read_state(dialect_insert):
    columns = ("user_id", "channel_id", "community_id", "read_seq", "read_message_id", "live_read", "own_unread")
    statement = dialect_insert(read_states).values({name: bindparam(name) for name in columns})
    return statement.on_conflict_do_update(
        index_elements=[read_states.c.user_id, read_states.c.channel_id],
        set_={name: statement.excluded[name] for name in columns[3:]},
    )


_SAVE_READ_STATE = Prepared(_save_read_state(sqlite.insert), postgresql=_save_read_state(postgresql.insert))


async def read_state(uow: UnitOfWork, user_id: int, channel_id: int) -> ReadRecord | None:
    row = (await uow.execute(_READ_STATE, {"user_id": user_id, "channel_id": channel_id})).first()
    return ReadRecord(row.read_seq, row.read_message_id, row.live_read, row.own_unread) if row else None


async def lock_channel(uow: UnitOfWork, channel_id: int) -> tuple[int, int]:
    """(last_seq, live_count) of the channel, its row locked until commit on PostgreSQL."""
    row = (await uow.execute(_LOCK_CHANNEL, {"channel_id": channel_id})).first()
    return (row.last_seq, row.live_count) if row else (0, 0)


async def mark_read(
    uow: UnitOfWork, community_id: int, user_id: int, message: MessageRecord
) -> tuple[ReadRecord, int] | None:
    """Moves the user's marker to `message` (never back). Returns the new read state and the channel's live count,
    or None when the marker was already there or past it. Counts only the messages between the old and the new
    marker, or those after the new one, whichever range is shorter: never the channel's whole history."""
    channel_id = message.channel_id
    last_seq, live_count = await lock_channel(uow, channel_id)
    state = await read_state(uow, user_id, channel_id) or ReadRecord(0, None, 0, 0)
    if state.read_seq >= message.seq:
        return None
    if message.seq - state.read_seq <= last_seq - message.seq:
        window = {"channel_id": channel_id, "low": state.read_seq, "high": message.seq}
        newly = (await uow.execute(_COUNT_LIVE, window)).scalar_one()
        own = (await uow.execute(_COUNT_OWN, {**window, "author_id": user_id})).scalar_one()
        live_read, own_unread = state.live_read + newly, state.own_unread - own
    else:
        window = {"channel_id": channel_id, "low": message.seq, "high": last_seq}
        after = (await uow.execute(_COUNT_LIVE, window)).scalar_one()
        own_unread = (await uow.execute(_COUNT_OWN, {**window, "author_id": user_id})).scalar_one()
        live_read = live_count - after
    new = ReadRecord(message.seq, message.id, live_read, own_unread)
    values = {
        "user_id": user_id,
        "channel_id": channel_id,
        "community_id": community_id,
        "read_seq": new.read_seq,
        "read_message_id": new.read_message_id,
        "live_read": new.live_read,
        "own_unread": new.own_unread,
    }
    await uow.execute(_SAVE_READ_STATE, values)
    return new, live_count


# ------------------------------------------------------------------------------------------------ unread totals


@dataclass(slots=True)
class ChannelUnread:
    channel_id: int
    community_id: int
    read_seq: int
    read_message_id: int | None
    unread: int
    mentions: int = 0


def _mentions_after_marker(user_id=None):
    """Messages after the user's marker (read_states.read_seq), not its own, that mention it, one of its roles,
    or everyone: the mention rows after the marker (index on channel and seq), never the messages."""
    user_id = bindparam("user_id") if user_id is None else user_id
    community_id = message_mentions.c.community_id
    my_roles = select(member_roles.c.role_id).where(
        member_roles.c.user_id == user_id, member_roles.c.community_id == community_id
    )
    return and_(
        message_mentions.c.seq > func.coalesce(read_states.c.read_seq, 0),
        message_mentions.c.author_id != user_id,
        or_(
            message_mentions.c.target_id == user_id,
            message_mentions.c.target_id == community_id,
            message_mentions.c.target_id.in_(my_roles),
        ),
    )


# Every channel with messages in the user's communities where something is unread for it, with its unread
# mentions. One statement for all of the user's communities: its size grows with their channels, never with
# their messages.
_UNREAD = Prepared(
    select(
        message_channels.c.channel_id,
        message_channels.c.community_id,
        message_channels.c.live_count,
        read_states.c.read_seq,
        read_states.c.read_message_id,
        read_states.c.live_read,
        read_states.c.own_unread,
        select(func.count(func.distinct(message_mentions.c.message_id)))
        .where(
            message_mentions.c.channel_id == message_channels.c.channel_id,
            _mentions_after_marker(),
        )
        .scalar_subquery()
        .label("mentions"),
    )
    .select_from(members)
    .join(message_channels, message_channels.c.community_id == members.c.community_id)
    .outerjoin(
        read_states,
        and_(read_states.c.channel_id == message_channels.c.channel_id, read_states.c.user_id == members.c.user_id),
    )
    .where(
        members.c.user_id == bindparam("user_id"),
        message_channels.c.live_count
        > func.coalesce(read_states.c.live_read, 0) + func.coalesce(read_states.c.own_unread, 0),
    )
)
_UNREAD_IN = Prepared(
    select(
        message_channels.c.channel_id,
        message_channels.c.community_id,
        message_channels.c.live_count,
        read_states.c.read_seq,
        read_states.c.read_message_id,
        read_states.c.live_read,
        read_states.c.own_unread,
    )
    .select_from(message_channels)
    .outerjoin(
        read_states,
        and_(read_states.c.channel_id == message_channels.c.channel_id, read_states.c.user_id == bindparam("user_id")),
    )
    .where(message_channels.c.community_id == bindparam("community_id"))
)
# The overrides that can apply to the user (everyone's, its roles') in the channels with messages of all its
# communities: with _UNREAD, what GetCommunities needs to keep only the channels the user can view.
_OVERRIDES = Prepared(
    select(
        channel_overrides.c.channel_id,
        channel_overrides.c.target_id,
        channel_overrides.c.allow,
        channel_overrides.c.deny,
    )
    .select_from(members)
    .join(message_channels, message_channels.c.community_id == members.c.community_id)
    .join(channel_overrides, channel_overrides.c.channel_id == message_channels.c.channel_id)
    .where(
        members.c.user_id == bindparam("user_id"),
        or_(
            channel_overrides.c.target_id == members.c.community_id,
            channel_overrides.c.target_id.in_(
                select(member_roles.c.role_id).where(
                    member_roles.c.user_id == bindparam("user_id"),
                    member_roles.c.community_id == members.c.community_id,
                )
            ),
        ),
    )
)


def _unread_row(row, mentions: int = 0) -> ChannelUnread:
    unread = row.live_count - (row.live_read or 0) - (row.own_unread or 0)
    return ChannelUnread(
        row.channel_id, row.community_id, row.read_seq or 0, row.read_message_id, max(unread, 0), mentions
    )


async def unread_channels(db: Database, user_id: int) -> list[ChannelUnread]:
    """The channels of all the user's communities with unread messages, and their unread mentions of the user
    (visibility not applied). One prepared statement."""
    return [_unread_row(row, row.mentions) for row in await db.read(_UNREAD, {"user_id": user_id})]


async def overrides_for_user(db: Database, user_id: int) -> dict[int, dict[int, Override]]:
    """channel id -> target id -> override, for the channels with messages in the user's communities."""
    result: dict[int, dict[int, Override]] = {}
    for row in await db.read(_OVERRIDES, {"user_id": user_id}):
        result.setdefault(row.channel_id, {})[row.target_id] = Override(allow=row.allow, deny=row.deny)
    return result


async def community_channels(uow: UnitOfWork, user_id: int, community_id: int) -> dict[int, ChannelUnread]:
    """Every channel of the community with messages, and the user's read state in it."""
    rows = await uow.execute(_UNREAD_IN, {"user_id": user_id, "community_id": community_id})
    return {row.channel_id: _unread_row(row) for row in rows}


async def count_mentions(uow: UnitOfWork, user_id: int, channels: Sequence[ChannelUnread]) -> None:
    """Fills `mentions` of each channel (see _mentions_after_marker). One statement."""
    if not channels:
        return
    statement = (
        select(message_mentions.c.channel_id, func.count(func.distinct(message_mentions.c.message_id)))
        .select_from(message_mentions)
        .outerjoin(
            read_states,
            and_(read_states.c.channel_id == message_mentions.c.channel_id, read_states.c.user_id == user_id),
        )
        .where(
            message_mentions.c.channel_id.in_([channel.channel_id for channel in channels]),
            _mentions_after_marker(user_id),
        )
        .group_by(message_mentions.c.channel_id)
    )
    counts = dict((await uow.execute(statement)).all())
    for channel in channels:
        channel.mentions = counts.get(channel.channel_id, 0)
