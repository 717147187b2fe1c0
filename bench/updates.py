"""Benchmarks of the live update stream (communities.v1.Updates/Subscribe): `python -m bench.updates` from the
project root (see bench/README.md, "Updates").

Parts (`--parts`, all by default, in this order):
- `fanout`: SUBSCRIBERS members of one community (joined with UseInvite) hold a Subscribe stream each on one
  server (SQLite); the owner renames the community EVENTS times (EditCommunity, one at a time); for every stream,
  the time from sending EditCommunity to the update's receipt in the subscriber process. Once per
  `--per-connection` value (a connection per stream, then 100 streams per connection). Goal: p99 < 100 ms.
- `replicas`: the same on PostgreSQL across two servers of one database (worker ids 1 and 2): the streams on
  server A, EditCommunity through server B. Goal: p99 < 250 ms.
- `floor`: the same fan-out against bench/stream_floor.py, a grpc.aio server that only broadcasts one
  pre-serialized message to every stream: what grpc.aio and the kernel alone cost per delivery on this machine.
- `memory`: RSS of a fresh server (SQLite) with 0, IDLE_STREAMS/2 and IDLE_STREAMS idle streams: KB per stream,
  with a connection per stream and with the streams multiplexed, for the server and for the floor; also the
  idle CPU. Goal: < 20 KB per stream.
- `publish`: CreateCommunity and UseInvite (bench/scenarios.py) against the server before the Updates work
  (`--before`, default 3ed4690, exported with git archive) and the working tree's (and `--also` others), all
  running, the order changing run by run, each as calls per server CPU-second over its own health check in the
  same run. Goal: at most 10% lower.

Every server runs from a snapshot of the working tree's src/ and generated/ taken when the bench starts (other
people may edit the tree meanwhile). Results: bench/out/updates-STAMP.{json,md}; the markdown is also printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import psutil

from bench import profile, report
from bench.load import ClientPool
from bench.report import percentile
from bench.run import START_DELAY_S, export_revision, log, measure
from bench.scenarios import CEILING, SCENARIOS, SetupContext, Workload
from bench.server import PROJECT_DIR, BenchServer, Principal, ServerFailed
from bench.subscribers import NAME_PREFIX, SubscriberPool
from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    updates_pb2,
    updates_pb2_grpc,
)

BENCH_DIR = Path(__file__).resolve().parent
PARTS = ("fanout", "replicas", "floor", "memory", "publish")
PUBLISH_SCENARIOS = ("create_community", "use_invite_unlimited")
# Goals.
FANOUT_P99_MS = 100.0  # SQLite, one server
REPLICAS_P99_MS = 250.0  # PostgreSQL, subscribers on one server, the write through another
KB_PER_STREAM = 20.0
PUBLISH_MAX_DROP = 0.10  # calls per server CPU-second (as a share of the ceiling) at most 10% lower than before
JOIN_CONCURRENCY = 32
LATE_S = 15.0  # after the last event, how long to wait for streams that have not received it yet
KB = 1024
MB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.updates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)} (all)")
    parser.add_argument("--subscribers", type=int, default=1000, help="streams in fanout and replicas (1000)")
    parser.add_argument("--events", type=int, default=20, help="measured events in fanout and replicas (20)")
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between one event's last receipt and the next")
    parser.add_argument(
        "--per-connection",
        default="1,100",
        help="fanout, replicas, floor: streams per client connection, comma-separated: the fan-out is measured "
        "once per value, with the same members (1,100: a connection per subscriber, then 100 streams sharing one)",
    )
    parser.add_argument("--subscriber-processes", type=int, default=2, help="client processes holding streams (2)")
    parser.add_argument("--idle-streams", type=int, default=2000, help="streams open at the end of memory (2000)")
    parser.add_argument(
        "--multiplexed", type=int, default=100, help="streams per connection in memory's second measurement (100)"
    )
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle CPU windows in fanout and memory (3)")
    parser.add_argument(
        "--source",
        type=Path,
        help="run the servers under test from this tree (its src/ and generated/, e.g. a copy with a change to "
        "try) instead of a snapshot of the working tree",
    )
    parser.add_argument("--before", default="3ed4690", help="the revision before the Updates work (3ed4690)")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=REVISION|DIR",
        help="publish: one more server to measure between before and after (repeatable): a git revision (exported "
        "with git archive) or a source tree (its src/ and generated/), e.g. updates=a06fe39",
    )
    parser.add_argument("--runs", type=int, default=3, help="publish: runs; figures are medians (3)")
    parser.add_argument("--duration", type=float, default=6.0, help="publish: measured seconds per scenario (6)")
    parser.add_argument("--warmup", type=float, default=1.5, help="publish: unmeasured seconds before each (1.5)")
    parser.add_argument("--in-flight", type=int, default=64, help="publish: calls in flight (64)")
    parser.add_argument("--clients", type=int, default=2, help="publish: client processes per server (2)")
    parser.add_argument("--fresh-users", type=int, default=10_000, help="publish: people for UseInvite (10000)")
    parser.add_argument("--call-timeout", type=float, default=30.0, help="publish: deadline of each call (30)")
    parser.add_argument("--pause", type=float, default=0.5, help="publish: idle seconds between measurements")
    parser.add_argument(
        "--postgres",
        help="replicas: a PostgreSQL server URL whose user may CREATE DATABASE (default: "
        "COMMUNITIES_TEST_POSTGRES_URL, else a throwaway server started like the tests do)",
    )
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="fanout/replicas: after the measured events, this many seconds of more events (unreported) with "
        "py-spy (and perf, where installed) sampling the subscribed server; stacks and a summary go next to the JSON",
    )
    parser.add_argument("--native", action="store_true", help="with --profile: sample C/Cython frames too")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="where JSON and markdown go (bench/out)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the databases and server logs")
    args = parser.parse_args(argv)
    args.part_names = [name.strip() for name in args.parts.split(",") if name.strip()]
    unknown = [name for name in args.part_names if name not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    try:
        args.per_connection_list = [int(value) for value in args.per_connection.split(",") if value.strip()]
    except ValueError:
        parser.error("--per-connection expects comma-separated integers")
    if not args.per_connection_list or min(args.per_connection_list) < 1:
        parser.error("--per-connection needs at least one value, each >= 1")
    if args.subscribers < 1 or args.events < 1 or args.idle_streams < 2:
        parser.error("need --subscribers >= 1, --events >= 1, --idle-streams >= 2")
    if args.fresh_users < args.in_flight:
        parser.error("--fresh-users must be at least --in-flight")
    args.also_sides = []
    for item in args.also:
        name, equals, where = item.partition("=")
        if not equals or not name or not where or name in ("before", "after") or not name.isidentifier():
            parser.error(f"--also expects NAME=REVISION or NAME=DIR with a new NAME, got {item!r}")
        args.also_sides.append((name, where))
    return args


# ------------------------------------------------------------------------------------------------ helpers


def snapshot_tree(into: Path) -> Path:
    """The working tree's src/ and generated/ as they are now: the servers run from this copy."""
    for part in ("src", "generated"):
        shutil.copytree(PROJECT_DIR / part, into / part, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def tree_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(PROJECT_DIR), *args], capture_output=True, text=True).stdout.strip()

    status = git("status", "--porcelain", "--", "src", "generated", "protos").splitlines()
    return {"head": git("rev-parse", "--short", "HEAD"), "changed_files": len(status)}


