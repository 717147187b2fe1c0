"""What every use case gets: the database, the id generator, the clock, and who is calling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from communities.domain.snowflake import SnowflakeGenerator
from communities.media.blobstore import BlobStore
from communities.storage.database import Database


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class App:
    db: Database
    ids: SnowflakeGenerator
    blobs: BlobStore
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)
    # Work that outlives the call that started it (target user jobs); the server waits for or cancels it on stop.
    background: set[asyncio.Task] = field(default_factory=set)
    # See services/blobs.py.
    blob_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    id: int
    name: str
    bot: bool

    def describe(self) -> str:
        return f"{'bot' if self.bot else 'user'}:{self.id}"
