"""Requests whose bytes do not parse as the request message (what a buggy or hostile client can send): they get a
documented error with ErrorInfo, after authentication, like every other bad request."""

from __future__ import annotations

import grpc
import pytest

from communities.v1 import communities_pb2 as pb
from communities.v1 import users_pb2
from tests.conftest import rpc_error
from tests.support.errors import assert_error

# CreateCommunity{name = "a\xffb"}: field 1, length 3, not UTF-8 (proto3 strings must be).
BAD_UTF8_NAME = b"\x0a\x03a\xffb"
# A length prefix running past the end of the message.
TRUNCATED = b"\x0a\x10abc"
# Field number 0 does not exist.
CORRUPT = b"\x00\x01"


def raw_call(grpc_channel, method: str, response_type):
    return grpc_channel.unary_unary(
        method, request_serializer=lambda body: body, response_deserializer=response_type.FromString
    )


@pytest.fixture(scope="module")
def create_raw(grpc_channel):
    return raw_call(grpc_channel, "/communities.v1.Communities/CreateCommunity", pb.Community)


def test_raw_call_path_works_for_well_formed_bytes(create_raw, make_account):
    """The same generic call with the bytes of a proper request succeeds (so the failures below are about the
    bytes)."""
    account = make_account()
    created = create_raw(pb.CreateCommunity(name="raw but fine").SerializeToString(), metadata=account.metadata)
    assert created.name == "raw but fine" and created.owner


@pytest.mark.parametrize("body", [BAD_UTF8_NAME, TRUNCATED], ids=["bad utf-8", "truncated"])
def test_unparsable_request_is_invalid_argument(create_raw, communities_stub, make_account, body):
    account = make_account()
    error = rpc_error(create_raw, body, metadata=account.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    listed = communities_stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata)
    assert list(listed.communities) == []


def test_unparsable_request_without_token_is_unauthenticated(create_raw):
    error = rpc_error(create_raw, CORRUPT)
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_unparsable_get_users_is_invalid_argument(grpc_channel, make_account):
    get_users = raw_call(grpc_channel, "/communities.v1.Users/GetUsers", users_pb2.UserList)
    account = make_account()
    error = rpc_error(get_users, b"\x0a\x05\x01\x02", metadata=account.metadata)  # packed fixed64 cut short
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
