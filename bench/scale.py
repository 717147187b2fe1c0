"""Scale: GetCommunities and UseInvite with communities of 10, 1,000 and 100,000 members.

Run by `python -m bench.run` on each database after the throughput runs and the latency part, on the same server
(so the throughput scenarios never see the million extra member rows). Per size, a bot makes COMMUNITIES
communities through RPCs, each with an unlimited invite; a reader (a person) joins all of them with UseInvite;
then the other members are inserted in bulk, straight into the database in the bench process (asyncpg COPY in
one transaction; sqlite3 in transactions of SQLITE_CHUNK rows): people who never call, ids FILLER_ID_BASE + i,
the same people in every community of every size (person i is in the communities of every size larger than
i + 2 members), with their `users.community_count` set to match.

GetCommunities: the reader lists its COMMUNITIES communities of that size. UseInvite: people of the fresh pool
join them, call n of a slot joining community n mod COMMUNITIES, so all ten grow alike (each grows by a tenth of
the joins, which the results report). Each run measures the ceiling and then every size's two scenarios, the
same way as the throughput runs; the figure is calls per server CPU-second, and its ratio to the same run's
ceiling. The goal is a flat per-call cost: the largest size's ratio at least FLAT_GOAL of the smallest's.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import make_url

from bench.report import Measurement
from bench.scenarios import (
    CEILING,
    SetupContext,
    SetupError,
    Workload,
    community_with_channel,
    verify_use_invite_unlimited,
)
from communities.v1 import communities_pb2, invites_pb2

COMMUNITIES = 10  # per size: the reader's communities, and the ones UseInvite joins
FILLER_ID_BASE = 10**12  # far below any minted snowflake (milliseconds since the epoch << 22)
FLAT_GOAL = 0.9
SQLITE_CHUNK = 20_000  # rows per transaction of the SQLite bulk insert
SCENARIOS = ("get_communities", "use_invite_unlimited")


def label(scenario: str, size: int) -> str:
    return f"{scenario}@{size}"


async def setup(ctx: SetupContext, sizes: list[int]) -> dict[str, Any]:
    """Communities of each size; returns {label: workload} for both scenarios, and what the fill did."""
    owner = await ctx.principal("bench scale owner", bot=True)
    people = await ctx.fresh_people()
    workloads: dict[str, Workload] = {}
    plan: list[tuple[list[int], int]] = []
    for size in sizes:
        if size < 2:
            raise SetupError("scale sizes start at 2 members (the owner and the reader)")
        reader = await ctx.principal(f"bench scale reader {size}", bot=False)
        community_ids, codes = [], []
        for number in range(COMMUNITIES):
            community_id, channel_id = await community_with_channel(ctx, owner, f"bench scale {size} {number}")
            invite = await ctx.invites().CreateInvite(
                invites_pb2.CreateInvite(channel_id=channel_id, max_uses=0, max_age=0, unique=True),
                metadata=owner.metadata,
                timeout=10,
            )
            await ctx.invites().UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=reader.metadata, timeout=10)
            community_ids.append(community_id)
            codes.append(invite.code)
        plan.append((community_ids, size - 2))
        workloads[label("get_communities", size)] = Workload(authorizations=(reader.authorization,))
        workloads[label("use_invite_unlimited", size)] = Workload(
            authorizations=people,
            params={
                "codes": codes,
                "community_ids": community_ids,
                "owner": owner.authorization,
                "in_flight": ctx.in_flight,
                "setup_uses": COMMUNITIES,  # the reader's joins
                "key": f"scale {size}",
                "spread": True,
            },
        )
    started = time.monotonic()
    counts = await fill(ctx.server.database, plan)
    fill_s = time.monotonic() - started
    for (community_ids, _), size in zip(plan, sizes, strict=True):
        wrong = [count for community_id, count in counts.items() if community_id in community_ids and count != size]
        if wrong:
            raise SetupError(f"communities of size {size} have {wrong} members after the bulk insert")
        listed = await ctx.communities().GetCommunities(
            communities_pb2.GetCommunities(), metadata=workloads[label("get_communities", size)].metadata(0), timeout=30
        )
        if len(listed.communities) != COMMUNITIES:
            raise SetupError(f"the reader of size {size} lists {len(listed.communities)} communities")
    return {
        "workloads": workloads,
        "fill_s": fill_s,
        "filler_people": max(extra for _, extra in plan),
        "member_rows": sum(len(ids) * extra for ids, extra in plan),
    }


def _rows(plan: list[tuple[list[int], int]]) -> tuple[Iterator[tuple], Iterator[tuple]]:
    """Rows of users and of members, as generators (a million tuples at once would be ~150 MB)."""
    now = int(time.time() * 1000)
    people = max(extra for _, extra in plan)
    users = (
        (FILLER_ID_BASE + i, f"bench filler {i}", False, sum(len(ids) for ids, extra in plan if i < extra), now)
        for i in range(people)
    )
    members = ((cid, FILLER_ID_BASE + i, now) for ids, extra in plan for cid in ids for i in range(extra))
    return users, members


async def fill(database: str, plan: list[tuple[list[int], int]]) -> dict[int, int]:
    """Insert the filler people and their memberships in one transaction; returns members per community."""
    users, members = _rows(plan)
    community_ids = [cid for ids, _ in plan for cid in ids]
    url = make_url(database)
    if url.drivername.startswith("sqlite"):
        return await asyncio.to_thread(_fill_sqlite, url.database, users, members, community_ids)
    import asyncpg

    connection = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "users", records=users, columns=["id", "name", "bot", "community_count", "created_at"]
            )
            await connection.copy_records_to_table(
                "members", records=members, columns=["community_id", "user_id", "joined_at"]
            )
        await connection.execute("ANALYZE users; ANALYZE members")  # as autovacuum would soon
        rows = await connection.fetch(
            "SELECT community_id, count(*) FROM members WHERE community_id = any($1::bigint[]) GROUP BY community_id",
            community_ids,
        )
    finally:
        await connection.close()
    return {row[0]: row[1] for row in rows}


def _fill_sqlite(
    path: str, users: Iterator[tuple], members: Iterator[tuple], community_ids: list[int]
) -> dict[int, int]:
    """In transactions of SQLITE_CHUNK rows: one long write transaction would hold SQLite's write lock past the
    server's lock timeout (its worker-id lease renewal then fails and logs an error)."""
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    statements = (
        ("INSERT INTO users (id, name, bot, community_count, created_at) VALUES (?, ?, ?, ?, ?)", users),
        ("INSERT INTO members (community_id, user_id, joined_at) VALUES (?, ?, ?)", members),
    )
    try:
        for statement, rows in statements:
            while chunk := list(itertools.islice(rows, SQLITE_CHUNK)):
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(statement, chunk)
                connection.execute("COMMIT")
                time.sleep(0.05)  # let the server's writers in between
        marks = ",".join("?" * len(community_ids))
        rows = connection.execute(
            f"SELECT community_id, count(*) FROM members WHERE community_id IN ({marks}) GROUP BY community_id",
            community_ids,
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


async def verify(ctx: SetupContext, workloads: dict[str, Workload], answered: dict[str, Counter[str]]) -> dict:
    """Every OK UseInvite was a real join (as in the throughput runs), per size."""
    checks = {}
    for name, workload in workloads.items():
        if name.startswith("use_invite_unlimited@"):
            check = await verify_use_invite_unlimited(ctx, workload, answered[name])
            checks[name] = {"ok": check.ok, "text": check.text, "answered": dict(answered[name])}
    return checks


def summarize(measurements: list[Measurement], sizes: list[int], joins_setup: int = 0) -> dict[str, Any]:
    """Per scenario and size: median calls per server CPU-second and median ratio to the same run's ceiling;
    per scenario: largest size's ratio over the smallest's, and whether that is at least FLAT_GOAL."""
    ceiling = {m.run: m.calls_per_server_cpu_s for m in measurements if m.scenario == CEILING}
    out: dict[str, Any] = {
        "sizes": sizes,
        "ceiling": statistics.median(ceiling.values()) if ceiling else None,
        "flat_goal": FLAT_GOAL,
        "scenarios": {},
    }
    for scenario in SCENARIOS:
        rows = {}
        for size in sizes:
            mine = [m for m in measurements if m.scenario == label(scenario, size)]
            if not mine:
                continue
            rows[size] = {
                "calls_per_server_cpu_s": statistics.median(m.calls_per_server_cpu_s for m in mine),
                "calls_per_server_cpu_s_per_run": [m.calls_per_server_cpu_s for m in mine],
                "ratio": statistics.median(m.calls_per_server_cpu_s / ceiling[m.run] for m in mine),
                "p50_ms": statistics.median(m.p50_ms for m in mine),
                "calls": sum(m.calls for m in mine),
                "errors": dict(sum((Counter(m.errors) for m in mine), Counter())),
            }
        if not rows:
            continue
        small, large = rows[min(rows)], rows[max(rows)]
        flatness = large["ratio"] / small["ratio"] if small["ratio"] else None
        out["scenarios"][scenario] = {
            "sizes": rows,
            "flatness": flatness,
            "met": flatness is not None and flatness >= FLAT_GOAL,
        }
    return out
