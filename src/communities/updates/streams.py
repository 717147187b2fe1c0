"""The open Subscribe streams of this process: their presence rows (temporary memberships are decided from them,
on any replica) and the revocation check that ends a stream within seconds of its token being revoked."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from communities.storage import presence as presence_repo
from communities.storage.database import Database

log = logging.getLogger("communities.updates")

HEARTBEAT_SECONDS = 10.0
REVOCATION_CHECK_SECONDS = 2.0


@dataclass(eq=False)
class StreamHandle:
    stream_id: str
    user_id: int
    credential: bytes | None
    revoked: asyncio.Event = field(default_factory=asyncio.Event)


class StreamRegistry:
    def __init__(self, db: Database, clock_ms: Callable[[], int]):
        self._db = db
        self._clock_ms = clock_ms
        self._open: dict[str, StreamHandle] = {}
        self._prefix = f"{os.getpid():x}.{secrets.token_hex(6)}"
        self._numbers = itertools.count(1)
        self._task: asyncio.Task | None = None

    @property
    def count(self) -> int:
        return len(self._open)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def open(self, user_id: int, credential: bytes | None) -> StreamHandle:
        handle = StreamHandle(f"{self._prefix}.{next(self._numbers)}", user_id, credential)
        async with self._db.unit_of_work(write=True) as uow:
            await presence_repo.opened(uow, handle.stream_id, user_id, self._clock_ms())
        self._open[handle.stream_id] = handle
        return handle

    async def close(self, handle: StreamHandle) -> None:
        """The stream ended: its presence row keeps the time, for the temporary membership grace period."""
        self._open.pop(handle.stream_id, None)
        try:
            async with self._db.unit_of_work(write=True) as uow:
                await presence_repo.heartbeat(uow, [handle.stream_id], self._clock_ms(), closing=True)
        except Exception:  # the next sweep treats it as having closed at its last heartbeat
            log.warning("could not record the end of stream %s", handle.stream_id, exc_info=True)

    async def _watch(self) -> None:
        beats_every = max(1, round(HEARTBEAT_SECONDS / REVOCATION_CHECK_SECONDS))
        for round_number in itertools.count():
            await asyncio.sleep(REVOCATION_CHECK_SECONDS)
            try:
                await self._check_revocations()
                if round_number % beats_every == 0:
                    await self._heartbeat()
            except Exception:
                log.warning("update stream bookkeeping failed; retrying", exc_info=True)

    async def _check_revocations(self) -> None:
        credentials = {handle.credential for handle in self._open.values() if handle.credential is not None}
        if not credentials:
            return
        live = await presence_repo.live_credentials(self._db, list(credentials))
        # Only the credentials just asked about: a stream opened while the query ran was not part of it.
        for handle in list(self._open.values()):
            if handle.credential in credentials and handle.credential not in live:
                handle.revoked.set()

    async def _heartbeat(self) -> None:
        if self._open:
            async with self._db.unit_of_work(write=True) as uow:
                await presence_repo.heartbeat(uow, list(self._open), self._clock_ms())
