"""Snowflake ids (API.md "Snowflakes"): 42-bit ms since the epoch | 10-bit worker | 12-bit sequence."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from communities.domain import snowflake
from communities.domain.snowflake import (
    EPOCH_MS,
    MAX_SEQUENCE,
    MAX_TIMESTAMP,
    MAX_WORKER,
    SnowflakeGenerator,
    SnowflakeParts,
    decode,
    encode,
)

# The epoch documented in snowflake.py: 2026-01-01T00:00:00Z.
EPOCH_DATETIME = datetime(2026, 1, 1, tzinfo=UTC)
T0 = EPOCH_MS + 5_000_000  # some wall-clock millisecond after the epoch (Unix ms)


class ScriptedClock:
    """Returns the scripted Unix-ms values one per call, then repeats the last one forever.

    Counts calls and raises once `max_calls` is exceeded, so a generator that spins forever fails the test instead
    of hanging it.
    """

    def __init__(self, values: list[int], max_calls: int = 100_000) -> None:
        self.values = list(values)
        self.calls = 0
        self.max_calls = max_calls

    def __call__(self) -> int:
        self.calls += 1
        if self.calls > self.max_calls:
            raise RuntimeError(f"generator polled the clock {self.calls} times without producing an id (spinning)")
        index = min(self.calls - 1, len(self.values) - 1)
        return self.values[index]


class SettableClock:
    """A clock that stays where it is put; `time.sleep` in the generator module can be patched to advance it."""

    def __init__(self, now: int, max_calls: int = 100_000) -> None:
        self.now = now
        self.calls = 0
        self.max_calls = max_calls

    def __call__(self) -> int:
        self.calls += 1
        if self.calls > self.max_calls:
            raise RuntimeError(f"generator polled the clock {self.calls} times without producing an id (spinning)")
        return self.now


@pytest.fixture
def no_sleep(monkeypatch):
    """Make the generator's waiting loop cheap (a spinning generator then hits the clock's call limit fast)."""
    monkeypatch.setattr(snowflake.time, "sleep", lambda _seconds: None)


def assert_strictly_increasing(ids: list[int]) -> None:
    for i, (a, b) in enumerate(itertools.pairwise(ids)):
        assert a < b, f"id #{i + 1} ({b}) is not greater than id #{i} ({a})"


# --- layout and decoding ---------------------------------------------------------------------------------------


def test_epoch_is_the_documented_one():
    assert EPOCH_MS == int(EPOCH_DATETIME.timestamp() * 1000) == 1_767_225_600_000


def test_bit_layout_constants():
    assert MAX_TIMESTAMP == (1 << 42) - 1
    assert MAX_WORKER == 1023
    assert MAX_SEQUENCE == 4095


def test_encode_bit_layout():
    assert encode(0, 0, 0) == 0
    assert encode(0, 0, 1) == 1
    assert encode(0, 1, 0) == 1 << 12
    assert encode(1, 0, 0) == 1 << 22
    assert encode(1, 1, 1) == (1 << 22) | (1 << 12) | 1
    assert encode(MAX_TIMESTAMP, MAX_WORKER, MAX_SEQUENCE) == (1 << 64) - 1


def test_decode_fields_of_a_known_id():
    parts = decode((123_456 << 22) | (789 << 12) | 1011)
    assert parts == SnowflakeParts(timestamp_ms=123_456, worker=789, sequence=1011)
    assert parts.created_at == datetime(2026, 1, 1, 0, 2, 3, 456_000, tzinfo=UTC)


def test_generator_id_decodes_to_clock_worker_and_sequence():
    clock = SettableClock(EPOCH_MS + 123_456)
    gen = SnowflakeGenerator(worker=7, clock=clock)
    first, second, third = gen.next_id(), gen.next_id(), gen.next_id()
    assert [decode(x) for x in (first, second, third)] == [
        SnowflakeParts(123_456, 7, 0),
        SnowflakeParts(123_456, 7, 1),
        SnowflakeParts(123_456, 7, 2),
    ]
    assert decode(first).created_at == datetime(2026, 1, 1, 0, 2, 3, 456_000, tzinfo=UTC)
    clock.now += 1
    assert decode(gen.next_id()) == SnowflakeParts(123_457, 7, 0), "the sequence must restart every millisecond"


def test_created_at_of_a_real_id_is_now():
    before = datetime.now(UTC)
    created = decode(SnowflakeGenerator(worker=1).next_id()).created_at
    after = datetime.now(UTC)
    assert created.tzinfo is not None
    assert before - timedelta(milliseconds=2) <= created <= after + timedelta(milliseconds=2)


@given(
    timestamp=st.integers(0, MAX_TIMESTAMP),
    worker=st.integers(0, MAX_WORKER),
    sequence=st.integers(0, MAX_SEQUENCE),
)
def test_encode_decode_round_trip(timestamp, worker, sequence):
    value = encode(timestamp, worker, sequence)
    assert 0 <= value < 1 << 64
    assert decode(value) == SnowflakeParts(timestamp, worker, sequence)
    assert decode(value).created_at == EPOCH_DATETIME + timedelta(milliseconds=timestamp)


@given(st.integers(0, (1 << 64) - 1))
def test_decode_encode_round_trip(value):
    parts = decode(value)
    assert encode(parts.timestamp_ms, parts.worker, parts.sequence) == value


@given(
    a=st.tuples(st.integers(0, MAX_TIMESTAMP), st.integers(0, MAX_WORKER), st.integers(0, MAX_SEQUENCE)),
    b=st.tuples(st.integers(0, MAX_TIMESTAMP), st.integers(0, MAX_WORKER), st.integers(0, MAX_SEQUENCE)),
)
def test_id_order_is_time_then_worker_then_sequence(a, b):
    assert (encode(*a) < encode(*b)) == (a < b)


@pytest.mark.parametrize(
    ("timestamp", "worker", "sequence"),
    [(-1, 0, 0), (MAX_TIMESTAMP + 1, 0, 0), (0, -1, 0), (0, 1024, 0), (0, 0, -1), (0, 0, 4096)],
)
def test_encode_rejects_out_of_range_fields(timestamp, worker, sequence):
    with pytest.raises(ValueError):
        encode(timestamp, worker, sequence)


# --- worker id ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("worker", [-1, 1024, 1 << 20, -1024])
def test_worker_id_out_of_range_is_rejected(worker):
    with pytest.raises(ValueError):
        SnowflakeGenerator(worker=worker)


@pytest.mark.parametrize("worker", [0, 1, 512, 1023])
def test_worker_id_in_range_is_encoded(worker):
    gen = SnowflakeGenerator(worker=worker, clock=SettableClock(T0))
    ids = [gen.next_id() for _ in range(3)]
    assert {decode(x).worker for x in ids} == {worker}


# --- monotonicity -------------------------------------------------------------------------------------------------


def test_burst_of_100k_ids_is_strictly_increasing():
    gen = SnowflakeGenerator(worker=3)
    ids = [gen.next_id() for _ in range(100_000)]
    assert_strictly_increasing(ids)
    assert len(set(ids)) == 100_000
    assert {decode(x).worker for x in ids} == {3}
    assert max(decode(x).sequence for x in ids) <= MAX_SEQUENCE


def test_sequence_overflow_moves_to_next_millisecond(monkeypatch):
    """4096 ids fit one millisecond; the 4097th waits for the next one (sleeping advances the fake clock)."""
    clock = SettableClock(T0)

    def fake_sleep(_seconds):
        clock.now += 1

    monkeypatch.setattr(snowflake.time, "sleep", fake_sleep)
    gen = SnowflakeGenerator(worker=MAX_WORKER - 1, clock=clock)
    ids = [gen.next_id() for _ in range(4097)]
    assert_strictly_increasing(ids)
    parts = [decode(x) for x in ids]
    t = T0 - EPOCH_MS
    assert parts[:4096] == [SnowflakeParts(t, MAX_WORKER - 1, s) for s in range(4096)]
    assert parts[4096] == SnowflakeParts(t + 1, MAX_WORKER - 1, 0)


class SlowClock:
    """Advances one millisecond every 4097 reads: each millisecond is read once more than it has sequence numbers,
    so every millisecond overflows and the generator has to wait for the next one."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return T0 + (self.calls - 1) // 4097


