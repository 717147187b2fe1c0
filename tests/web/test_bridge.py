"""The Connect bridge on both databases: unary calls in JSON and proto with user and bot tokens, errors as Connect
errors with their ErrorInfo and BadRequest details, and Updates.Subscribe streaming through it."""

from __future__ import annotations

import json
import struct
import time

import pytest

from communities.v1 import communities_pb2, invites_pb2, updates_pb2, users_pb2
from tests.web.conftest import (
    ConnectStream,
    assert_connect_error,
    authorization,
    call_json,
    call_proto,
    envelope,
    error_details,
)


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.mark.parametrize("bot", [False, True], ids=["user", "bot"])
def test_unary_json_with_user_and_bot_tokens(console, make_account, bot):
    account = make_account(bot=bot)
    answer = call_json(console, "Users/GetSelf", {}, authorization(account))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"id": str(account.id), "name": account.name, **({"bot": True} if bot else {})}

    created = call_json(console, "Communities/CreateCommunity", {"name": "Through the console"}, authorization(account))
    assert created.status_code == 200, created.text
    community_id = created.json()["id"]
    listed = call_json(console, "Communities/GetCommunities", {}, authorization(account)).json()
    assert [c["id"] for c in listed["communities"]] == [community_id]
    assert listed["communities"][0]["name"] == "Through the console"


def test_unary_proto_codec(console, make_account, communities_stub):
    account = make_account()
    headers = authorization(account)
    me = call_proto(console, "Users/GetSelf", users_pb2.GetSelf(), users_pb2.User, headers)
    assert (me.id, me.name) == (account.id, account.name)
    community = call_proto(
        console,
        "Communities/CreateCommunity",
        communities_pb2.CreateCommunity(name="Proto"),
        communities_pb2.Community,
        headers,
    )
    # The same community, seen over gRPC: the bridge is the same API.
    listed = communities_stub.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
    assert [c.id for c in listed.communities] == [community.id]


def test_missing_and_bad_tokens_are_unauthenticated_with_error_info(console, make_account):
    assert_connect_error(call_json(console, "Users/GetSelf", {}), 401, "unauthenticated", "UNAUTHENTICATED")
    answer = call_json(console, "Users/GetSelf", {}, {"authorization": "Bearer cmt_not-a-token"})
    assert_connect_error(answer, 401, "unauthenticated", "UNAUTHENTICATED")
    bot = make_account(bot=True)
    wrong_scheme = call_json(console, "Users/GetSelf", {}, {"authorization": f"Bearer {bot.token}"})
    assert_connect_error(wrong_scheme, 401, "unauthenticated", "UNAUTHENTICATED")


def test_bad_field_is_invalid_argument_with_bad_request(console, make_account, communities_stub):
    account = make_account()
    answer = call_json(console, "Communities/CreateCommunity", {"name": ""}, authorization(account))
    assert_connect_error(answer, 400, "invalid_argument", "INVALID_ARGUMENT", field="name")
    listed = communities_stub.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
    assert list(listed.communities) == []  # the failed call committed nothing


def test_not_found_and_permission_errors_keep_their_codes(console, make_account):
    owner, stranger = make_account(), make_account()
    created = call_json(console, "Communities/CreateCommunity", {"name": "Mine"}, authorization(owner)).json()
    answer = call_json(
        console, "Communities/EditCommunity", {"community_id": created["id"], "name": "Yours"}, authorization(stranger)
    )
    assert answer.status_code in (403, 404), answer.text
    assert answer.json()["code"] in ("permission_denied", "not_found")


def test_malformed_bodies_are_invalid_argument_with_error_info(console, make_account):
    """Requests connectrpc refuses itself (before our API sees them) carry the details every error of ours does."""
    headers = {"content-type": "application/json", **authorization(make_account())}
    refused = [
        console.post("/communities.v1.Users/GetSelf", content=b"{not json", headers=headers),
        console.post(
            "/communities.v1.Users/GetSelf",
            content=b"\xff\xff\xff",
            headers={**headers, "content-type": "application/proto"},
        ),
        console.post("/communities.v1.Communities/CreateCommunity", content=b'{"name": "\\ud800"}', headers=headers),
        console.post("/communities.v1.Users/GetSelf", content=b"{}", headers={**headers, "connect-timeout-ms": "-5"}),
        console.post("/communities.v1.Users/GetSelf", content=b"{}", headers={**headers, "content-encoding": "gzip"}),
    ]
    for answer in refused:
        assert_connect_error(answer, 400, "invalid_argument", "INVALID_ARGUMENT", field="request")


