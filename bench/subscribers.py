"""Client processes that hold many open Updates.Subscribe streams (grpc.aio, one event loop per process).

Used by bench/updates.py. Each process opens its share of the streams (one `authorization` per stream), waits for
every stream's `ready`, then timestamps every update the moment it reaches Python (time.monotonic(), which is
CLOCK_MONOTONIC on Linux and so shared with the bench process). Fan-out events are EditCommunity renames to
`NAME_PREFIX + number`: a process counts, per number, the streams that received it, and answers `wait` when all its
streams have. Answers stay bytes until they are received (no deserializer in grpc), then one FromString.

By default every stream has a connection of its own (`per_connection` 1: a channel with a local subchannel pool,
so grpc does not share one connection between channels), as a thousand subscribers would; `per_connection` N
multiplexes N streams on one HTTP/2 connection.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import grpc
import psutil

from bench.load import cpu_seconds, stop_processes

SUBSCRIBE = "/communities.v1.Updates/Subscribe"
NAME_PREFIX = "fanout "
READY_TIMEOUT_S = 30.0


@dataclass
class Receipts:
    """What one process received. `times[number]`: the monotonic receipt time of event `number`, one per stream."""

    streams: int = 0
    times: dict[int, list[float]] = field(default_factory=dict)
    other: Counter[str] = field(default_factory=Counter)  # updates of other kinds, by kind
    # Per stream of this process (in the order opened): the numbers of the fan-out events it received, in order.
    per_stream: list[list[int]] = field(default_factory=list)
    # Streams that the server ended (not closed by us), by "CODE: details".
    errors: Counter[str] = field(default_factory=Counter)


# -------------------------------------------------------------------------------------------- client process


def client_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench process handles Ctrl-C and stops us
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(_Client(conn).run())
    else:
        uvloop.run(_Client(conn).run())


class _Client:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.channels: list[grpc.aio.Channel] = []
        self.tasks: list[asyncio.Task] = []
        self.calls: list = []
        self.closing = False
        self.ready = 0
        self.expected_ready = 0
        self.alive = 0  # streams opened and not ended
        self.all_ready = asyncio.Event()
        self.receipts = Receipts()
        self.counts: Counter[int] = Counter()
        self.complete: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    async def run(self) -> None:
        from communities.v1 import updates_pb2

        self.update_type = updates_pb2.Update
        self.conn.send(os.getpid())
        while (command := await asyncio.to_thread(self.conn.recv)) is not None:
            name, *args = command
            self.conn.send(await getattr(self, "do_" + name)(*args))
        await self.do_close()

    async def do_open(self, address: str, authorizations: list[str], per_connection: int) -> dict:
        """Open one more stream per authorization (on top of those open); answer when all open streams are ready
        (or READY_TIMEOUT_S passed)."""
        started = time.monotonic()
        self.receipts.streams += len(authorizations)
        self.expected_ready += len(authorizations)
        self.alive += len(authorizations)
        self.all_ready = asyncio.Event()
        self.closing = False
        options = [("grpc.use_local_subchannel_pool", 1)]
        for index, authorization in enumerate(authorizations):
            if index % per_connection == 0:
                channel = grpc.aio.insecure_channel(address, options=options)
                self.channels.append(channel)
            call = channel.unary_stream(SUBSCRIBE)(b"", metadata=(("authorization", authorization),))
            self.calls.append(call)
            self.tasks.append(asyncio.create_task(self._follow(len(self.receipts.per_stream), call)))
            self.receipts.per_stream.append([])
        if self.ready >= self.expected_ready:
            self.all_ready.set()
        try:
            await asyncio.wait_for(self.all_ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            pass
        return {
            "ready": self.ready,
            "streams": self.expected_ready,
            "seconds": time.monotonic() - started,
            "errors": dict(self.receipts.errors),
        }

    async def _follow(self, index: int, call) -> None:
        update_type, counts = self.update_type, self.counts
        prefix_length = len(NAME_PREFIX)
        got_ready = False
        try:
            async for raw in call:
                received = time.monotonic()
                receipts = self.receipts  # (replaced by collect)
                update = update_type.FromString(raw)
                kind = update.WhichOneof("event")
                if kind == "community_updated" and update.community_updated.name.startswith(NAME_PREFIX):
                    number = int(update.community_updated.name[prefix_length:])
                    receipts.times.setdefault(number, []).append(received)
                    receipts.per_stream[index].append(number)
                    counts[number] += 1
                    if counts[number] >= self.alive:
                        self.complete[number].set()
                elif kind == "ready":
                    got_ready = True
                    self.ready += 1
                    if self.ready >= self.expected_ready:
                        self.all_ready.set()
                else:
                    receipts.other[kind] += 1
            ended = "ended OK"
        except grpc.aio.AioRpcError as error:
            ended = f"{error.code().name}: {error.details()}"
        except asyncio.CancelledError:
            return
        if self.closing:
            return
        # A stream the server ended: count it, and stop waiting for it.
        self.receipts.errors[ended] += 1
        self.alive -= 1
        if not got_ready:
            self.expected_ready -= 1
            if self.ready >= self.expected_ready:
                self.all_ready.set()
        for number, complete in self.complete.items():
            if self.counts[number] >= self.alive:
                complete.set()

    async def do_wait(self, number: int, within_s: float) -> int:
        """Wait until every stream of this process still open received event `number`; how many did."""
        if self.counts[number] >= self.alive:
            return self.counts[number]
        try:
            await asyncio.wait_for(self.complete[number].wait(), within_s)
        except TimeoutError:
            pass
        return self.counts[number]

    async def do_collect(self) -> Receipts:
        receipts = self.receipts
        self.receipts = Receipts(streams=receipts.streams, per_stream=[[] for _ in receipts.per_stream])
        self.counts.clear()
        self.complete.clear()
        return receipts

    async def do_close(self) -> int:
        self.closing = True
        for call in self.calls:
            call.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            await channel.close()
        closed = len(self.calls)
        self.calls.clear()
        self.tasks.clear()
        self.channels.clear()
        self.ready = 0
        self.expected_ready = 0
        self.alive = 0
        self.all_ready = asyncio.Event()
        self.receipts = Receipts()
        self.counts.clear()
        self.complete.clear()
        return closed


# ---------------------------------------------------------------------------------------------- bench side


class SubscriberPool:
    """The subscriber processes, from the bench process's side. Use as an async context manager."""

    def __init__(self, count: int):
        import multiprocessing

        self.count = count
        self._context = multiprocessing.get_context("spawn")  # never fork a process that has used grpc
        self._processes: list = []
        self._conns: list[Connection] = []
        self._ps: list[psutil.Process] = []

    async def __aenter__(self) -> SubscriberPool:
        try:
            for index in range(self.count):
                mine, theirs = self._context.Pipe()
                process = self._context.Process(
                    target=client_main, args=(theirs,), name=f"bench-subscriber-{index}", daemon=True
                )
                process.start()
                theirs.close()
                self._processes.append(process)
                self._conns.append(mine)
            for conn in self._conns:
                self._ps.append(psutil.Process(await self._receive(conn, READY_TIMEOUT_S + 30)))
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _receive(self, conn: Connection, within_s: float):
        if not await asyncio.to_thread(conn.poll, within_s):
            raise TimeoutError(f"no answer from a subscriber process within {within_s:.0f}s")
        return conn.recv()

    async def _all(self, commands: list[tuple], within_s: float) -> list:
        for conn, command in zip(self._conns, commands, strict=True):
            conn.send(command)
        return list(await asyncio.gather(*(self._receive(conn, within_s) for conn in self._conns)))

    async def open(self, address: str, authorizations: list[str], per_connection: int = 1) -> dict:
        """Open one more stream per authorization, spread over the processes; wait until all open streams are
        ready. Answers the open and ready streams over all processes (not only the new ones)."""
        shares = [authorizations[index :: self.count] for index in range(self.count)]
        answers = await self._all([("open", address, share, per_connection) for share in shares], READY_TIMEOUT_S + 30)
        errors: Counter[str] = Counter()
        for answer in answers:
            errors.update(answer["errors"])
        return {
            "ready": sum(answer["ready"] for answer in answers),
            "streams": sum(answer["streams"] for answer in answers),
            "seconds": max(answer["seconds"] for answer in answers),
            "errors": dict(errors),
        }

    async def wait(self, number: int, within_s: float) -> int:
        """Wait until every stream received event `number` (or `within_s`); how many streams did."""
        return sum(await self._all([("wait", number, within_s)] * self.count, within_s + 30))

    async def collect(self) -> list[Receipts]:
        return await self._all([("collect",)] * self.count, 60)

    async def close_streams(self) -> int:
        return sum(await self._all([("close",)] * self.count, 60))

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._ps)

    async def close(self) -> None:
        await stop_processes(self._conns, self._processes, self._ps, join_s=10)