def stats_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 0.50) * 1000,
        "p90_ms": percentile(ordered, 0.90) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else float("nan"),
    }


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


def rss(server: BenchServer) -> int:
    return server.rss_bytes()


async def rss_settled(server: BenchServer, samples: int = 5, every_s: float = 0.5) -> int:
    """The median of a few RSS samples (the server is idle, the figure barely moves)."""
    values = []
    for _ in range(samples):
        values.append(rss(server))
        await asyncio.sleep(every_s)
    return int(statistics.median(values))


def connections(server: BenchServer) -> int:
    """Established TCP connections of the server process on its gRPC port."""
    try:
        found = psutil.Process(server.pid).net_connections(kind="tcp")
    except psutil.Error:
        return -1
    return sum(1 for c in found if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == server.port)


async def idle_cpu(servers: list[BenchServer], seconds: float) -> list[float]:
    """CPU-seconds per second of each server over an idle window."""
    before = [server.cpu_seconds() for server in servers]
    started = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    return [(server.cpu_seconds() - cpu) / wall for server, cpu in zip(servers, before, strict=True)]


async def community_with_members(
    server: BenchServer, channel: grpc.aio.Channel, count: int, workdir: Path, label: str
) -> tuple[Principal, int, list[str]]:
    """A bot's community and `count` new people who joined it with an unlimited invite (UseInvite calls, as a
    client would); returns (owner, community id, the people's `authorization` values)."""
    owner = await server.create_principal(f"{label} owner", bot=True)
    people = await server.create_people(count, workdir / f"{label.replace(' ', '-')}-people.txt", prefix=label)
    community_id = (
        await communities_pb2_grpc.CommunitiesStub(channel).CreateCommunity(
            communities_pb2.CreateCommunity(name=f"{label}"), metadata=owner.metadata, timeout=10
        )
    ).id
    general = (
        await channels_pb2_grpc.ChannelsStub(channel).GetChannels(
            channels_pb2.GetChannels(community_id=community_id), metadata=owner.metadata, timeout=10
        )
    ).channels[0]
    invites = invites_pb2_grpc.InvitesStub(channel)
    code = (
        await invites.CreateInvite(
            invites_pb2.CreateInvite(channel_id=general.id, max_uses=0, max_age=0, unique=True),
            metadata=owner.metadata,
            timeout=10,
        )
    ).code
    limit = asyncio.Semaphore(JOIN_CONCURRENCY)

    async def join(authorization: str) -> None:
        async with limit:
            joined = await invites.UseInvite(
                invites_pb2.UseInvite(code=code), metadata=(("authorization", authorization),), timeout=30
            )
        if joined.id != community_id:
            raise ServerFailed(f"UseInvite joined {joined.id}, expected {community_id}")

    await asyncio.gather(*(join(person) for person in people))
    return owner, community_id, people


# ------------------------------------------------------------------------------------------------ fan-out


