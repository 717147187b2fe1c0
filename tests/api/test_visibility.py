"""A community the caller is not in looks exactly like one that does not exist, on every community RPC."""

from __future__ import annotations

import grpc
import pytest

from communities.v1 import communities_pb2 as pb
from tests.api.conftest import MAX_FIXED64
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details

# Each community RPC that names a community, with a request that would succeed for a member with every permission
# (for LeaveCommunity: one without ownership).
REQUESTS = {
    "EditCommunity": lambda cid: pb.EditCommunity(community_id=cid, name="renamed"),
    "EditCommunity(no name)": lambda cid: pb.EditCommunity(community_id=cid),
    "LeaveCommunity": lambda cid: pb.LeaveCommunity(community_id=cid),
    "DeleteCommunity": lambda cid: pb.DeleteCommunity(community_id=cid),
    "EditSettings": lambda cid: pb.EditSettings(
        community_id=cid, settings=pb.CommunitySettings(system_messages=pb.SystemMessages(join_messages=False))
    ),
    "EditSettings(clear channel)": lambda cid: pb.EditSettings(
        community_id=cid, settings=pb.CommunitySettings(system_messages=pb.SystemMessages(channel_id=0))
    ),
    "GetSettings": lambda cid: pb.GetSettings(community_id=cid),
    "SetMuted": lambda cid: pb.SetMuted(community_id=cid, muted=True),
}


def method_of(label: str) -> str:
    return label.split("(")[0]


@pytest.fixture(scope="module")
def world(make_account, create, add_member, communities_stub):
    """An outsider, a stranger's community (with a member, so it is not empty), a community the outsider left,
    and a deleted one."""
    outsider, stranger, member = make_account("outsider"), make_account("stranger"), make_account("member")
    foreign = create(stranger, "Not yours")
    add_member(foreign.id, member)
    left = create(stranger, "Left behind")
    add_member(left.id, outsider)
    communities_stub.LeaveCommunity(pb.LeaveCommunity(community_id=left.id), metadata=outsider.metadata)
    deleted = create(outsider, "Gone")
    communities_stub.DeleteCommunity(pb.DeleteCommunity(community_id=deleted.id), metadata=outsider.metadata)
    own = create(outsider, "Mine")
    general = communities_stub.GetSettings(
        pb.GetSettings(community_id=own.id), metadata=outsider.metadata
    ).system_messages.channel_id
    return {
        "outsider": outsider,
        "stranger": stranger,
        "foreign": foreign,
        "left": left,
        "deleted": deleted,
        "own": own,
        "general": general,
    }


def target_id(world, db, target: str) -> int:
    return {
        "foreign": lambda: world["foreign"].id,
        "left": lambda: world["left"].id,
        "deleted": lambda: world["deleted"].id,
        "unused snowflake": db.new_id,
        "zero": lambda: 0,
        "one": lambda: 1,
        "max fixed64": lambda: MAX_FIXED64,
        "sign bit": lambda: 1 << 63,
        "a user id": lambda: world["stranger"].id,
        "own channel id": lambda: world["general"],
    }[target]()


TARGETS = [
    "foreign",
    "left",
    "deleted",
    "unused snowflake",
    "zero",
    "one",
    "max fixed64",
    "sign bit",
    "a user id",
    "own channel id",
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("label", list(REQUESTS))
def test_invisible_community_is_not_found(communities_stub, world, db, label, target):
    call = getattr(communities_stub, method_of(label))
    community_id = target_id(world, db, target)
    error = rpc_error(call, REQUESTS[label](community_id), metadata=world["outsider"].metadata)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_COMMUNITY")

    # Byte for byte what a never-used id answers: code, message and the whole ErrorInfo.
    unknown = rpc_error(call, REQUESTS[label](db.new_id()), metadata=world["outsider"].metadata)
    assert error.code() == unknown.code()
    assert error.details() == unknown.details()
    assert details(error)[0] == details(unknown)[0]


def test_outsider_calls_changed_nothing(communities_stub, world):
    """After every probe above (and on its own), the stranger's community is as it was."""
    for label in REQUESTS:
        rpc_error(
            getattr(communities_stub, method_of(label)),
            REQUESTS[label](world["foreign"].id),
            metadata=world["outsider"].metadata,
        )
    stranger = world["stranger"]
    [seen] = [
        c
        for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=stranger.metadata).communities
        if c.id == world["foreign"].id
    ]
    assert seen.name == "Not yours" and seen.muted is False
    system = communities_stub.GetSettings(
        pb.GetSettings(community_id=world["foreign"].id), metadata=stranger.metadata
    ).system_messages
    assert system.channel_id != 0 and system.join_messages is True
    outsider_ids = [
        c.id
        for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=world["outsider"].metadata).communities
    ]
    assert outsider_ids == [world["own"].id]