def test_malformed_stream_request_ends_with_error_info(console, make_account):
    headers = {"content-type": "application/connect+json", **authorization(make_account())}
    answer = console.post("/communities.v1.Updates/Subscribe", content=envelope(b'{"cursor": '), headers=headers)
    assert answer.status_code == 200, answer.text
    flags, length = struct.unpack(">BI", answer.content[:5])
    assert flags & 0x02, answer.content  # the end-of-stream message
    error = json.loads(answer.content[5 : 5 + length])["error"]
    assert error["code"] == "invalid_argument", error
    info, bad_request = error_details(error)
    assert info is not None and info.reason == "INVALID_ARGUMENT" and info.domain == "communities.v1", error
    assert bad_request is not None and bad_request.field_violations[0].field == "request", error


def test_unknown_method_and_codec(console, make_account):
    headers = authorization(make_account())
    # A method that no proto of ours has: not found, which Connect clients read as `unimplemented`.
    assert call_json(console, "Users/NoSuchMethod", {}, headers).status_code == 404
    assert call_json(console, "NoSuchService/GetSelf", {}, headers).status_code == 404
    answer = console.post("/communities.v1.Users/GetSelf", content=b"{}", headers={"content-type": "text/plain"})
    assert answer.status_code == 415
    grpc_proper = console.post(
        "/communities.v1.Users/GetSelf", content=b"", headers={"content-type": "application/grpc"}
    )
    assert grpc_proper.status_code == 415


def test_request_larger_than_the_limit_is_refused(server, console, make_account):
    limit = server.server.settings.max_receive_bytes
    answer = call_json(console, "Communities/CreateCommunity", {"name": "x" * limit}, authorization(make_account()))
    assert answer.status_code == 429 and answer.json()["code"] == "resource_exhausted", answer.text


def test_subscribe_streams_ready_then_a_join_made_over_grpc(
    server, console, make_account, communities_stub, invites_stub
):
    owner, player = make_account(), make_account()
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Live"), metadata=owner.metadata)
    channel_id = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    ).system_messages.channel_id
    invite = invites_stub.CreateInvite(invites_pb2.CreateInvite(channel_id=channel_id), metadata=owner.metadata)
    streams_before = server.app.streams.count

    with ConnectStream(console, "Updates/Subscribe", {}, authorization(owner), updates_pb2.Update) as stream:
        assert stream.response.headers["content-type"] == "application/connect+json"
        ready = stream.next()
        assert ready.WhichOneof("event") == "ready" and ready.cursor
        assert server.app.streams.count == streams_before + 1
        invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
        while (update := stream.next()).WhichOneof("event") != "member_joined":
            pass
        assert update.community_id == community.id
        assert update.member_joined.member.id == player.id
        assert update.member_joined.invite_code == invite.code
    # The browser went away: the gRPC stream behind it ends too, and its bookkeeping with it.
    wait_until(lambda: server.app.streams.count == streams_before)


def test_subscribe_without_token_ends_with_a_connect_error(console):
    with ConnectStream(console, "Updates/Subscribe", {}, {}, updates_pb2.Update) as stream:
        assert stream.next() is None
    assert stream.end["error"]["code"] == "unauthenticated", stream.end
    assert any(d["type"] == "google.rpc.ErrorInfo" for d in stream.end["error"]["details"]), stream.end


def test_subscribe_bad_cursor_is_invalid_argument(console, make_account):
    with ConnectStream(
        console, "Updates/Subscribe", {"cursor": "!!"}, authorization(make_account()), updates_pb2.Update
    ) as stream:
        assert stream.next() is None
    assert stream.end["error"]["code"] in ("invalid_argument", "out_of_range", "failed_precondition"), stream.end


def test_audit_reason_header_reaches_the_api(console, make_account, communities_stub):
    owner = make_account()
    created = call_json(console, "Communities/CreateCommunity", {"name": "Audited"}, authorization(owner)).json()
    headers = {**authorization(owner), "x-audit-log-reason": "season two"}
    edit = {"community_id": created["id"], "name": "Audited 2"}
    assert call_json(console, "Communities/EditCommunity", edit, headers).status_code == 200
    log = communities_stub.GetAuditLog(
        communities_pb2.GetAuditLog(community_id=int(created["id"])), metadata=owner.metadata
    )
    assert [entry.reason for entry in log.entries if entry.action == "community_updated"] == ["season two"]

    # gRPC metadata cannot carry other bytes: refused as a bad field, and nothing changes.
    headers["x-audit-log-reason"] = "caf\u00e9".encode()
    answer = call_json(console, "Communities/EditCommunity", {**edit, "name": "Audited 3"}, headers)
    assert_connect_error(answer, 400, "invalid_argument", "INVALID_ARGUMENT", field="x-audit-log-reason")
    listed = communities_stub.GetCommunities(communities_pb2.GetCommunities(), metadata=owner.metadata)
    assert [c.name for c in listed.communities] == ["Audited 2"]