async def fan_out(
    args: argparse.Namespace,
    pool: SubscriberPool,
    subscribed: BenchServer,
    writer: BenchServer,
    writer_channel: grpc.aio.Channel,
    owner: Principal,
    community_id: int,
    streams: int,
) -> dict[str, Any]:
    """One warm-up event, then args.events measured ones, each sent when the previous one reached every stream
    (plus args.gap). Latency of a receipt: its time minus the EditCommunity send time (and minus its answer)."""
    servers = [subscribed] if writer is subscribed else [subscribed, writer]
    stub = communities_pb2_grpc.CommunitiesStub(writer_channel)
    sent: dict[int, float] = {}
    answered: dict[int, float] = {}
    complete: dict[int, int] = {}
    within_s = 10.0

    async def event(number: int) -> None:
        sent[number] = time.monotonic()
        await stub.EditCommunity(
            communities_pb2.EditCommunity(community_id=community_id, name=f"{NAME_PREFIX}{number}"),
            metadata=owner.metadata,
            timeout=10,
        )
        answered[number] = time.monotonic()
        complete[number] = await pool.wait(number, within_s)
        await asyncio.sleep(args.gap)

    idle = await idle_cpu(servers, args.idle_seconds)
    await event(0)  # warm-up, not counted
    cpu0, clients0, wall0 = [s.cpu_seconds() for s in servers], pool.cpu_seconds(), time.monotonic()
    for number in range(1, args.events + 1):
        await event(number)
    cpu1, clients1, wall1 = [s.cpu_seconds() for s in servers], pool.cpu_seconds(), time.monotonic()
    late = 0
    if complete[args.events] < streams:  # give stragglers time, to tell late from lost
        late = await pool.wait(args.events, LATE_S) - complete[args.events]
    receipts = await pool.collect()
    if args.profile > 0:
        await profile_events(args, pool, subscribed, event, args.events + 1, streams)
    from_send, from_answer, first, spread = [], [], [], []
    for number in range(1, args.events + 1):
        times = sorted(t for r in receipts for t in r.times.get(number, ()))
        from_send += [t - sent[number] for t in times]
        from_answer += [t - answered[number] for t in times]
        if times:
            first.append(times[0] - sent[number])
            spread.append(times[-1] - times[0])
    missing = sum(streams - complete[number] for number in range(1, args.events + 1))
    # Streams that did not receive every event (warm-up included): lost (a later one came) or still missing at
    # the end (late past LATE_S, or lost at the end).
    expected = list(range(args.events + 1))
    lost = [sorted(set(expected) - set(got)) for r in receipts for got in r.per_stream if got != expected]
    window = wall1 - wall0
    busy = [(c1 - c0) - rate * window for c0, c1, rate in zip(cpu0, cpu1, idle, strict=True)]
    other: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in receipts:
        for kind, n in r.other.items():
            other[kind] = other.get(kind, 0) + n
        for code, n in r.errors.items():
            errors[code] = errors.get(code, 0) + n
    deliveries = args.events * streams
    return {
        "streams": streams,
        "events": args.events,
        "receipts": len(from_send),
        "missing": missing,
        "streams_not_receiving_all": len(lost),
        "events_not_received": lost[:20],  # per such stream (first 20 streams)
        "duplicates_or_disorder": sum(1 for r in receipts for got in r.per_stream if got != sorted(set(got))),
        "arrived_within_late_s": late,
        "from_send": stats_ms(from_send),
        "from_answer": stats_ms(from_answer),
        "first_receipt": stats_ms(first),
        "spread": stats_ms(spread),  # per event: last receipt minus first
        "edit_call": stats_ms([answered[n] - sent[n] for n in range(1, args.events + 1)]),
        "idle_cores": idle,  # per server, with the streams open
        "window_s": window,
        # Server CPU of the events above the idle rate, per event and per delivered update (subscribed server).
        "server_cpu_ms_per_event": [b / args.events * 1000 for b in busy],
        "server_cpu_us_per_delivery": busy[0] / deliveries * 1e6,
        "client_cpu_ms_per_event": (clients1 - clients0) / args.events * 1000,
        "other_updates": other,
        "stream_errors": errors,
    }


async def fanout_series(
    args: argparse.Namespace,
    part: str,
    subscribed: BenchServer,
    writer: BenchServer,
    writer_channel: grpc.aio.Channel,
    owner: Principal,
    community_id: int,
    people: list[str],
) -> list[dict[str, Any]]:
    """The fan-out once per --per-connection value: open the streams (every person one) on `subscribed`, let them
    settle, measure with EditCommunity through `writer`, close them."""
    series = []
    async with SubscriberPool(args.subscriber_processes) as pool:
        for per_connection in args.per_connection_list:
            opened = await pool.open(subscribed.address, people, per_connection)
            log(
                f"{part} ({per_connection}/connection): {opened['ready']}/{opened['streams']} streams ready in "
                f"{opened['seconds']:.1f} s"
            )
            if opened["ready"] != len(people):
                raise ServerFailed(f"only {opened['ready']} of {len(people)} streams became ready: {opened}")
            await settle(2.0)
            rss_open = rss(subscribed)
            args.current_part = f"{part}-{per_connection}"
            result = await fan_out(args, pool, subscribed, writer, writer_channel, owner, community_id, len(people))
            result.update(
                per_connection=per_connection,
                connections=connections(subscribed),
                open_seconds=opened["seconds"],
                rss_mb=rss_open / MB,
            )
            describe_fanout(f"{part} ({per_connection}/connection)", result)
            series.append(result)
            await pool.close_streams()
            await settle(1.0)
    return series


async def part_fanout(args: argparse.Namespace, workdir: Path, tree: Path) -> dict[str, Any]:
    run_dir = workdir / "fanout"
    run_dir.mkdir()
    server = BenchServer(f"sqlite:///{run_dir / 'fanout.db'}", run_dir, source=tree)
    try:
        log(f"fanout: starting the server on {server.address} (sqlite)")
        await server.start()
        async with grpc.aio.insecure_channel(server.address) as channel:
            started = time.monotonic()
            owner, community_id, people = await community_with_members(
                server, channel, args.subscribers, run_dir, "bench fanout"
            )
            log(f"fanout: {len(people)} members joined ({time.monotonic() - started:.1f} s)")
            series = await fanout_series(args, "fanout", server, server, channel, owner, community_id, people)
    finally:
        result_server = await stop(server)
    return {"series": series, "servers": [result_server]}


