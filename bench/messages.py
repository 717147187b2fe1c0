"""Messages scenarios for the bench harness: `python -m bench.messages [bench.run flags]` from the project root.

Registers these scenarios in bench.scenarios.SCENARIOS (also in the spawned client processes, which import this
module as their main module) and runs bench.run with them unless `--scenarios` is given:
- send_message_10 / _1000 / _10000: a member sends messages in the system channel of a community of 10, 1,000 or
  10,000 members (members written in bulk into the database, not through RPCs). Goals: >= 0.4 of the ceiling at
  1,000; flat over the three sizes (sending writes no row per member).
- get_history_1k / get_history_1m: GetHistory of 50 (newest page) in a channel of 1,000 or 1,000,000 messages,
  seeded in bulk through the storage tables. Goal: >= 0.5 of the ceiling, flat.
- get_communities_unread: a person in 10 communities, each with unread messages (and a mention) lists them.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time

from google.protobuf.message import Message

from bench.scenarios import SCENARIOS, Scenario, SetupContext, SetupError, Workload
from communities.v1 import communities_pb2, invites_pb2, messages_pb2, messages_pb2_grpc

MESSAGES = "/communities.v1.Messages/"
COMMUNITIES = "/communities.v1.Communities/"


def _database_path(ctx: SetupContext) -> str:
    url = ctx.server.database
    if not url.startswith("sqlite:///"):
        raise SetupError("the messages scenarios seed data with SQLite writes: run them on SQLite")
    return url.removeprefix("sqlite:///")


def _bulk(ctx: SetupContext, work) -> None:
    """Write straight into the server's SQLite file (WAL: the server keeps serving meanwhile)."""
    connection = sqlite3.connect(_database_path(ctx), timeout=60)
    try:
        connection.execute("PRAGMA foreign_keys=ON")
        with connection:
            work(connection)
    finally:
        connection.close()


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


def _add_members(ctx: SetupContext, community_id: int, count: int) -> None:
    now = int(time.time() * 1000)
    ids = _fake_ids(count)

    def work(connection: sqlite3.Connection) -> None:
        connection.executemany(
            "INSERT INTO users (id, name, bot, community_count, created_at) VALUES (?, ?, 0, 1, ?)",
            [(user_id, f"bench member {index}", now) for index, user_id in enumerate(ids)],
        )
        connection.executemany(
            "INSERT INTO members (community_id, user_id, joined_at, muted, temporary) VALUES (?, ?, ?, 0, 0)",
            [(community_id, user_id, now) for user_id in ids],
        )

    _bulk(ctx, work)


def _send_setup(members: int):
    async def setup(ctx: SetupContext) -> Workload:
        owner = await ctx.principal(f"bench sender owner {members}", bot=True)
        community_id, channel_id = await _community(ctx, owner)
        _add_members(ctx, community_id, members - 1)
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

        def work(connection: sqlite3.Connection) -> None:
            batch = 50_000
            for start in range(0, count, batch):
                connection.executemany(
                    "INSERT INTO messages (id, channel_id, community_id, seq, author_id, type, text, created_at, "
                    "mention_user_ids, mention_role_ids, mention_everyone, deleted) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?, ?, '', '', 0, 0)",
                    [
                        (ids[index], channel_id, community_id, index + 1, author, f"seeded message {index}", now)
                        for index in range(start, min(count, start + batch))
                    ],
                )
            connection.execute(
                "INSERT INTO message_channels (channel_id, community_id, last_seq, live_count) VALUES (?, ?, ?, ?)",
                (channel_id, community_id, count, count),
            )

        _bulk(ctx, work)
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
    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