def test_sequence_overflow_never_spills_into_worker_bits():
    gen = SnowflakeGenerator(worker=0, clock=SlowClock())
    ids = [gen.next_id() for _ in range(3 * 4096)]
    assert_strictly_increasing(ids)
    parts = [decode(x) for x in ids]
    assert {p.worker for p in parts} == {0}, "the sequence overflowed into the worker bits"
    assert [p.sequence for p in parts[:4096]] == list(range(4096))
    assert {p.timestamp_ms for p in parts[:4096]} == {T0 - EPOCH_MS}
    assert parts[4096] == SnowflakeParts(T0 + 1 - EPOCH_MS, 0, 0)
    assert max(p.timestamp_ms for p in parts) == T0 + 2 - EPOCH_MS


def test_sequence_overflow_with_a_clock_frozen_forever_still_produces_ids(no_sleep):
    """A clock stuck on one millisecond must not make the generator hang or repeat/overflow ids."""
    gen = SnowflakeGenerator(worker=5, clock=SettableClock(T0))
    ids = [gen.next_id() for _ in range(3 * 4096 + 10)]
    assert_strictly_increasing(ids)
    parts = [decode(x) for x in ids]
    assert {p.worker for p in parts} == {5}
    assert all(p.timestamp_ms >= T0 - EPOCH_MS for p in parts)