async def part_replicas(args: argparse.Namespace, workdir: Path, tree: Path, server_url: str) -> dict[str, Any]:
    from tests.support.postgres import create_database

    database = await create_database(server_url)
    a_dir, b_dir = workdir / "replica-a", workdir / "replica-b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = BenchServer(database, a_dir, source=tree, extra_env={"COMMUNITIES_WORKER_ID": "1"})
    b = BenchServer(database, b_dir, source=tree, extra_env={"COMMUNITIES_WORKER_ID": "2"})
    try:
        log(f"replicas: starting servers A {a.address} and B {b.address} on one PostgreSQL database")
        await a.start()
        await b.start()
        async with grpc.aio.insecure_channel(a.address) as on_a, grpc.aio.insecure_channel(b.address) as on_b:
            started = time.monotonic()
            owner, community_id, people = await community_with_members(
                a, on_a, args.subscribers, a_dir, "bench replicas"
            )
            log(f"replicas: {len(people)} members joined ({time.monotonic() - started:.1f} s); streams on A")
            series = await fanout_series(args, "replicas", a, b, on_b, owner, community_id, people)
    finally:
        servers = [await stop(a), await stop(b)]
    return {"series": series, "servers": servers}


async def profile_events(
    args: argparse.Namespace, pool: SubscriberPool, server: BenchServer, event, first: int, streams: int
) -> None:
    """Events, one after the other as in the measurement, for args.profile seconds with py-spy (and perf) on the
    subscribed server; writes ...-PART.stacks (collapsed stacks), .txt (summary) next to the JSON."""
    stacks = args.profile_stem.with_name(f"{args.profile_stem.name}-{args.current_part}.stacks")
    sampler = await profile.record(server.pid, args.profile, stacks, native=args.native)
    perf = await profile.record_perf(server.pid, args.profile, stacks.with_suffix(".perf.data"))
    until, number, cpu0 = time.monotonic() + args.profile, first, server.cpu_seconds()
    while time.monotonic() < until:
        await event(number)
        number += 1
    cpu = server.cpu_seconds() - cpu0
    for tool, process in (("py-spy", sampler), ("perf", perf)):
        if process is not None:
            _, errors = await process.communicate()
            if process.returncode != 0:
                log(f"{tool} exited {process.returncode}: {errors.decode().strip()}")
    await pool.collect()
    events = number - first
    text = [f"{events} events to {streams} streams in {args.profile:g} s; server {cpu:.2f} CPU-s", ""]
    perf_data = stacks.with_suffix(".perf.data")
    if perf_data.exists():
        text.append(await profile.perf_summary(perf_data))
    if stacks.exists():
        text += ["py-spy:", profile.summarize(profile.read_stacks(stacks))]
    stacks.with_suffix(".txt").write_text("\n".join(text))
    log(f"profiled (not reported): wrote {stacks.with_suffix('.txt')} (summary), {stacks.name} (collapsed stacks)")


class FloorServer(BenchServer):
    """bench/stream_floor.py in place of `communities serve` (same readings, same stop)."""

    async def start(self, ready_timeout: float = 60.0) -> None:
        env = self._env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(PROJECT_DIR)]))
        with self.log_path.open("wb") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.stream_floor", "--listen", self.address,
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=asyncio.subprocess.STDOUT,
                env=env, cwd=self.workdir,
            )  # fmt: skip
        self._ps = psutil.Process(self._process.pid)
        await self._wait_serving(ready_timeout)


async def part_floor(args: argparse.Namespace, workdir: Path, tree: Path) -> dict[str, Any]:
    floor_dir = workdir / "floor"
    floor_dir.mkdir()
    server = FloorServer("floor", floor_dir, source=tree)
    nobody = Principal(id="0", name="floor", bot=True, token="floor")
    try:
        log(f"floor: starting bench/stream_floor.py on {server.address}")
        await server.start()
        async with grpc.aio.insecure_channel(server.address) as channel:
            people = [nobody.authorization] * args.subscribers
            series = await fanout_series(args, "floor", server, server, channel, nobody, 1, people)
    finally:
        result_server = await stop(server)
    return {"series": series, "servers": [result_server]}


def describe_fanout(part: str, r: dict[str, Any]) -> None:
    s = r["from_send"]
    log(
        f"{part}: {r['receipts']} receipts ({r['missing']} missing) of {r['events']} events x {r['streams']} "
        f"streams: from send p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms; "
        f"first receipt p50 {r['first_receipt']['p50_ms']:.1f} ms; spread p50 {r['spread']['p50_ms']:.1f} ms; "
        f"server {r['server_cpu_us_per_delivery']:.0f} us CPU per delivery; idle {r['idle_cores']}"
    )


async def stop(server: BenchServer) -> dict[str, Any]:
    exit_code = await server.stop()
    problems, first = server.log_problems()
    if problems or exit_code != 0:
        log(f"server {server.address}: exit code {exit_code}, {problems} error line(s): {first[:3]}")
    return {"exit_code": exit_code, "problem_lines": problems, "first_problems": first}


# ------------------------------------------------------------------------------------------------ memory


