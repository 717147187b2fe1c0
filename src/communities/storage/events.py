"""The outbox: the events a unit of work writes in the same transaction as the change they describe, and how
readers follow them.

Two numbers order events:
- `seq`, per community, gap-free, taken in the writing transaction from the community's counter row (whose lock,
  on PostgreSQL, makes a community's writers commit one after the other): a community's events in commit order.
- `position`, global and gap-free: what a Subscribe cursor is. On SQLite (one writer at a time) it is taken in the
  writing transaction too. On PostgreSQL transactions commit out of any order taken inside them, so a sequencer
  gives positions after commit, in one short transaction at a time: only committed events, each community's in
  seq order without gaps. A reader that has seen position P has therefore seen every event positioned before P,
  and every event it has not seen will be positioned after P. Nothing is ever read by id order.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from sqlalchemy import Text, bindparam, cast, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from communities.storage.database import Database, Prepared, UnitOfWork
from communities.storage.tables import event_counters, event_sequenced, events, stream_head

# Who may receive an event (besides being a member of its community and, with channel_id, viewing the channel).
AUDIENCE_MEMBERS = 0
AUDIENCE_PERMISSION = 1  # members holding audience_permission, and audience_user_id
AUDIENCE_USER = 2  # only audience_user_id
# Invites: those who could list it: audience_user_id (its inviter), MODIFY_COMMUNITY, or MODIFY_CHANNEL in the channel
AUDIENCE_INVITE = 3

NOTIFY_CHANNEL = "communities_events"


@dataclass(slots=True)
class EventRow:
    position: int
    community_id: int
    kind: str
    at_ms: int
    target_id: int | None
    channel_id: int | None
    audience: int
    audience_permission: int
    audience_user_id: int | None
    overrides: bytes | None
    payload: bytes


@dataclass(slots=True)
class AuditRow:
    id: int
    kind: str
    actor_id: int | None
    target_id: int | None
    at_ms: int
    reason: str | None


@dataclass(slots=True)
class StreamHead:
    last_position: int
    swept_position: int


def _upsert_counter(dialect_insert):
    statement = dialect_insert(event_counters).values(community_id=bindparam("community_id"), last_seq=bindparam("n"))
    return statement.on_conflict_do_update(
        index_elements=[event_counters.c.community_id],
        set_={"last_seq": event_counters.c.last_seq + statement.excluded.last_seq},
    ).returning(event_counters.c.last_seq)


# Take `n` more seqs of a community (the last one is returned), and `n` more positions (SQLite).
_NEXT_SEQ = Prepared(_upsert_counter(sqlite.insert), postgresql=_upsert_counter(postgresql.insert))
_NEXT_POSITION = Prepared(
    update(stream_head)
    .where(stream_head.c.id == 1)
    .values(last_position=stream_head.c.last_position + bindparam("n"))
    .returning(stream_head.c.last_position)
)
_INSERT = Prepared(
    events.insert().values(
        id=bindparam("id"),
        community_id=bindparam("community_id"),
        seq=bindparam("seq"),
        position=bindparam("position"),
        kind=bindparam("kind"),
        at=bindparam("at"),
        actor_id=bindparam("actor_id"),
        target_id=bindparam("target_id"),
        channel_id=bindparam("channel_id"),
        audience=bindparam("audience"),
        audience_permission=bindparam("audience_permission"),
        audience_user_id=bindparam("audience_user_id"),
        overrides=bindparam("overrides"),
        reason=bindparam("reason"),
        audited=bindparam("audited"),
        payload=bindparam("payload"),
    )
)
_HEAD = Prepared(select(stream_head.c.last_position, stream_head.c.swept_position).where(stream_head.c.id == 1))
_READ_COLUMNS = (
    events.c.position,
    events.c.community_id,
    events.c.kind,
    events.c.at,
    events.c.target_id,
    events.c.channel_id,
    events.c.audience,
    events.c.audience_permission,
    events.c.audience_user_id,
    events.c.overrides,
    events.c.payload,
)
_AFTER = Prepared(
    select(*_READ_COLUMNS)
    .where(events.c.position > bindparam("after"))
    .order_by(events.c.position)
    .limit(bindparam("limit"))
)


def append(
    uow: UnitOfWork,
    *,
    event_id: int,
    community_id: int,
    kind: str,
    at_ms: int,
    actor_id: int | None,
    target_id: int | None,
    channel_id: int | None,
    audience: int,
    audience_permission: int,
    audience_user_id: int | None,
    overrides: bytes | None,
    reason: str | None,
    audited: bool,
    payload: bytes,
) -> None:
    """Adds the event to the unit of work; `write_pending` writes them all just before its commit, in order."""
    uow.pending_events.append(
        {
            "id": event_id,
            "community_id": community_id,
            "seq": None,
            "position": None,
            "kind": kind,
            "at": at_ms,
            "actor_id": actor_id,
            "target_id": target_id,
            "channel_id": channel_id,
            "audience": audience,
            "audience_permission": audience_permission,
            "audience_user_id": audience_user_id,
            "overrides": overrides,
            "reason": reason,
            "audited": audited,
            "payload": payload,
        }
    )


async def write_pending(uow: UnitOfWork) -> None:
    """Write the unit of work's events as its last statements: one counter update per community (and one stream
    head update on SQLite) for all of them. Last, so that the community's counter row, whose lock (PostgreSQL)
    orders its writers, is held only for the commit."""
    pending = uow.pending_events
    counts: dict[int, int] = {}
    for event in pending:
        counts[event["community_id"]] = counts.get(event["community_id"], 0) + 1
    next_seq = {}
    for community_id, n in sorted(counts.items()):  # one lock order for every writer: no deadlocks
        last = (await uow.execute(_NEXT_SEQ, {"community_id": community_id, "n": n})).scalar_one()
        next_seq[community_id] = last - n + 1
    for event in pending:
        event["seq"] = next_seq[event["community_id"]]
        next_seq[event["community_id"]] += 1
    if uow.dialect == "sqlite":
        last = (await uow.execute(_NEXT_POSITION, {"n": len(pending)})).scalar_one()
        for position, event in enumerate(pending, start=last - len(pending) + 1):
            event["position"] = position
    if len(pending) == 1:
        await uow.execute(_INSERT, pending[0])
    else:
        await uow.execute_many(_INSERT, pending)


async def head(db: Database) -> StreamHead:
    row = (await db.read(_HEAD, {}))[0]
    return StreamHead(row.last_position, row.swept_position)


def _event(row) -> EventRow:
    return EventRow(
        position=row.position,
        community_id=row.community_id,
        kind=row.kind,
        at_ms=row.at,
        target_id=row.target_id,
        channel_id=row.channel_id,
        audience=row.audience,
        audience_permission=row.audience_permission,
        audience_user_id=row.audience_user_id,
        overrides=row.overrides,
        payload=row.payload,
    )


def as_written(event: dict) -> EventRow:
    """An event as `write_pending` wrote it (positioned, on SQLite), for this process to use without reading it back:
    the same record `_event` makes of its row."""
    return EventRow(
        position=event["position"],
        community_id=event["community_id"],
        kind=event["kind"],
        at_ms=event["at"],
        target_id=event["target_id"],
        channel_id=event["channel_id"],
        audience=event["audience"],
        audience_permission=event["audience_permission"],
        audience_user_id=event["audience_user_id"],
        overrides=event["overrides"],
        payload=event["payload"],
    )


async def read_after(db: Database, after: int, limit: int) -> list[EventRow]:
    """Positioned events after `after`, in position order."""
    return [_event(row) for row in await db.read(_AFTER, {"after": after, "limit": limit})]


# ------------------------------------------------------------------------------------------------ sequencer

_LOCK_HEAD = Prepared(select(stream_head.c.last_position).where(stream_head.c.id == 1).with_for_update())
# Committed events without a position, each with its community's last sequenced seq (NULL: none yet).
_UNSEQUENCED = Prepared(
    select(events.c.id, events.c.community_id, events.c.seq, event_sequenced.c.seq.label("done"))
    .select_from(events.outerjoin(event_sequenced, event_sequenced.c.community_id == events.c.community_id))
    .where(events.c.position.is_(None))
    .order_by(events.c.community_id, events.c.seq)
    .limit(bindparam("limit"))
)
_SET_POSITION = Prepared(update(events).where(events.c.id == bindparam("event_id")).values(position=bindparam("pos")))
_sequenced = postgresql.insert(event_sequenced).values(community_id=bindparam("community_id"), seq=bindparam("seq"))
_MARK_SEQUENCED = Prepared(
    _sequenced.on_conflict_do_update(index_elements=["community_id"], set_={"seq": _sequenced.excluded.seq})
)
# The new head, and the wake-up of every replica's LISTEN connection (sent at commit), in one statement.
_ADVANCE_HEAD = Prepared(
    update(stream_head)
    .where(stream_head.c.id == 1)
    .values(last_position=bindparam("last"))
    .returning(func.pg_notify(NOTIFY_CHANNEL, cast(stream_head.c.last_position, Text)))
)


async def sequence_pending(uow: UnitOfWork, limit: int = 2000) -> tuple[int | None, bool]:
    """PostgreSQL: give positions to committed events that have none. Returns the new last position (None when
    there was nothing to do) and whether more may be waiting (the batch was full). Sequencers on every replica
    take turns on the stream_head row lock, taken in a statement of its own so that the reads after it see what
    the previous holder committed."""
    last = (await uow.execute(_LOCK_HEAD)).scalar_one()
    pending = (await uow.execute(_UNSEQUENCED, {"limit": limit})).all()
    full = len(pending) >= limit
    # Per community, the run that continues its sequence without a gap (a gap is an event whose transaction has
    # not committed yet: it and what follows wait for the next round).
    runs: dict[int, list] = {}
    for row in pending:
        expected = (row.done or 0) + 1 + len(runs.get(row.community_id, ()))
        if row.seq == expected:
            runs.setdefault(row.community_id, []).append(row)
    if not runs:
        return None, full
    # Interleave the communities roughly by time (ids are snowflakes), each in its own seq order.
    ordered = list(heapq.merge(*runs.values(), key=lambda row: row.id))
    positions = [{"event_id": row.id, "pos": last + index} for index, row in enumerate(ordered, start=1)]
    await uow.execute_many(_SET_POSITION, positions)
    marks = [{"community_id": community_id, "seq": run[-1].seq} for community_id, run in runs.items()]
    await uow.execute_many(_MARK_SEQUENCED, marks)
    new_last = last + len(ordered)
    await uow.execute(_ADVANCE_HEAD, {"last": new_last})
    return new_last, full


# ------------------------------------------------------------------------------------------------ retention


async def sweep(uow: UnitOfWork, before_ms: int) -> int:
    """Delete the positioned events older than `before_ms` (a prefix of the stream) and remember where the stream
    now starts, so that older cursors are told they expired. Returns how many were deleted."""
    through = (
        await uow.execute(
            select(func.max(events.c.position)).where(events.c.at < before_ms, events.c.position.is_not(None))
        )
    ).scalar()
    if through is None:
        return 0
    deleted = await uow.execute(delete(events).where(events.c.position <= through))
    await uow.execute(
        update(stream_head)
        .where(stream_head.c.id == 1, stream_head.c.swept_position < through)
        .values(swept_position=through)
    )
    return deleted.rowcount or 0


# ------------------------------------------------------------------------------------------------ audit log


async def audit_entries(
    uow: UnitOfWork,
    community_id: int,
    *,
    before_id: int | None,
    kind: str | None,
    actor_id: int | None,
    limit: int,
) -> list[AuditRow]:
    """The community's audited events, newest first."""
    query = select(
        events.c.id, events.c.kind, events.c.actor_id, events.c.target_id, events.c.at, events.c.reason
    ).where(events.c.community_id == community_id, events.c.audited.is_(True))
    if before_id is not None:
        query = query.where(events.c.id < before_id)
    if kind is not None:
        query = query.where(events.c.kind == kind)
    if actor_id is not None:
        query = query.where(events.c.actor_id == actor_id)
    rows = (await uow.execute(query.order_by(events.c.id.desc()).limit(limit))).all()
    return [AuditRow(row.id, row.kind, row.actor_id, row.target_id, row.at, row.reason) for row in rows]
