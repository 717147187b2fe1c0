"""Snowflake ids: 42-bit milliseconds since EPOCH | 10-bit worker | 12-bit sequence.

Ids from one generator are strictly increasing. The sequence restarts every millisecond; when 4096 ids were
handed out in one millisecond the generator waits for the next one; when the wall clock steps backwards it keeps
counting from the last millisecond it used instead of going back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# 2026-01-01T00:00:00Z in Unix milliseconds. 42 bits of milliseconds last until about 2165; ids stay below 2**63
# until about 2095, so they also fit a signed 64-bit column.
EPOCH_MS = 1_767_225_600_000
TIMESTAMP_BITS = 42
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
_MAX_WAIT_S = 0.005


@dataclass(frozen=True)
class SnowflakeParts:
    timestamp_ms: int  # milliseconds since EPOCH_MS
    worker: int
    sequence: int

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp((self.timestamp_ms + EPOCH_MS) / 1000, tz=UTC)


def decode(snowflake: int) -> SnowflakeParts:
    return SnowflakeParts(
        timestamp_ms=snowflake >> (WORKER_BITS + SEQUENCE_BITS),
        worker=(snowflake >> SEQUENCE_BITS) & MAX_WORKER,
        sequence=snowflake & MAX_SEQUENCE,
    )


def encode(timestamp_ms: int, worker: int, sequence: int) -> int:
    if not 0 <= timestamp_ms <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp_ms} ms is outside the snowflake range")
    if not 0 <= worker <= MAX_WORKER:
        raise ValueError(f"worker {worker} is outside 0..{MAX_WORKER}")
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence} is outside 0..{MAX_SEQUENCE}")
    return (timestamp_ms << (WORKER_BITS + SEQUENCE_BITS)) | (worker << SEQUENCE_BITS) | sequence


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SnowflakeGenerator:
    """Thread-safe generator for one worker id. `clock` returns Unix milliseconds (injectable for tests)."""

    def __init__(self, worker: int, clock: Callable[[], int] = _wall_clock_ms) -> None:
        if not 0 <= worker <= MAX_WORKER:
            raise ValueError(f"worker id must be within 0..{MAX_WORKER}, got {worker}")
        self.worker = worker
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now = self._clock() - EPOCH_MS
            if now > self._last_ms:
                self._last_ms = now
                self._sequence = 0
            else:
                # Same millisecond, or the clock went backwards: stay on the last millisecond used.
                self._sequence += 1
                if self._sequence > MAX_SEQUENCE:
                    self._last_ms = self._wait_past(self._last_ms)
                    self._sequence = 0
            return encode(self._last_ms, self.worker, self._sequence)

    def _wait_past(self, last_ms: int) -> int:
        """The next millisecond to use after `last_ms` ran out of sequence numbers: normally the wall clock's,
        once it ticks. A clock that is behind, or that does not tick within a few real milliseconds (a coarse or
        stuck clock), does not stall the generator: it borrows the next millisecond instead."""
        waited_since = time.monotonic()
        while True:
            now = self._clock() - EPOCH_MS
            if now > last_ms:
                return now
            if now < last_ms or time.monotonic() - waited_since > _MAX_WAIT_S:
                return last_ms + 1
            time.sleep(0.0001)
