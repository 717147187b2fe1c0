"""Messages scenarios for the bench harness: `python -m bench.messages [bench.run flags]` from the project root.

Registers these scenarios in bench.scenarios.SCENARIOS (also in the spawned client processes, which import this
module as their main module) and runs bench.run with them (all of them and get_communities unless `--scenarios` is
given), on each of bench.run's `--databases`:
- send_message_10 / _1000 / _10000: a member sends messages in the system channel of a community of 10, 1,000 or
  10,000 members (members written in bulk into the database, not through RPCs). Goals: >= 0.4 of the ceiling at
  1,000; flat over the three sizes (sending writes no row per member).
- get_history_1k / get_history_1m: GetHistory of 50 (newest page) in a channel of 1,000 or 1,000,000 messages,
  seeded in bulk through the storage tables. Goal: >= 0.5 of the ceiling, flat.
- get_communities_unread: a person in 10 communities, each with unread messages (and a mention) lists them.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import time

from google.protobuf.message import Message

from bench.scenarios import SCENARIOS, Scenario, SetupContext, SetupError, Workload
from communities.v1 import communities_pb2, invites_pb2, messages_pb2, messages_pb2_grpc

MESSAGES = "/communities.v1.Messages/"
SQLITE_BATCH = 20_000
COMMUNITIES = "/communities.v1.Communities/"


async def _insert_rows(ctx: SetupContext, rows_by_table: list[tuple[str, tuple[str, ...], list[tuple]]]) -> None:
    """Rows written straight into the server's database, not through RPCs: on SQLite with executemany in short
    transactions (WAL: the server keeps serving and writing meanwhile), on PostgreSQL with COPY in one transaction
    (then ANALYZE, so that the planner knows the new sizes at once)."""
    url = ctx.server.database
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=60)
        try:
            connection.execute("PRAGMA foreign_keys=ON")
            for table, columns, rows in rows_by_table:
                marks = ", ".join("?" for _ in columns)
                for start in range(0, len(rows), SQLITE_BATCH):
                    with connection:  # short transactions: the server's own writes (worker lease) get through
                        connection.executemany(
                            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                            rows[start : start + SQLITE_BATCH],
                        )
                    await asyncio.sleep(0.05)
        finally:
            connection.close()
        return
    import asyncpg

    from communities.storage.postgres import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with connection.transaction():
            for table, columns, rows in rows_by_table:
                await connection.copy_records_to_table(table, records=rows, columns=list(columns))
        for table, _, _ in rows_by_table:
            await connection.execute(f"ANALYZE {table}")
    finally:
        await connection.close()


def _fake_ids(count: int) -> list[int]:
    base = random.randrange(1 << 40, 1 << 50)
    return [(base + index) << 12 for index in range(count)]  # far from the server's snowflakes


async def _community(ctx: SetupContext, owner) -> tuple[int, int]:
    community = await ctx.communities().CreateCommunity(
        communities_pb2.CreateCommunity(name="bench messages"), metadata=owner.metadata, timeout=10
    )
    settings = await ctx.communities().GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata, timeout=10
    )
    return community.id, settings.system_messages.channel_id


async def _add_members(ctx: SetupContext, community_id: int, count: int) -> None:
    now = int(time.time() * 1000)
    ids = _fake_ids(count)
    await _insert_rows(
        ctx,
        [
            (
                "users",
                ("id", "name", "bot", "community_count", "created_at"),
                [(user_id, f"bench member {index}", False, 1, now) for index, user_id in enumerate(ids)],
            ),
            (
                "members",
                ("community_id", "user_id", "joined_at", "muted", "temporary"),
                [(community_id, user_id, now, False, False) for user_id in ids],
            ),
        ],
    )


def _send_setup(members: int):
    async def setup(ctx: SetupContext) -> Workload:
        owner = await ctx.principal(f"bench sender owner {members}", bot=True)
        community_id, channel_id = await _community(ctx, owner)
        await _add_members(ctx, community_id, members - 1)
        stub = messages_pb2_grpc.MessagesStub(ctx.channel)
        sent = await stub.SendMessage(
            messages_pb2.SendMessage(channel_id=channel_id, text="hello <@1> @everyone"),
            metadata=owner.metadata,
            timeout=10,
        )
        if sent.channel_id != channel_id:
            raise SetupError("SendMessage answered another channel")
        return Workload(authorizations=(owner.authorization,), params={"channel_id": channel_id})

    return setup


def request_send_message(workload: Workload, slot: int, seq: int) -> Message:
    return messages_pb2.SendMessage(channel_id=workload.params["channel_id"], text=f"message {slot} {seq}")


def _history_setup(count: int):
    async def setup(ctx: SetupContext) -> Workload:
        owner = await ctx.principal(f"bench history owner {count}", bot=True)
        community_id, channel_id = await _community(ctx, owner)
        author = int(owner.id)
        now = int(time.time() * 1000)
        ids = _fake_ids(count)

        columns = ("id", "channel_id", "community_id", "seq", "author_id", "type", "text", "created_at")
        columns += ("mention_user_ids", "mention_role_ids", "mention_everyone", "deleted")
        rows = [
            (ids[index], channel_id, community_id, index + 1, author, 1, f"seeded {index}", now, "", "", False, False)
            for index in range(count)
        ]
        counters = [(channel_id, community_id, count, count)]
        await _insert_rows(
            ctx,
            [
                ("messages", columns, rows),
                ("message_channels", ("channel_id", "community_id", "last_seq", "live_count"), counters),
            ],
        )
        stub = messages_pb2_grpc.MessagesStub(ctx.channel)
        page = await stub.GetHistory(
            messages_pb2.GetHistory(channel_id=channel_id, limit=50), metadata=owner.metadata, timeout=30
        )
        if len(page.messages) != 50 or page.messages[0].id != ids[-1]:
            raise SetupError("GetHistory did not answer the newest 50 seeded messages")
        return Workload(authorizations=(owner.authorization,), params={"channel_id": channel_id})

    return setup


def request_get_history(workload: Workload, slot: int, seq: int) -> Message:
    return messages_pb2.GetHistory(channel_id=workload.params["channel_id"], limit=50)


async def setup_get_communities_unread(ctx: SetupContext) -> Workload:
    owner = await ctx.principal("bench unread owner", bot=True)
    reader = await ctx.principal("bench unread reader", bot=False)
    stub = messages_pb2_grpc.MessagesStub(ctx.channel)
    for _ in range(10):
        _, channel_id = await _community(ctx, owner)
        invite = await ctx.invites().CreateInvite(
            invites_pb2.CreateInvite(channel_id=channel_id), metadata=owner.metadata, timeout=10
        )
        await ctx.invites().UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=reader.metadata, timeout=10)
        for index in range(5):
            text = f"news {index}" + (f" <@{reader.id}>" if index == 0 else "")
            await stub.SendMessage(
                messages_pb2.SendMessage(channel_id=channel_id, text=text), metadata=owner.metadata, timeout=10
            )
    listed = await ctx.communities().GetCommunities(
        communities_pb2.GetCommunities(), metadata=reader.metadata, timeout=10
    )
    counts = {(info.unread_count, info.unread_mention_count) for info in listed.community_user_info}
    if len(listed.communities) != 10 or counts != {(5, 1)}:
        raise SetupError(f"GetCommunities answered {counts} for 10 communities of 5 unread messages and 1 mention")
    return Workload(authorizations=(reader.authorization,))


_GET_COMMUNITIES = communities_pb2.GetCommunities()


def request_get_communities(workload: Workload, slot: int, seq: int) -> Message:
    return _GET_COMMUNITIES


NAMES = []
for _members in (10, 1000, 10_000):
    NAMES.append(f"send_message_{_members}")
    SCENARIOS[NAMES[-1]] = Scenario(
        label=f"SendMessage ({_members:,} members)",
        method=MESSAGES + "SendMessage",
        setup=_send_setup(_members),
        request=request_send_message,
        description=f"the owner of a community of {_members:,} members sends messages in its system channel",
    )
for _label, _count in (("1k", 1000), ("1m", 1_000_000)):
    NAMES.append(f"get_history_{_label}")
    SCENARIOS[NAMES[-1]] = Scenario(
        label=f"GetHistory 50 ({_count:,} messages)",
        method=MESSAGES + "GetHistory",
        setup=_history_setup(_count),
        request=request_get_history,
        description=f"the newest 50 messages of a channel of {_count:,} (seeded in bulk)",
    )
NAMES.append("get_communities_unread")
SCENARIOS[NAMES[-1]] = Scenario(
    label="GetCommunities (10, unread)",
    method=COMMUNITIES + "GetCommunities",
    setup=setup_get_communities_unread,
    request=request_get_communities,
    description="a person in 10 communities, each with 5 unread messages and a mention, lists them",
)


def main(argv: list[str]) -> int:
    from bench.run import main as run_main

    if not any(arg.startswith("--scenarios") for arg in argv):
        argv = [*argv, "--scenarios", ",".join([*NAMES, "get_communities"])]
    # bench.run's unloaded latencies and member-count scale series belong to its own scenarios.
    defaults = {"--latency-calls": "0", "--scale": "none"}
    for flag, value in defaults.items():
        if not any(arg.split("=")[0] == flag for arg in argv):
            argv = [*argv, flag, value]
    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
