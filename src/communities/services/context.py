"""What every use case gets: the database, the id generator, the clock, and who is calling."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from communities.domain.snowflake import SnowflakeGenerator
from communities.storage.database import Database


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class App:
    db: Database
    ids: SnowflakeGenerator
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    id: int
    name: str
    bot: bool

    def describe(self) -> str:
        return f"{'bot' if self.bot else 'user'}:{self.id}"