async def memory_once(
    args: argparse.Namespace, workdir: Path, tree: Path, per_connection: int, *, floor: bool = False
) -> dict[str, Any]:
    """RSS and idle CPU of a fresh server with 0, idle_streams/2 and idle_streams streams open. `floor`:
    bench/stream_floor.py instead of the communities server (what grpc.aio itself keeps per stream)."""
    label = f"bench memory {per_connection}"
    run_dir = workdir / f"memory-{'floor-' if floor else ''}{per_connection}"
    run_dir.mkdir()
    if floor:
        server: BenchServer = FloorServer("floor", run_dir, source=tree)
    else:
        server = BenchServer(f"sqlite:///{run_dir / 'memory.db'}", run_dir, source=tree)
    half = args.idle_streams // 2
    warm = min(20, half)
    try:
        await server.start()
        if floor:
            people = ["Bot floor"] * args.idle_streams
        else:
            async with grpc.aio.insecure_channel(server.address) as channel:
                _, _, people = await community_with_members(server, channel, args.idle_streams, run_dir, label)
        async with SubscriberPool(args.subscriber_processes) as pool:
            # A few streams opened and closed first: one-time costs (imports, first allocations) are not per stream.
            await pool.open(server.address, people[:warm], per_connection)
            await settle(1.0)
            await pool.close_streams()
            await settle(3.0)
            points = [{"streams": 0, "rss": await rss_settled(server), "connections": connections(server)}]
            points[0]["idle_cores"] = (await idle_cpu([server], args.idle_seconds))[0]
            for batch in (people[:half], people[half:]):
                opened = await pool.open(server.address, batch, per_connection)
                if opened["ready"] != opened["streams"]:
                    raise ServerFailed(f"only {opened['ready']} of {opened['streams']} streams became ready")
                await settle(3.0)  # the new streams settle (presence rows written, first wake-up pass)
                point = {"streams": opened["ready"], "rss": await rss_settled(server)}
                point["connections"] = connections(server)
                point["idle_cores"] = (await idle_cpu([server], args.idle_seconds))[0]
                point["open_seconds"] = opened["seconds"]
                points.append(point)
                log(
                    f"memory{' (floor)' if floor else ''} ({per_connection}/connection): {point['streams']} streams, "
                    f"{point['connections']} connections: RSS {point['rss'] / MB:.1f} MB, idle "
                    f"{point['idle_cores']:.3f} cores"
                )
            if args.profile > 0 and per_connection == 1 and not floor:
                await profile_idle(args, server, points[-1]["streams"])
            await pool.close_streams()
    finally:
        result_server = await stop(server)
    (p0, p1, p2) = points
    return {
        "floor": floor,
        "per_connection": per_connection,
        "points": points,
        "kb_per_stream": (p2["rss"] - p0["rss"]) / (p2["streams"] - p0["streams"]) / KB,
        "kb_per_stream_first_half": (p1["rss"] - p0["rss"]) / (p1["streams"] - p0["streams"]) / KB,
        "kb_per_stream_second_half": (p2["rss"] - p1["rss"]) / (p2["streams"] - p1["streams"]) / KB,
        "idle_cpu_us_per_stream_second": (p2["idle_cores"] - p0["idle_cores"]) / p2["streams"] * 1e6,
        "server": result_server,
    }


async def profile_idle(args: argparse.Namespace, server: BenchServer, streams: int) -> None:
    """py-spy on the idle server with `streams` open, for args.profile seconds: ...-memory-idle.{stacks,txt}."""
    stacks = args.profile_stem.with_name(f"{args.profile_stem.name}-memory-idle.stacks")
    cpu0 = server.cpu_seconds()
    sampler = await profile.record(server.pid, args.profile, stacks, native=args.native)
    _, errors = await sampler.communicate()
    if sampler.returncode != 0:
        log(f"py-spy exited {sampler.returncode}: {errors.decode().strip()}")
    cpu = server.cpu_seconds() - cpu0
    text = [f"idle server with {streams} streams open, {args.profile:g} s; server {cpu:.2f} CPU-s", ""]
    if stacks.exists():
        text += ["py-spy:", profile.summarize(profile.read_stacks(stacks))]
    stacks.with_suffix(".txt").write_text("\n".join(text))
    log(f"profiled the idle server: wrote {stacks.with_suffix('.txt')}")


async def part_memory(args: argparse.Namespace, workdir: Path, tree: Path) -> dict[str, Any]:
    series = []
    for floor, per_connection in ((False, 1), (False, args.multiplexed), (True, 1), (True, args.multiplexed)):
        r = await memory_once(args, workdir, tree, per_connection, floor=floor)
        series.append(r)
        log(
            f"memory{' (floor)' if floor else ''} ({per_connection}/connection): {r['kb_per_stream']:.1f} KB per "
            f"stream (0 -> "
            f"{r['points'][2]['streams']}), idle CPU {r['idle_cpu_us_per_stream_second']:.0f} us per stream-second"
        )
    return {"series": series, "servers": [r.pop("server") for r in series]}


# ------------------------------------------------------------------------------------------------ publish


