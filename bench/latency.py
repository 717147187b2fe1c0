"""Unloaded latency: one call in flight, GetCommunities against the server's own health check.

Run by `python -m bench.run` on each database after the throughput runs, on the same server and with the
GetCommunities scenario's reader. The bench process sends the calls itself, one at a time, in alternating blocks
of the two methods (so drift on the shared machine hits both alike), pre-serialized requests and raw answers.
The goal is on the difference: GetCommunities' p50 and p99 at most GAP_GOAL_MS above the health check's.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from bench.report import percentile
from bench.scenarios import CEILING, SCENARIOS, Workload

GAP_GOAL_MS = 0.3
BLOCK = 250  # calls of one method before switching to the other


async def measure(address: str, workloads: dict[str, Workload], calls: int, warmup: int) -> dict[str, Any]:
    """`calls` measured calls of each method after `warmup` unmeasured ones; p50/p99/mean in ms and the gaps."""
    names = (CEILING, "get_communities")
    timings: dict[str, list[float]] = {name: [] for name in names}
    async with grpc.aio.insecure_channel(address) as channel:
        senders = {
            name: (
                channel.unary_unary(SCENARIOS[name].method),
                SCENARIOS[name].request(workloads[name], 0, 0).SerializeToString(),
                workloads[name].metadata(0),
            )
            for name in names
        }
        for name in names:
            call, request, metadata = senders[name]
            for _ in range(warmup):
                await call(request, metadata=metadata, timeout=10)
        done = 0
        while done < calls:
            block = min(BLOCK, calls - done)
            for name in names:
                call, request, metadata = senders[name]
                into = timings[name]
                for _ in range(block):
                    started = time.perf_counter()
                    await call(request, metadata=metadata, timeout=10)
                    into.append(time.perf_counter() - started)
            done += block
    result: dict[str, Any] = {"calls": calls, "warmup": warmup, "gap_goal_ms": GAP_GOAL_MS}
    for name in names:
        ordered = sorted(timings[name])
        result[name] = {
            "p50_ms": percentile(ordered, 0.50) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "mean_ms": sum(ordered) / len(ordered) * 1000,
        }
    for figure in ("p50_ms", "p99_ms"):
        gap = result["get_communities"][figure] - result[CEILING][figure]
        result[f"{figure}_gap"] = gap
        result[f"{figure}_met"] = gap <= GAP_GOAL_MS
    return result
