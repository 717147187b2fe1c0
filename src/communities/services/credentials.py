"""Authentication without a database read on every call: token hash -> principal for a few seconds, with
revocations seen by every server within a second (and passed on to the update streams, updates/streams.py).

Revoking (the CLI, or any server) deletes the tokens and writes a row to `token_revocations` in the same
transaction. Every server polls that feed every POLL_SECONDS (one indexed read of the last minute's rows, almost
always none) and drops what a new row names. The cache is used only while the last poll began less than
MAX_STALENESS_SECONDS ago, so a revocation committed before then is always seen: if polling stalls (a busy or
unreachable database), calls read the tokens table again, as without a cache.

A lookup that began before a revocation was seen must not put a stale principal back: each fill carries the
`generation` read before its lookup and is dropped if a revocation arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from communities.services.context import Principal
from communities.storage import repository as repo
from communities.storage.database import Database

log = logging.getLogger("communities.credentials")

TTL_SECONDS = 5.0
SIZE = 10_000
POLL_SECONDS = 0.25
MAX_STALENESS_SECONDS = 0.75
# Rows of the feed read on each poll: a revocation whose transaction took longer than this to commit, or written
# by a machine whose clock is this much behind, could be missed (its tokens then drop out within TTL_SECONDS).
WINDOW_MS = 60_000
KEEP_MS = 24 * 3600 * 1000


class CredentialCache:
    def __init__(
        self,
        db: Database,
        wall_ms: Callable[[], int],
        *,
        ttl: float = TTL_SECONDS,
        size: int = SIZE,
        poll_seconds: float = POLL_SECONDS,
        max_staleness: float = MAX_STALENESS_SECONDS,
    ):
        self._db = db
        self._wall_ms = wall_ms
        self.ttl = ttl
        self.size = size
        self.poll_seconds = poll_seconds
        self.max_staleness = max_staleness
        # key -> (principal, monotonic expiry)
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self.generation = 0
        self._fresh_until = 0.0  # monotonic time until which the last poll vouches for the entries
        self._seen: set[int] = set()
        self._task: asyncio.Task | None = None
        self.hits = 0
        self.misses = 0
        # Called with (token_hash, user_id) for every revocation seen: the update streams end theirs from here.
        self.on_revoked: list[Callable[[bytes | None, int | None], None]] = []

    # --------------------------------------------------------------------------------------------- the cache

    def get(self, key: bytes) -> Principal | None:
        now = time.monotonic()
        if now >= self._fresh_until:
            self.misses += 1
            return None
        entry = self._entries.get(key)
        if entry is None or entry[1] <= now:
            self.misses += 1
            return None
        principal = entry[0]
        if principal.expires_ms is not None and self._wall_ms() >= principal.expires_ms:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return principal

    def put(self, key: bytes, principal: Principal, generation: int) -> None:
        if generation != self.generation:
            return  # a revocation was seen while this principal was looked up: it may be stale
        self._entries[key] = (principal, time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def evict(self, *, token_hash: bytes | None = None, user_id: int | None = None) -> None:
        """A revocation was seen (here or, through the feed, on another server)."""
        self.generation += 1
        if token_hash is not None:
            self._entries.pop(token_hash, None)
        if user_id is not None:
            for key in [key for key, (principal, _) in self._entries.items() if principal.id == user_id]:
                del self._entries[key]
        for listener in self.on_revoked:
            listener(token_hash, user_id)

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------------------------------------- feed

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fresh_until = 0.0

    async def poll(self) -> None:
        started = time.monotonic()
        rows = await repo.revocations_since(self._db, self._wall_ms() - WINDOW_MS)
        ids = set()
        for revocation_id, token_hash, user_id in rows:
            ids.add(revocation_id)
            if revocation_id not in self._seen:
                self.evict(token_hash=token_hash, user_id=user_id)
        self._seen = ids  # rows leave the window for good: only the window's ids need remembering
        self._fresh_until = started + self.max_staleness

    async def _watch(self) -> None:
        failing = False
        while True:
            try:
                await self.poll()
                failing = False
            except Exception:
                if not failing:
                    log.warning("reading token revocations failed; authenticating from the database", exc_info=True)
                failing = True
            await asyncio.sleep(self.poll_seconds)


async def forget_old_revocations(app) -> int:
    async with app.db.unit_of_work(write=True) as uow:
        return await repo.forget_revocations_before(uow, app.clock_ms() - KEEP_MS)
