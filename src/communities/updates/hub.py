"""Fan-out in one process: one reader follows the event stream and keeps its newest events in memory; every
Subscribe stream of the process reads from that buffer (or, when it is further behind, from the database in
pages), so a thousand streams cost one query per wake-up, not a thousand.

Streams pull: each keeps its own position and asks for what follows it. A slow stream holds at most one page, so
no stream can make the server's memory grow.

Wake-ups: `poke()` after a local commit that published events (SQLite: with them, positioned, so that what this
process just wrote is taken as written instead of read back), after this process's sequencer ran, on a PostgreSQL
NOTIFY from another replica, and every `POLL_SECONDS` in case one was lost.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from communities.storage import events as events_repo
from communities.storage.database import Database
from communities.storage.events import EventRow
from communities.updates.streams import Batch, StreamHandle

log = logging.getLogger("communities.updates")

BUFFER_EVENTS = 8192
PAGE = 500
POLL_SECONDS = 1.0
OVERRIDE_CACHE = 4096
_OVERRIDE_CHANGES = frozenset({"override_updated", "override_deleted", "channel_created", "channel_deleted"})


def _position(event: EventRow) -> int:
    return event.position


class Hub:
    def __init__(self, db: Database, *, buffer_events: int = BUFFER_EVENTS):
        self._db = db
        self._buffer: deque[EventRow] = deque(maxlen=buffer_events)
        self.head = 0  # the last position read from the database
        # The futures of the streams waiting for news: one per waiting stream, no timer (updates/streams.py wakes
        # a stream early when its token is revoked, its JWT expires or the server stops).
        self._waiters: set[asyncio.Future] = set()
        self._poked = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._sequenced: Batch | None = None
        # Channel overrides as of `head`, shared by the streams' visibility checks; an event that changes a
        # channel's overrides drops its entry before any stream sees that event.
        self.overrides: OrderedDict[int, dict] = OrderedDict()

    async def start(self) -> None:
        self.head = (await events_repo.head(self._db)).last_position
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def poke(self, committed: list[dict] | None = None) -> None:
        """Read what is new soon. `committed`: events a local commit just wrote (storage/events.py), taken as they
        are when they carry positions that directly follow what the hub holds; else they are read like any other."""
        if committed and committed[0]["position"] == self.head + 1:
            self._add([events_repo.as_written(event) for event in committed])
        else:
            self._poked.set()

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), POLL_SECONDS)
            self._poked.clear()
            try:
                await self._read_new()
            except Exception:
                log.exception("reading new events failed; retrying")
                await asyncio.sleep(POLL_SECONDS)

    async def _read_new(self) -> None:
        while True:
            rows = await events_repo.read_after(self._db, self.head, PAGE)
            full = len(rows) >= PAGE
            # poke() may have taken some of them while the read waited for the database.
            skip = bisect.bisect_right(rows, self.head, key=_position)
            if skip < len(rows):
                self._add(rows[skip:] if skip else rows)
            if not full:
                break

    def _add(self, rows: list[EventRow]) -> None:
        for row in rows:
            if row.channel_id is not None and row.kind in _OVERRIDE_CHANGES:
                self.overrides.pop(row.channel_id, None)
        self._buffer.extend(rows)
        self.head = rows[-1].position
        # Wake every stream waiting for news; each then reads what follows its own position.
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_beyond(self, position: int, handle: StreamHandle) -> None:
        """Wait until there are events after `position`, or until `handle` is woken (StreamHandle.wake)."""
        if self.head > position or handle.woken:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        handle.waiter = waiter
        try:
            await waiter
        finally:
            handle.waiter = None
            self._waiters.discard(waiter)

    async def after_run_of(self, work: Callable[[], Awaitable[None]]) -> None:
        """Wait for a run of `work` (the PostgreSQL sequencer) that began after this call. Callers that arrive
        while it runs share the next run, so a thousand streams opening at once cost two runs, not a thousand."""
        if self._sequenced is None:
            self._sequenced = Batch(lambda _items: work())
        await self._sequenced.add()

    async def read_after(self, position: int, limit: int = PAGE) -> list[EventRow]:
        """Events after `position`, at most `limit`, in order: from memory when it still holds them."""
        buffer = self._buffer
        if buffer and buffer[0].position <= position + 1 and position < self.head:
            # By search, not by arithmetic: positions are gap-free as given out, but a retention sweep can delete
            # events the hub had not read yet, leaving a hole in what it holds.
            start = bisect.bisect_right(buffer, position, key=_position)
            return list(itertools.islice(buffer, start, start + limit))
        if position >= self.head:
            return []
        return await events_repo.read_after(self._db, position, min(limit, self.head - position))

    def cached_overrides(self, channel_id: int) -> dict | None:
        found = self.overrides.get(channel_id)
        if found is not None:
            self.overrides.move_to_end(channel_id)
        return found

    def cache_overrides(self, channel_id: int, overrides: dict) -> None:
        self.overrides[channel_id] = overrides
        if len(self.overrides) > OVERRIDE_CACHE:
            self.overrides.popitem(last=False)
