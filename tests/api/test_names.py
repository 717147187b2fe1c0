"""Community names: 1..100 characters after trimming, no control characters, on create and on edit."""

from __future__ import annotations

import grpc
import pytest

from communities.v1 import communities_pb2 as pb
from tests.conftest import rpc_error
from tests.support.errors import assert_error

VALID = {
    "one character": ("x", "x"),
    "100 characters": ("n" * 100, "n" * 100),
    "100 after trimming": ("  " + "n" * 100 + "   ", "n" * 100),
    "trimmed": ("   Padded Name  ", "Padded Name"),
    "inner spaces kept": ("a  b", "a  b"),
    "accents and CJK": ("Café 日本語 Ελληνικά", "Café 日本語 Ελληνικά"),
    "emoji": ("🎮 Gamers 🐉", "🎮 Gamers 🐉"),
    "100 emoji": ("🐉" * 100, "🐉" * 100),
    "right-to-left": ("مجتمع", "مجتمع"),
}

INVALID = {
    "empty": "",
    "spaces only": "   ",
    "whitespace only": " \t \u3000 ",
    "101 characters": "n" * 101,
    "101 emoji": "🐉" * 101,
    "101 after trimming": " " + "n" * 101 + " ",
    "NUL inside": "bad\x00name",
    "NUL at the end": "badname\x00",
    "NUL at the start": "\x00badname",
    "newline inside": "two\nlines",
    "carriage return inside": "two\rlines",
    "tab inside": "tab\tname",
    "escape": "\x1b[31mred",
    "escape at the end": "red\x1b",
    "DEL": "del\x7fname",
    "C1 control": "c1\x85name",
    "line separator": "line\u2028sep",
    "paragraph separator": "para\u2029sep",
}


def names(stub, account) -> list[str]:
    return [c.name for c in stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata).communities]


@pytest.fixture(scope="module")
def owner(make_account):
    return make_account("name tester")


@pytest.mark.parametrize("label", list(VALID))
def test_create_accepts_valid_name(communities_stub, owner, label):
    given, stored = VALID[label]
    community = communities_stub.CreateCommunity(pb.CreateCommunity(name=given), metadata=owner.metadata)
    assert community.name == stored
    listed = {
        c.id: c.name for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=owner.metadata).communities
    }
    assert listed[community.id] == stored


@pytest.mark.parametrize("label", list(INVALID))
def test_create_rejects_invalid_name(communities_stub, make_account, label):
    account = make_account()
    error = rpc_error(
        communities_stub.CreateCommunity, pb.CreateCommunity(name=INVALID[label]), metadata=account.metadata
    )
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="name")
    assert names(communities_stub, account) == []


def test_create_without_name_field_is_rejected(communities_stub, make_account):
    account = make_account()
    error = rpc_error(communities_stub.CreateCommunity, pb.CreateCommunity(), metadata=account.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="name")
    assert names(communities_stub, account) == []


@pytest.fixture(scope="module")
def editable(communities_stub, owner):
    return communities_stub.CreateCommunity(pb.CreateCommunity(name="Editable"), metadata=owner.metadata)


@pytest.mark.parametrize("label", list(VALID))
def test_edit_accepts_valid_name(communities_stub, owner, editable, label):
    given, stored = VALID[label]
    edited = communities_stub.EditCommunity(
        pb.EditCommunity(community_id=editable.id, name=given), metadata=owner.metadata
    )
    assert edited.name == stored
    listed = {
        c.id: c.name for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=owner.metadata).communities
    }
    assert listed[editable.id] == stored


@pytest.mark.parametrize("label", list(INVALID))
def test_edit_rejects_invalid_name_and_keeps_the_old_one(communities_stub, owner, editable, label):
    communities_stub.EditCommunity(pb.EditCommunity(community_id=editable.id, name="Kept"), metadata=owner.metadata)
    error = rpc_error(
        communities_stub.EditCommunity,
        pb.EditCommunity(community_id=editable.id, name=INVALID[label]),
        metadata=owner.metadata,
    )
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="name")
    listed = {
        c.id: c.name for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=owner.metadata).communities
    }
    assert listed[editable.id] == "Kept"


def test_edit_with_empty_name_present_is_rejected(communities_stub, owner, editable):
    """`name` set to "" is present (optional field), so it is validated, unlike an absent name."""
    communities_stub.EditCommunity(pb.EditCommunity(community_id=editable.id, name="Kept"), metadata=owner.metadata)
    request = pb.EditCommunity(community_id=editable.id, name="")
    assert request.HasField("name")
    error = rpc_error(communities_stub.EditCommunity, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="name")
    listed = {
        c.id: c.name for c in communities_stub.GetCommunities(pb.GetCommunities(), metadata=owner.metadata).communities
    }
    assert listed[editable.id] == "Kept"
