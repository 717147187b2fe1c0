"""Unread counters against an independent model, under random sequences of sends (with mentions), deletes, reads
and permission changes, on both databases."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communities.v1 import communities_pb2, messages_pb2, messages_pb2_grpc
from tests.api.permissions_world import P, World

USERS = 3  # 0 = the owner, 1 and 2 members; member 2 holds the role
CHANNELS = 2  # 0 = general, 1 = a channel whose visibility changes

ops = st.one_of(
    st.tuples(
        st.just("send"),
        st.integers(0, USERS - 1),
        st.integers(0, CHANNELS - 1),
        st.sampled_from(["plain", "user", "role", "everyone"]),
        st.integers(0, USERS - 1),
    ),
    st.tuples(st.just("delete"), st.integers(0, USERS - 1), st.integers(0, 40)),
    st.tuples(st.just("read"), st.integers(0, USERS - 1), st.integers(0, CHANNELS - 1), st.integers(0, 40)),
    st.tuples(st.just("hide"), st.sampled_from(["everyone", "role", "none"])),
)


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


@pytest.fixture(scope="module")
def messages_stub(grpc_channel):
    return messages_pb2_grpc.MessagesStub(grpc_channel)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ops, min_size=5, max_size=30))
def test_counters_match_the_model(world, messages_stub, steps):
    owner = world.make_account("owner")
    community = world.community(owner)
    cid = community.id
    users = [owner, world.member(cid), world.member(cid)]
    role = world.role(owner, cid, "crew", priority=1)
    world.assign(owner, cid, users[2], role.id)
    channels = [next(iter(world.visible(owner, cid))), world.channel(owner, cid, "side").id]
    hidden_for: set[int] = set()  # users who cannot view channel 1
    # The model: every message (channel, id, author, mentioned users, live), and each user's marker per channel.
    model: list[dict] = []
    markers: dict[tuple[int, int], int] = {}

    def can_view(user: int, channel: int) -> bool:
        return channel == 0 or user not in hidden_for

    for step in steps:
        kind = step[0]
        if kind == "send":
            _, author, channel, mention, target = step
            text = {
                "plain": "hi",
                "user": f"hi <@{users[target].id}>",
                "role": f"hi <@&{role.id}>",
                "everyone": "hi @everyone",
            }[mention]
            request = messages_pb2.SendMessage(channel_id=channels[channel], text=text)
            if not can_view(author, channel):
                with pytest.raises(grpc.RpcError) as error:
                    messages_stub.SendMessage(request, metadata=users[author].metadata)
                assert error.value.code() == grpc.StatusCode.NOT_FOUND
                continue
            sent = messages_stub.SendMessage(request, metadata=users[author].metadata)
            mentioned = {
                "plain": set(),
                "user": {target},
                "role": {2},
                "everyone": set(range(USERS)) if author == 0 else set(),  # only the owner has MENTION_EVERYONE
            }[mention]
            model.append({"channel": channel, "id": sent.id, "author": author, "mentions": mentioned, "live": True})
        elif kind == "delete":
            _, actor, pick = step
            live = [m for m in model if m["live"]]
            if not live:
                continue
            message = live[pick % len(live)]
            # Only the author and the owner (DELETE_MESSAGES) may, and only where they can view.
            allowed = (actor == message["author"] or actor == 0) and can_view(actor, message["channel"])
            request = messages_pb2.DeleteMessage(channel_id=channels[message["channel"]], message_id=message["id"])
            if not allowed:
                with pytest.raises(grpc.RpcError):
                    messages_stub.DeleteMessage(request, metadata=users[actor].metadata)
                continue
            messages_stub.DeleteMessage(request, metadata=users[actor].metadata)
            message["live"] = False
        elif kind == "read":
            _, reader, channel, pick = step
            live = [m for m in model if m["live"] and m["channel"] == channel]
            if not live or not can_view(reader, channel):
                continue
            message = live[pick % len(live)]
            messages_stub.MarkRead(
                messages_pb2.MarkRead(channel_id=channels[channel], message_id=message["id"]),
                metadata=users[reader].metadata,
            )
            key = (reader, channel)
            markers[key] = max(markers.get(key, 0), message["id"])
        else:
            _, how = step
            if how == "everyone":
                world.override(owner, channels[1], cid, neg=P.VIEW_CHANNEL)
                world.override(owner, channels[1], role.id)
                hidden_for = {1, 2}
            elif how == "role":
                world.override(owner, channels[1], cid)
                world.override(owner, channels[1], role.id, neg=P.VIEW_CHANNEL)
                hidden_for = {2}
            else:
                world.override(owner, channels[1], cid)
                world.override(owner, channels[1], role.id)
                hidden_for = set()
        # Check every user against the model after every step.
        answer = None
        for index, account in enumerate(users):
            expected_unread = expected_mentions = 0
            for message in model:
                channel = message["channel"]
                if (
                    message["live"]
                    and message["author"] != index
                    and can_view(index, channel)
                    and message["id"] > markers.get((index, channel), 0)
                ):
                    expected_unread += 1
                    expected_mentions += index in message["mentions"]
            answer = world.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
            [info] = [entry for entry in answer.community_user_info if entry.community_id == cid]
            assert (info.unread_count, info.unread_mention_count) == (expected_unread, expected_mentions), (
                index,
                step,
            )
            states = messages_stub.GetReadStates(
                messages_pb2.GetReadStates(community_id=cid), metadata=account.metadata
            ).states
            assert sum(state.unread_count for state in states) == expected_unread
            assert sum(state.unread_mention_count for state in states) == expected_mentions