def test_wall_clock_stepping_backwards_keeps_ids_increasing():
    values = [T0, T0, T0 + 5, T0 + 2, T0 + 2, T0 + 3, T0 - 1000, T0 + 4, T0 + 6, T0 + 6, T0 + 1]
    gen = SnowflakeGenerator(worker=9, clock=ScriptedClock(values))
    ids = [gen.next_id() for _ in values]
    assert_strictly_increasing(ids)
    timestamps = [decode(x).timestamp_ms for x in ids]
    assert timestamps == sorted(timestamps), "an id went back in time with the wall clock"
    # While the clock is behind, the generator stays on the last millisecond it used.
    assert timestamps[3:8] == [T0 + 5 - EPOCH_MS] * 5
    assert timestamps[8] == T0 + 6 - EPOCH_MS


def test_wall_clock_stuck_behind_through_sequence_overflow(no_sleep):
    """Clock jumps back 10 s and stays there while more than 4096 ids are needed: no reuse, no hang."""
    clock = ScriptedClock([T0 + 10_000, T0])
    gen = SnowflakeGenerator(worker=2, clock=clock)
    ids = [gen.next_id() for _ in range(2 * 4096 + 5)]
    assert_strictly_increasing(ids)
    parts = [decode(x) for x in ids]
    assert {p.worker for p in parts} == {2}
    assert min(p.timestamp_ms for p in parts) == T0 + 10_000 - EPOCH_MS


# --- threads ------------------------------------------------------------------------------------------------------


def test_concurrent_threads_get_unique_increasing_ids():
    gen = SnowflakeGenerator(worker=17)
    per_thread = 5_000
    results: list[list[int]] = [[] for _ in range(8)]
    barrier = threading.Barrier(len(results))

    def work(out: list[int]) -> None:
        barrier.wait()
        for _ in range(per_thread):
            out.append(gen.next_id())

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [x for out in results for x in out]
    assert len(everything) == 8 * per_thread
    assert len(set(everything)) == len(everything), "two threads got the same id"
    for out in results:
        assert_strictly_increasing(out)
    assert {decode(x).worker for x in everything} == {17}
