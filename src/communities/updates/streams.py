"""The open Subscribe streams of this process: their presence rows (temporary memberships are decided from them,
on any replica), and what ends or wakes a quiet stream without a timer of its own: a revoked token (from the
revocation feed, services/credentials.py), an expired JSON Web Token, a checkpoint falling due."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from communities.storage import presence as presence_repo
from communities.storage.database import Database

log = logging.getLogger("communities.updates")

HEARTBEAT_SECONDS = 10.0
# How often the registry looks for streams to wake (a JWT expired, a checkpoint due): one pass over the open
# streams, instead of a timer per stream.
WAKE_SECONDS = 1.0
# Revocations arrive through the feed within a second; this check of every open stream's token against the tokens
# table is a safety net for a revocation the feed missed (its poll failed for longer than the feed's window).
REVOCATION_CHECK_SECONDS = 60.0


class Batch:
    """Work for many callers at once: what is added while a run is in progress goes into the next run, so a
    thousand streams opening (or closing) at once cost a few transactions, not a thousand. `add` returns when the
    run that took its item has ended (raising what that run raised)."""

    def __init__(self, run: Callable[[list], Awaitable[None]]):
        self._run = run
        self._items: list = []
        self._done: asyncio.Future | None = None
        self._runner: asyncio.Task | None = None

    async def add(self, item: Any = None) -> None:
        loop = asyncio.get_running_loop()
        if self._done is None:
            self._done = loop.create_future()
            self._done.add_done_callback(_retrieve)
        done = self._done
        self._items.append(item)
        if self._runner is None:
            self._runner = loop.create_task(self._drain())
        await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while (done := self._done) is not None:
                items, self._items, self._done = self._items, [], None
                try:
                    await self._run(items)
                except Exception as error:
                    done.set_exception(error)
                else:
                    done.set_result(None)
                finally:
                    if not done.done():
                        done.cancel()
        finally:
            self._runner = None
            if self._done is not None:
                self._done.cancel()
                self._items, self._done = [], None


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: every caller may have gone


class StreamHandle:
    __slots__ = ("credential", "expires_ms", "revoked", "stream_id", "user_id", "waiter", "wake_at", "woken")

    def __init__(self, stream_id: str, user_id: int, credential: bytes | None, expires_ms: int | None = None):
        self.stream_id = stream_id
        self.user_id = user_id
        self.credential = credential
        self.expires_ms = expires_ms  # a JWT's expiry (the app clock's ms): the stream ends then
        self.revoked = False
        self.wake_at: float | None = None  # time.monotonic() at which the stream wants to be woken
        self.waiter: asyncio.Future | None = None  # set while it waits for news (Hub.wait_beyond)
        self.woken = False

    def wake(self) -> None:
        self.woken = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class StreamRegistry:
    def __init__(self, db: Database, clock_ms: Callable[[], int]):
        self._db = db
        self._clock_ms = clock_ms
        self._open: dict[str, StreamHandle] = {}
        self._prefix = f"{os.getpid():x}.{secrets.token_hex(6)}"
        self._numbers = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._feeds: list = []
        self._opening = Batch(self._write_opened)
        self._closing = Batch(self._write_closed)

    @property
    def count(self) -> int:
        return len(self._open)

    def follow(self, feed) -> None:
        """End streams on the revocations `feed` (a CredentialCache) reports."""
        if feed not in self._feeds:
            self._feeds.append(feed)
            feed.on_revoked.append(self.revoke)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def open(self, user_id: int, credential: bytes | None, expires_ms: int | None = None) -> StreamHandle:
        handle = StreamHandle(f"{self._prefix}.{next(self._numbers)}", user_id, credential, expires_ms)
        await self._opening.add(handle)
        self._open[handle.stream_id] = handle
        return handle

    async def close(self, handle: StreamHandle) -> None:
        """The stream ended: its presence row keeps the time, for the temporary membership grace period."""
        self._open.pop(handle.stream_id, None)
        try:
            await self._closing.add(handle.stream_id)
        except Exception:  # the next sweep treats it as having closed at its last heartbeat
            log.warning("could not record the end of stream %s", handle.stream_id, exc_info=True)

    async def _write_opened(self, handles: list[StreamHandle]) -> None:
        async with self._db.unit_of_work(write=True) as uow:
            now = self._clock_ms()
            for handle in handles:
                await presence_repo.opened(uow, handle.stream_id, handle.user_id, now)

    async def _write_closed(self, stream_ids: list[str]) -> None:
        async with self._db.unit_of_work(write=True) as uow:
            await presence_repo.heartbeat(uow, stream_ids, self._clock_ms(), closing=True)

    def revoke(self, token_hash: bytes | None, user_id: int | None) -> None:
        """A token (or every token of a user) was revoked: its streams end. JWT streams have no stored token."""
        for handle in self._open.values():
            if handle.credential is not None and (
                handle.credential == token_hash or (user_id is not None and handle.user_id == user_id)
            ):
                handle.revoked = True
                handle.wake()

    async def _watch(self) -> None:
        beats_every = max(1, round(HEARTBEAT_SECONDS / WAKE_SECONDS))
        checks_every = max(1, round(REVOCATION_CHECK_SECONDS / WAKE_SECONDS))
        for round_number in itertools.count(1):
            await asyncio.sleep(WAKE_SECONDS)
            self._wake_due()
            try:
                if round_number % checks_every == 0:
                    await self._check_revocations()
                if round_number % beats_every == 0:
                    await self._heartbeat()
            except Exception:
                log.warning("update stream bookkeeping failed; retrying", exc_info=True)

    def _wake_due(self) -> None:
        now, now_ms = time.monotonic(), self._clock_ms()
        for handle in self._open.values():
            if (handle.wake_at is not None and handle.wake_at <= now) or (
                handle.expires_ms is not None and handle.expires_ms <= now_ms
            ):
                handle.wake()

    async def check(self, handle: StreamHandle) -> None:
        """Whether the token of a stream opened as a revocation was seen still exists."""
        if handle.credential is not None and not await presence_repo.live_credentials(self._db, [handle.credential]):
            self.revoke(handle.credential, None)

    async def _check_revocations(self) -> None:
        credentials = {handle.credential for handle in self._open.values() if handle.credential is not None}
        if not credentials:
            return
        live = await presence_repo.live_credentials(self._db, list(credentials))
        for credential in credentials - live:
            self.revoke(credential, None)

    async def _heartbeat(self) -> None:
        if self._open:
            async with self._db.unit_of_work(write=True) as uow:
                await presence_repo.heartbeat(uow, list(self._open), self._clock_ms())
