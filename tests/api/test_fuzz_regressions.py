"""Regressions for defects tests/api/test_fuzz.py found, each as the smallest request that showed it."""

from __future__ import annotations

import base64
import importlib

import grpc
import pytest

from communities.domain.errors import InvalidArgument
from communities.services import users as users_service
from communities.v1 import communities_pb2, invites_pb2, members_pb2
from tests.conftest import rpc_error
from tests.support.errors import assert_error


def forged_token(text: str) -> str:
    """A page token the way this server spells them (unpadded URL-safe base64 of `p1:key`), around any key."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Keys a client can forge that no token of this server holds. Were INTERNAL: a superscript digit ('²'.isdigit() is
# True, int('²') raises) and a number int() refuses to read (more than 4300 digits); for invites also any number
# past a BIGINT, which reached the query. Were taken as another key: digits of another script (int('١٢٣') is 123)
# and ids from 2**63 (no id this server mints), which the Snowflake column wraps to negative numbers.
FORGED_ID_KEYS = ["p1:²", "p1:\u0661\u0662\u0663", f"p1:{2**63}", f"p1:{2**64}", "p1:" + "9" * 5000]
FORGED_INVITE_KEYS = ["p1:²:a", f"p1:{2**64}:zz", f"p1:{2**63}:a", "p1:" + "9" * 30 + ":a", "p1:" + "9" * 5000 + ":a"]


@pytest.fixture(scope="module")
def owned(make_account, communities_stub):
    owner = make_account()
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Paged"), metadata=owner.metadata)
    return owner, community.id


@pytest.mark.parametrize("key", FORGED_ID_KEYS)
def test_list_members_forged_page_token_is_invalid_argument(members_stub, owned, key):
    """'²' and 5000 digits were INTERNAL (ValueError from int() in paging.decode)."""
    owner, community_id = owned
    request = members_pb2.ListMembers(community_id=community_id, page_token=forged_token(key))
    error = rpc_error(members_stub.ListMembers, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="page_token")


@pytest.mark.parametrize("key", FORGED_ID_KEYS)
def test_removed_members_forged_page_token_is_invalid_argument(members_stub, owned, key):
    """Was INTERNAL, as ListMembers."""
    owner, community_id = owned
    request = members_pb2.GetRemovedMembers(community_id=community_id, page_token=forged_token(key))
    error = rpc_error(members_stub.GetRemovedMembers, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="page_token")


@pytest.mark.parametrize("key", FORGED_INVITE_KEYS)
@pytest.mark.parametrize("scope", ["community_id", "channel_id"])
def test_list_invites_forged_page_token_is_invalid_argument(invites_stub, communities_stub, owned, key, scope):
    """Was INTERNAL: int('²'), and a created_at past a BIGINT reached the query (OverflowError on SQLite,
    DataError 'value out of int64 range' on PostgreSQL)."""
    owner, community_id = owned
    settings = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community_id), metadata=owner.metadata
    )
    scope_id = community_id if scope == "community_id" else settings.system_messages.channel_id
    request = invites_pb2.ListInvites(include_inactive=True, page_token=forged_token(key), **{scope: scope_id})
    error = rpc_error(invites_stub.ListInvites, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="page_token")


def test_real_page_tokens_still_page(members_stub, invites_stub, owned, make_account, join_community):
    """The stricter reading takes every token the server writes."""
    owner, community_id = owned
    for _ in range(2):
        join_community(community_id, make_account())
    first = members_stub.ListMembers(
        members_pb2.ListMembers(community_id=community_id, page_size=1), metadata=owner.metadata
    )
    assert first.next_page_token
    second = members_stub.ListMembers(
        members_pb2.ListMembers(community_id=community_id, page_size=1, page_token=first.next_page_token),
        metadata=owner.metadata,
    )
    assert [m.id for m in second.members] != [m.id for m in first.members]


def test_audit_log_forged_page_token_is_invalid_argument(communities_stub, owned):
    """GetAuditLog reads its token with paging.decode too."""
    if "GetAuditLog" not in communities_pb2.DESCRIPTOR.services_by_name["Communities"].methods_by_name:
        pytest.skip("no audit log in this version of the API")
    owner, community_id = owned
    for key in FORGED_ID_KEYS:
        request = communities_pb2.GetAuditLog(community_id=community_id, page_token=forged_token(key))
        error = rpc_error(communities_stub.GetAuditLog, request, metadata=owner.metadata)
        assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="page_token")


@pytest.mark.parametrize("key", ["p1:u:²", "p1:u:\u0661", "p1:u:" + "9" * 5000])
def test_subscribe_forged_cursor_is_invalid_argument(grpc_channel, owned, key):
    """Updates.Subscribe reads its cursor with paging.decode_parts and int(): '²' was INTERNAL."""
    try:
        updates_pb2 = importlib.import_module("communities.v1.updates_pb2")
        updates_pb2_grpc = importlib.import_module("communities.v1.updates_pb2_grpc")
    except ImportError:
        pytest.skip("no update stream in this version of the API")
    owner, _ = owned
    stream = updates_pb2_grpc.UpdatesStub(grpc_channel).Subscribe(
        updates_pb2.Subscribe(cursor=forged_token(key)), metadata=owner.metadata, timeout=10
    )
    with pytest.raises(grpc.RpcError) as info:
        next(stream)
    assert_error(info.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="cursor")


@pytest.mark.parametrize("value", ["²", "\u0661\u0662\u0663", "9" * 5000])
def test_revoke_refuses_what_is_not_a_decimal_id(server, value):
    """`communities tokens revoke ²` raised ValueError (int('²')) instead of the usage error."""
    with pytest.raises(InvalidArgument):
        server.run(users_service.revoke(server.app, value))


# --- NUL (U+0000) in text: PostgreSQL refuses it in a text column, so these were INTERNAL there (and stored on
# SQLite). Fixed outside the fuzzer's files (validation.no_nul, invites._check_code); kept here with the defects.

CODE_METHODS = [
    ("LookupInvite", invites_pb2.LookupInvite),
    ("UseInvite", invites_pb2.UseInvite),
    ("DeleteInvite", invites_pb2.DeleteInvite),
    ("GetTargetUsers", invites_pb2.GetTargetUsers),
    ("GetTargetUsersJobStatus", invites_pb2.GetTargetUsersJobStatus),
]


@pytest.mark.parametrize("code", ["a\x00b", "\x00", "\u00b4v\x00"])
@pytest.mark.parametrize(("method", "message"), CODE_METHODS, ids=[name for name, _ in CODE_METHODS])
def test_invite_code_with_nul_is_unknown_invite(invites_stub, owned, method, message, code):
    owner, _ = owned
    error = rpc_error(getattr(invites_stub, method), message(code=code), metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_INVITE")


def test_update_target_users_code_with_nul_is_unknown_invite(invites_stub, owned):
    owner, _ = owned
    request = invites_pb2.UpdateTargetUsers(code="a\x00b", target_users_file=b"user_id\n1\n")
    error = rpc_error(invites_stub.UpdateTargetUsers, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_INVITE")


def test_audit_reason_with_nul_is_invalid_argument_and_changes_nothing(communities_stub, make_account):
    """`x-audit-log-reason: %00` (percent-decoded to NUL) made every change that publishes an event INTERNAL."""
    owner = make_account()
    community = communities_stub.CreateCommunity(
        communities_pb2.CreateCommunity(name="Before"), metadata=owner.metadata
    )
    request = communities_pb2.EditCommunity(community_id=community.id, name="After")
    metadata = (*owner.metadata, ("x-audit-log-reason", "%00"))
    error = rpc_error(communities_stub.EditCommunity, request, metadata=metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="x-audit-log-reason")
    listed = communities_stub.GetCommunities(communities_pb2.GetCommunities(), metadata=owner.metadata)
    assert [c.name for c in listed.communities] == ["Before"]


def test_ban_reason_with_nul_is_invalid_argument_and_bans_nobody(
    members_stub, communities_stub, make_account, join_community
):
    owner, player = make_account(), make_account()
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Bans"), metadata=owner.metadata)
    join_community(community.id, player)
    request = members_pb2.RemoveMembers(community_id=community.id, member_ids=[player.id], until={}, reason="a\x00b")
    error = rpc_error(members_stub.RemoveMembers, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="reason")
    members = members_stub.GetMembers(
        members_pb2.GetMembers(community_id=community.id, member_ids=[player.id]), metadata=owner.metadata
    )
    assert [m.id for m in members.members] == [player.id]


def test_message_text_with_nul_is_invalid_argument(grpc_channel, communities_stub, owned):
    try:
        messages_pb2 = importlib.import_module("communities.v1.messages_pb2")
        messages_pb2_grpc = importlib.import_module("communities.v1.messages_pb2_grpc")
    except ImportError:
        pytest.skip("no messages in this version of the API")
    owner, community_id = owned
    settings = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community_id), metadata=owner.metadata
    )
    request = messages_pb2.SendMessage(channel_id=settings.system_messages.channel_id, text="a\x00b")
    error = rpc_error(messages_pb2_grpc.MessagesStub(grpc_channel).SendMessage, request, metadata=owner.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="text")
