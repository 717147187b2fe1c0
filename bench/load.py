"""The load generator: client processes (multiprocessing, spawn) each running grpc.aio calls from many slots.

Every slot keeps exactly one call in flight: send, wait for the answer, send the next. All processes share one
clock (time.monotonic is CLOCK_MONOTONIC on Linux), so the bench process hands each job absolute times: start,
begin of the measured window (after the warm-up), end of the window. A call counts when it finishes inside the
window. Requests go out pre-serialized and answers stay bytes, to keep client CPU (which shares the machine
with the server) low. A status code the scenario lists as `expected` (e.g. NOT_FOUND for a used-up invite) counts
as an answered call, apart from OK, not as an error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import grpc
import psutil

from bench.scenarios import SCENARIOS, Call, Workload

READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Job:
    scenario: str
    workload: Workload
    slots: tuple[int, ...]
    start_at: float  # time.monotonic()
    measure_from: float
    measure_until: float
    call_timeout_s: float


@dataclass
class ClientResult:
    # seconds, calls answered in the window with OK or an expected status
    latencies: array = field(default_factory=lambda: array("d"))
    expected: Counter[str] = field(default_factory=Counter)  # expected status code name -> calls in the window
    errors: Counter[str] = field(default_factory=Counter)  # status code name -> calls that failed in the window
    issued: int = 0  # calls started, warm-up included
    answered: Counter[str] = field(default_factory=Counter)  # "OK" or status code name -> calls, warm-up included


# -------------------------------------------------------------------------------------------- client process


def client_main(address: str, conn: Connection) -> None:
    """Entry point of a client process: connect, report the pid, then run jobs until told to stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench process handles Ctrl-C and stops us
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(_client(address, conn))
    else:
        uvloop.run(_client(address, conn))


async def _client(address: str, conn: Connection) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), READY_TIMEOUT_S)
        conn.send(os.getpid())
        while (job := await asyncio.to_thread(conn.recv)) is not None:
            conn.send(await run_job(channel, job))


async def run_job(channel: grpc.aio.Channel, job: Job) -> ClientResult:
    scenario = SCENARIOS[job.scenario]
    call = channel.unary_unary(scenario.method)  # no (de)serializers: bytes in, bytes out
    result = ClientResult()
    window_start, window_end = job.measure_from, job.measure_until

    expected, observe = scenario.expected, scenario.observe

    async def slot_loop(slot: int) -> None:
        slot_metadata = job.workload.metadata(slot)
        seq = 0
        while True:
            made = scenario.request(job.workload, slot, seq)
            if isinstance(made, Call):
                request, metadata = made.request.SerializeToString(), made.metadata
            else:
                request, metadata = made.SerializeToString(), slot_metadata
            seq += 1
            started = time.monotonic()
            if started >= window_end:
                return
            result.issued += 1
            code: str | None = None
            try:
                await call(request, metadata=metadata, timeout=job.call_timeout_s)
            except grpc.aio.AioRpcError as error:
                code = error.code().name
            finished = time.monotonic()
            result.answered[code or "OK"] += 1
            if observe is not None:
                observe(job.workload, slot, code)
            if window_start <= finished < window_end:
                if code is None or code in expected:
                    result.latencies.append(finished - started)
                    if code is not None:
                        result.expected[code] += 1
                else:
                    result.errors[code] += 1

    await asyncio.sleep(max(0.0, job.start_at - time.monotonic()))
    await asyncio.gather(*(slot_loop(slot) for slot in job.slots))
    return result


# ---------------------------------------------------------------------------------------------- bench side


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of client processes so far."""
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


async def stop_processes(conns: list, processes: list, ps: list, *, join_s: float) -> None:
    """Tell each client process to end (None on its pipe), give it `join_s`, then terminate, then kill; forget them."""
    for conn in conns:
        try:
            conn.send(None)
        except OSError:
            pass
    for process in processes:
        await asyncio.to_thread(process.join, join_s)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 5)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5)
    for conn in conns:
        conn.close()
    processes.clear()
    conns.clear()
    ps.clear()


class ClientPool:
    """The client processes, from the bench process's side. Use as an async context manager."""

    def __init__(self, address: str, count: int):
        import multiprocessing

        self.address = address
        self.count = count
        self._context = multiprocessing.get_context("spawn")  # never fork a process that has used grpc
        self._processes: list = []
        self._conns: list[Connection] = []
        self._ps: list[psutil.Process] = []

    async def __aenter__(self) -> ClientPool:
        try:
            for index in range(self.count):
                mine, theirs = self._context.Pipe()
                process = self._context.Process(
                    target=client_main, args=(self.address, theirs), name=f"bench-client-{index}", daemon=True
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
            raise TimeoutError(f"no answer from a client process within {within_s:.0f}s")
        return conn.recv()

    def slots(self, in_flight: int) -> list[tuple[int, ...]]:
        """In-flight slots 0..in_flight-1 spread round-robin over the processes."""
        return [tuple(range(index, in_flight, self.count)) for index in range(self.count)]

    def submit(self, jobs: list[Job]) -> None:
        for conn, job in zip(self._conns, jobs, strict=True):
            conn.send(job)

    async def collect(self, within_s: float) -> list[ClientResult]:
        return [await self._receive(conn, within_s) for conn in self._conns]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._ps)

    async def close(self) -> None:
        await stop_processes(self._conns, self._processes, self._ps, join_s=5)