async def check_subscribe(server: BenchServer, authorization: str, *, expect_unimplemented: bool | None) -> str:
    """Which server is which: Subscribe is UNIMPLEMENTED before the Updates work and answers `ready` after
    (`expect_unimplemented` None: either)."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = updates_pb2_grpc.UpdatesStub(channel).Subscribe(
            updates_pb2.Subscribe(), metadata=(("authorization", authorization),), timeout=10
        )
        try:
            first = await call.read()
            answer = first.WhichOneof("event") if first is not grpc.aio.EOF else "EOF"
        except grpc.aio.AioRpcError as error:
            answer = error.code().name
        finally:
            call.cancel()
    if expect_unimplemented is not None and (answer == "UNIMPLEMENTED") != expect_unimplemented:
        raise ServerFailed(f"Subscribe on {server.address} answered {answer}: not the server expected")
    return answer


async def part_publish(args: argparse.Namespace, workdir: Path, trees: dict[str, Path]) -> dict[str, Any]:
    names = [CEILING, *PUBLISH_SCENARIOS]
    sides = ("before", *(name for name, _ in args.also_sides), "after")
    servers: dict[str, BenchServer] = {}
    for side in sides:
        side_dir = workdir / f"publish-{side}"
        side_dir.mkdir()
        servers[side] = BenchServer(f"sqlite:///{side_dir / 'bench.db'}", side_dir, source=trees[side])
    timing = SimpleNamespace(
        warmup=args.warmup, duration=args.duration, in_flight=args.in_flight, call_timeout=args.call_timeout
    )
    measurements: dict[str, list] = {side: [] for side in sides}
    checks: dict[str, dict] = {side: {} for side in sides}
    subscribe_answers = {}
    try:
        for side in sides:
            log(f"publish: starting the {side} server on {servers[side].address}")
            await servers[side].start()
        async with contextlib.AsyncExitStack() as stack:
            workloads: dict[str, dict[str, Workload]] = {}
            contexts: dict[str, SetupContext] = {}
            answered: dict[str, dict] = {}
            for side in sides:
                channel = await stack.enter_async_context(grpc.aio.insecure_channel(servers[side].address))
                contexts[side] = SetupContext(
                    server=servers[side],
                    channel=channel,
                    clients=args.clients,
                    in_flight=args.in_flight,
                    workdir=servers[side].workdir,
                    seconds_per_scenario=(START_DELAY_S + args.warmup + args.duration) * args.runs,
                    fresh_users=args.fresh_users,
                )
                workloads[side] = {}
                for name in names:
                    started = time.monotonic()
                    workloads[side][name] = await SCENARIOS[name].setup(contexts[side])
                    log(f"publish: set up {name} on {side} ({time.monotonic() - started:.1f} s)")
                answered[side] = {name: Counter() for name in names}
                checker = await servers[side].create_principal(f"bench subscribe check {side}", bot=False)
                subscribe_answers[side] = await check_subscribe(
                    servers[side], checker.authorization, expect_unimplemented=None if side != "after" else False
                )
            pools = {}
            for side in sides:
                pools[side] = await stack.enter_async_context(ClientPool(servers[side].address, args.clients))
            for run in range(1, args.runs + 1):
                # Which server goes first changes from run to run: reversed every other run (two servers), or
                # rotated (more).
                if len(sides) == 2:
                    order = sides if run % 2 else tuple(reversed(sides))
                else:
                    shift = (run - 1) % len(sides)
                    order = sides[shift:] + sides[:shift]
                for side in order:
                    for name in names:
                        await asyncio.sleep(args.pause)
                        m = await measure(
                            timing, servers[side], pools[side], name, workloads[side][name], run, answered[side][name]
                        )
                        measurements[side].append(m)
                        errors = sum(m.errors.values())
                        log(
                            f"publish run {run} {side} {name}: {m.calls_per_s:,.0f} calls/s, "
                            f"{m.calls_per_server_cpu_s:,.0f} calls per server CPU-s"
                            + (f", {errors} ERRORS {m.errors}" if errors else "")
                        )
            for side in sides:
                for name in names:
                    verify = SCENARIOS[name].verify
                    if verify is not None:
                        check = await verify(contexts[side], workloads[side][name], answered[side][name])
                        checks[side][name] = {"ok": check.ok, "text": check.text}
                        log(f"publish: check {side} {name}: {'ok' if check.ok else 'FAILED'}: {check.text}")
    finally:
        stopped = {side: await stop(servers[side]) for side in sides}
    summaries = {side: report.summarize(measurements[side]) for side in sides}
    comparison = {}
    for name in PUBLISH_SCENARIOS:
        before, after = summaries["before"][name], summaries["after"][name]
        others = {
            side: summaries[side][name]["ratio"] / before["ratio"] for side in sides if side not in ("before", "after")
        }
        per_run = [
            a / b for a, b in zip(after["ratio_per_run"], before["ratio_per_run"], strict=True)
        ]  # same run number, each over its own ceiling
        comparison[name] = {
            "label": SCENARIOS[name].label,
            "before_ratio": before["ratio"],
            "after_ratio": after["ratio"],
            "after_over_before": after["ratio"] / before["ratio"],
            "after_over_before_per_run": per_run,
            "before_per_cpu_s": before["calls_per_server_cpu_s"],
            "after_per_cpu_s": after["calls_per_server_cpu_s"],
            "met": after["ratio"] >= (1 - PUBLISH_MAX_DROP) * before["ratio"],
            "others_over_before": others,
        }
        log(
            f"publish: {name}: before {before['ratio']:.1%} of its ceiling, after {after['ratio']:.1%} "
            f"(after/before {comparison[name]['after_over_before']:.2f})"
        )
    return {
        "sides": list(sides),
        "sources": {side: str(trees[side]) for side in sides},
        "measurements": {side: [m.__dict__ for m in measurements[side]] for side in sides},
        "summary": summaries,
        "comparison": comparison,
        "checks": checks,
        "subscribe_answers": subscribe_answers,
        "servers": list(stopped.values()),
        "runs": args.runs,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
    }


# ------------------------------------------------------------------------------------------------ report


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def connection_text(per_connection: int) -> str:
    return "a connection per stream" if per_connection == 1 else f"{per_connection} streams per connection"


FANOUT_WHERE = {
    "fanout": ("SQLite, one server", FANOUT_P99_MS),
    "replicas": ("PostgreSQL, streams on server A, EditCommunity through server B", REPLICAS_P99_MS),
}

FANOUT_ROWS = (
    ("streams / connections to the subscribed server", lambda r: f"{r['streams']:,} / {r['connections']:,}"),
    ("receipts (missing)", lambda r: f"{r['receipts']:,} ({r['missing']})"),
    ("streams that missed an event / out of order", lambda r: f"{r['streams_not_receiving_all']} / "
     f"{r['duplicates_or_disorder']}"),
    ("from send: p50 / p90 / p99 / max", lambda r: "{p50_ms:.0f} / {p90_ms:.0f} / {p99_ms:.0f} / {max_ms:.0f}"
     .format(**r["from_send"])),
    ("from EditCommunity's answer: p50 / p99", lambda r: "{p50_ms:.0f} / {p99_ms:.0f}".format(**r["from_answer"])),
    ("EditCommunity call: p50 / max", lambda r: "{p50_ms:.1f} / {max_ms:.1f}".format(**r["edit_call"])),
    ("first receipt of an event: p50 / max", lambda r: "{p50_ms:.1f} / {max_ms:.1f}".format(**r["first_receipt"])),
    ("first to last receipt of an event: p50 / max", lambda r: "{p50_ms:.0f} / {max_ms:.0f}".format(**r["spread"])),
    ("subscribed server: CPU ms per event (above idle)", lambda r: f"{r['server_cpu_ms_per_event'][0]:.0f}"),
    ("... CPU us per delivered update", lambda r: f"{r['server_cpu_us_per_delivery']:.0f}"),
    ("writing server: CPU ms per event", lambda r: f"{r['server_cpu_ms_per_event'][-1]:.1f}"
     if len(r["server_cpu_ms_per_event"]) > 1 else "(same)"),
    ("subscriber processes: CPU ms per event", lambda r: f"{r['client_cpu_ms_per_event']:.0f}"),
    ("idle server(s) with the streams open, cores", lambda r: " / ".join(f"{c:.3f}" for c in r["idle_cores"])),
    ("stream errors", lambda r: str(r["stream_errors"] or 0)),
)  # fmt: skip


def markdown(doc: dict[str, Any]) -> str:
    meta, parts = doc["meta"], doc["parts"]
    source = (
        f"the tree {meta['source']}"
        if meta.get("source")
        else f"the working tree at {meta['tree']['head']} with {meta['tree']['changed_files']} changed files under "
        "src/, generated/ and protos/ (copied when the bench started)"
    )
    out = [
        "## Updates (live stream)",
        "",
        "```sh",
        meta["command"],
        "```",
        "",
        f"Server: {source}; before = {meta['before']}. {meta['cpu_count']} cores, load average "
        f"{meta['load_average']['before'][0]:.1f} before and {meta['load_average']['after'][0]:.1f} after; the "
        f"bench took {meta['seconds'] / 60:.1f} minutes.",
        "",
    ]
    goals = []
    for part, (where, goal_ms) in FANOUT_WHERE.items():
        for r in parts.get(part, {}).get("series", ()):
            s = r["from_send"]
            goals.append(
                (
                    f"Fan-out, {where}: EditCommunity sent -> update received, {r['streams']:,} streams "
                    f"({connection_text(r['per_connection'])}) x {r['events']} events",
                    f"p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms"
                    + (
                        f"; {sum(r['stream_errors'].values())} streams ended by the server "
                        f"({', '.join(r['stream_errors'])}), {r['missing']:,} updates not received"
                        if r["stream_errors"] or r["missing"]
                        else ""
                    ),
                    f"p99 < {goal_ms:.0f} ms, every update received",
                    verdict(s["p99_ms"] < goal_ms and r["missing"] == 0 and not r["stream_errors"]),
                )
            )
    publish = parts.get("publish")
    if publish:
        for c in publish["comparison"].values():
            goals.append(
                (
                    f"Publishing: {c['label']} calls per server CPU-s as a share of the ceiling, before -> after",
                    f"{c['before_ratio']:.0%} -> {c['after_ratio']:.0%} (x{c['after_over_before']:.2f})",
                    "at most 10% lower",
                    verdict(c["met"]),
                )
            )
    memory = parts.get("memory")
    if memory:
        for r in memory["series"]:
            if r["floor"]:
                continue
            streams = r["points"][2]["streams"]
            goals.append(
                (
                    f"Server RSS per idle stream, 0 -> {streams:,} streams, {connection_text(r['per_connection'])}",
                    f"{r['kb_per_stream']:.1f} KB",
                    f"< {KB_PER_STREAM:.0f} KB",
                    verdict(r["kb_per_stream"] < KB_PER_STREAM),
                )
            )
    out += ["| measurement | result | goal | verdict |", "| --- | ---: | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in goals]
    out.append("")
    columns = [
        (f"{part}, {connection_text(r['per_connection'])}", r)
        for part in ("fanout", "replicas", "floor")
        for r in parts.get(part, {}).get("series", ())
    ]
    if columns:
        out += [
            "Fan-out detail (ms unless said). One warm-up event, then each event sent when the previous one reached "
            "every stream (+ 0.25 s); receipts timed in the subscriber processes (grpc.aio, 2 processes), which "
            "share the cores with the server. `floor`: bench/stream_floor.py, a grpc.aio server that only "
            "broadcasts one pre-serialized message (what grpc.aio and the kernel cost here).",
            "",
            "| | " + " | ".join(name for name, _ in columns) + " |",
            "| --- | " + " | ".join("---:" for _ in columns) + " |",
        ]
        for label, cell in FANOUT_ROWS:
            out.append(f"| {label} | " + " | ".join(cell(r) for _, r in columns) + " |")
        out.append("")
    if memory:
        out += [
            "Memory and idle CPU of a fresh server (SQLite) with idle streams, each subscriber a member of one "
            "community (RSS: median of 5 samples, 3 s after the streams were ready; 20 streams opened and closed "
            "first). `floor`: bench/stream_floor.py, what grpc.aio itself keeps per stream:",
            "",
            "| | streams | connections | RSS MB | KB per stream (from the row above) | idle server cores |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in memory["series"]:
            previous = None
            for point in r["points"]:
                per = "-"
                if previous:
                    per = f"{(point['rss'] - previous['rss']) / (point['streams'] - previous['streams']) / KB:.1f}"
                out.append(
                    f"| {'floor, ' if r['floor'] else ''}{connection_text(r['per_connection'])} | "
                    f"{point['streams']:,} | {point['connections']:,} | "
                    f"{point['rss'] / MB:.1f} | {per} | {point['idle_cores']:.3f} |"
                )
                previous = point
        out.append("")
    if publish:
        sides = publish["sides"]
        also = meta.get("also") or {}
        out += [
            f"Publishing cost: {len(sides)} servers running at once ("
            + ", ".join(f"{side} = {meta['before'] if side == 'before' else also.get(side, 'the working tree')}"
                        for side in sides)
            + f"), each with its own SQLite database and {meta['args']['clients']} client processes; "
            f"{publish['runs']} runs of {publish['warmup_s']:g} + {publish['duration_s']:g} s per scenario, the "
            "order of the servers changing from run to run. Calls per server CPU-second; in brackets the ratio to "
            "that server's own health check in the same run:",
            "",
            "| scenario | server | per run | median | vs before (ratio of ratios) |",
            "| --- | --- | --- | ---: | ---: |",
        ]  # fmt: skip
        for name in (CEILING, *PUBLISH_SCENARIOS):
            b = publish["summary"]["before"][name]
            for side in sides:
                row = publish["summary"][side][name]
                per_run = zip(row["calls_per_server_cpu_s_per_run"], row["ratio_per_run"], strict=True)
                cells = " / ".join(f"{value:,.0f} ({ratio:.0%})" for value, ratio in per_run)
                if side == "before":
                    change = "-"
                elif name == CEILING:
                    change = f"x{row['calls_per_server_cpu_s'] / b['calls_per_server_cpu_s']:.2f} (calls per CPU-s)"
                else:
                    change = f"x{row['ratio'] / b['ratio']:.2f}"
                out.append(
                    f"| {SCENARIOS[name].label} | {side} | {cells} | {row['calls_per_server_cpu_s']:,.0f} "
                    f"({row['ratio']:.0%}) | {change} |"
                )
        out.append("")
        for side in sides:
            for name, check in publish["checks"][side].items():
                out.append(
                    f"- check, {side}, {SCENARIOS[name].label}: {'ok' if check['ok'] else 'FAILED'}: {check['text']}"
                )
        answers = publish["subscribe_answers"]
        out += ["- Subscribe answered: " + ", ".join(f"{side} {answers.get(side)}" for side in sides) + ".", ""]
    servers = [(part, server) for part, r in parts.items() for server in r["servers"]]
    bad = [(part, server) for part, server in servers if server["exit_code"] != 0 or server["problem_lines"]]
    out.append(
        f"Servers: {len(servers)} started; "
        + (
            "all exited 0 on SIGTERM with no error lines in their logs."
            if not bad
            else "; ".join(
                f"a {part} server exited {server['exit_code']} with {server['problem_lines']} error line(s) in its "
                f"log, the first: `{(server['first_problems'] or [''])[0]}`"
                for part, server in bad
            )
        )
    )
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ main


async def bench(args: argparse.Namespace, workdir: Path, trees: dict[str, Path], pg_url: str | None) -> dict:
    parts: dict[str, Any] = {}
    if "fanout" in args.part_names:
        parts["fanout"] = await part_fanout(args, workdir, trees["after"])
    if "replicas" in args.part_names:
        parts["replicas"] = await part_replicas(args, workdir, trees["after"], pg_url)
    if "floor" in args.part_names:
        parts["floor"] = await part_floor(args, workdir, trees["after"])
    if "memory" in args.part_names:
        parts["memory"] = await part_memory(args, workdir, trees["after"])
    if "publish" in args.part_names:
        parts["publish"] = await part_publish(args, workdir, trees)
    return parts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, started_at = datetime.now(UTC), time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"updates-{started.strftime('%Y%m%d-%H%M%S')}"
    args.profile_stem = stem
    if args.profile > 0:
        profile.py_spy()  # fail early when py-spy is missing
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="communities-bench-updates-"))
    meta: dict[str, Any] = {"tree": tree_state()}
    try:
        if args.source:
            trees = {"after": args.source.resolve()}
            meta["source"] = str(trees["after"])
        else:
            trees = {"after": snapshot_tree(workdir / "tree")}
        if "publish" in args.part_names:
            commit = export_revision(args.before, workdir / "before")
            trees["before"] = workdir / "before"
            meta["before"] = f"{args.before} ({commit[:12]}, git archive)"
            log(f"publish: before = {args.before} ({commit[:12]})")
            meta["also"] = {}
            for name, where in args.also_sides:
                if Path(where).is_dir():
                    trees[name] = Path(where).resolve()
                    meta["also"][name] = str(trees[name])
                else:
                    commit = export_revision(where, workdir / name)
                    trees[name] = workdir / name
                    meta["also"][name] = f"{where} ({commit[:12]}, git archive)"
                log(f"publish: {name} = {meta['also'][name]}")
        else:
            meta["before"] = "(not measured)"
        with contextlib.ExitStack() as stack:
            pg_url = None
            if "replicas" in args.part_names:
                from tests.support.postgres import postgres_server

                if args.postgres:
                    os.environ["COMMUNITIES_TEST_POSTGRES_URL"] = args.postgres
                pg_url = stack.enter_context(postgres_server())
                log(f"replicas: PostgreSQL at {pg_url.split('@')[-1]}")
            parts = asyncio.run(bench(args, workdir, trees, pg_url))
    except KeyboardInterrupt:
        log("interrupted; everything this bench started is stopped")
        return 130
    except ServerFailed as error:
        log(f"failed: {error}")
        return 1
    finally:
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta.update(
        {
            "started": started.isoformat(timespec="seconds"),
            "seconds": time.monotonic() - started_at,
            "command": " ".join([".venv/bin/python -m bench.updates", *(sys.argv[1:] if argv is None else argv)]),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "platform": platform.platform(),
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "current_part"},
        }
    )
    doc = {"meta": meta, "parts": parts}
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    text = markdown(doc)
    md_path.write_text(text)
    print(text)
    log(f"wrote {json_path}, {md_path}")
    servers = [server for r in parts.values() for server in r["servers"]]
    servers_ok = all(server["exit_code"] == 0 and not server["problem_lines"] for server in servers)
    checks = parts.get("publish", {}).get("checks", {})
    checks_ok = all(check["ok"] for side in checks.values() for check in side.values())
    return 0 if servers_ok and checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
