"""PostgreSQL: the sequencer that gives committed events their stream positions, and the LISTEN connection that
wakes this replica's hub when any replica sequenced events. NOTIFY carries only a wake-up; readers read the table.

SQLite needs neither: positions are given in the writing transaction and the hub is poked after its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy.engine import make_url

from communities.storage import events as events_repo
from communities.storage.database import Database, normalize_url
from communities.storage.events import NOTIFY_CHANNEL
from communities.updates.hub import Hub

log = logging.getLogger("communities.updates")

# Safety nets: sequence events a crashed replica committed but never sequenced, and re-listen after a lost
# connection (the hub also polls on its own).
SEQUENCE_EVERY_SECONDS = 1.0
RECONNECT_SECONDS = 1.0


def asyncpg_dsn(url: str) -> str:
    return make_url(normalize_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresWakeup:
    def __init__(self, db: Database, hub: Hub):
        self._db = db
        self._hub = hub
        self._requested = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._listener: asyncpg.Connection | None = None

    def committed(self, _events: list | None = None) -> None:
        """A local unit of work committed events: sequence them soon (coalesced)."""
        self._requested.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sequence_forever()), loop.create_task(self._listen_forever())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)

    async def _sequence_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._requested.wait(), SEQUENCE_EVERY_SECONDS)
            self._requested.clear()
            try:
                await self.sequence()
            except Exception:
                log.warning("sequencing events failed; retrying", exc_info=True)
                await asyncio.sleep(SEQUENCE_EVERY_SECONDS)

    async def sequence(self) -> None:
        while True:
            async with self._db.unit_of_work(write=True) as uow:
                last, more = await events_repo.sequence_pending(uow)
            if last is not None:
                self._hub.poke()  # our own streams need not wait for the NOTIFY
            if not more:
                return  # events committed since then have asked for another round (or will be, by their replica)

    async def _listen_forever(self) -> None:
        dsn = asyncpg_dsn(self._db.url)
        while True:
            lost = asyncio.Event()
            try:
                self._listener = await asyncpg.connect(dsn)
                self._listener.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_args: self._hub.poke())
                self._hub.poke()  # whatever was missed while not listening
                await lost.wait()
                log.warning("lost the LISTEN connection to PostgreSQL; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("cannot LISTEN for updates (%s); retrying", type(error).__name__)
            finally:
                if self._listener is not None:
                    with contextlib.suppress(Exception):
                        self._listener.terminate()
                    self._listener = None
            await asyncio.sleep(RECONNECT_SECONDS)
