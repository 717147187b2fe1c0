"""Authentication on every RPC (Bearer for people, Bot for bots), and the two public services: health and
reflection."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from communities.services import users as users_service
from communities.v1 import communities_pb2 as pb
from communities.v1 import users_pb2
from tests.conftest import rpc_error
from tests.support.errors import assert_error

# Every RPC of the foundation, with a request that a member/owner could send successfully.
RPCS = {
    "Communities.GetCommunities": ("communities", "GetCommunities", lambda cid: pb.GetCommunities()),
    "Communities.CreateCommunity": ("communities", "CreateCommunity", lambda cid: pb.CreateCommunity(name="x")),
    "Communities.EditCommunity": ("communities", "EditCommunity", lambda cid: pb.EditCommunity(community_id=cid)),
    "Communities.LeaveCommunity": ("communities", "LeaveCommunity", lambda cid: pb.LeaveCommunity(community_id=cid)),
    "Communities.DeleteCommunity": (
        "communities",
        "DeleteCommunity",
        lambda cid: pb.DeleteCommunity(community_id=cid),
    ),
    "Communities.EditSettings": (
        "communities",
        "EditSettings",
        lambda cid: pb.EditSettings(
            community_id=cid, settings=pb.CommunitySettings(system_messages=pb.SystemMessages(join_messages=False))
        ),
    ),
    "Communities.GetSettings": ("communities", "GetSettings", lambda cid: pb.GetSettings(community_id=cid)),
    "Communities.SetMuted": ("communities", "SetMuted", lambda cid: pb.SetMuted(community_id=cid, muted=True)),
    "Users.GetSelf": ("users", "GetSelf", lambda cid: users_pb2.GetSelf()),
    "Users.GetUsers": ("users", "GetUsers", lambda cid: users_pb2.GetUsers(user_ids=[1])),
}

# Requests that would fail validation if authentication came second.
INVALID_REQUESTS = {
    "Communities.CreateCommunity": lambda cid: pb.CreateCommunity(name=""),
    "Communities.EditCommunity": lambda cid: pb.EditCommunity(community_id=cid, name="\x00"),
    "Communities.GetSettings": lambda cid: pb.GetSettings(community_id=0),
    "Users.GetUsers": lambda cid: users_pb2.GetUsers(user_ids=list(range(1, 200))),
}


@pytest.fixture(scope="module")
def stubs(communities_stub, users_stub):
    return {"communities": communities_stub, "users": users_stub}


@pytest.fixture(scope="module")
def victim(make_account, create, add_member):
    """A member (not owner) of a community, whose credentials the bad metadata below is built from."""
    owner, person, bot = make_account("auth owner"), make_account("auth person"), make_account("auth bot", bot=True)
    community = create(owner, "Auth target")
    add_member(community.id, person)
    add_member(community.id, bot)
    return {"owner": owner, "person": person, "bot": bot, "community": community}


def bad_metadata(victim, case: str):
    person, bot = victim["person"], victim["bot"]
    return {
        "no metadata": None,
        "other metadata only": (("x-user", str(person.id)),),
        "garbage token": (("authorization", "Bearer not-a-token"),),
        "garbage token with prefix": (("authorization", "Bearer cmt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),),
        "token without scheme": (("authorization", person.token),),
        "Bearer with a bot token": (("authorization", f"Bearer {bot.token}"),),
        "Bot with a user token": (("authorization", f"Bot {person.token}"),),
        "unknown scheme": (("authorization", f"Token {person.token}"),),
        "Basic scheme": (("authorization", f"Basic {person.token}"),),
        "scheme only": (("authorization", "Bearer"),),
        "scheme and space": (("authorization", "Bearer "),),
        "empty value": (("authorization", ""),),
        "token with extra word": (("authorization", f"Bearer {person.token} extra"),),
        "truncated token": (("authorization", f"Bearer {person.token[:-1]}"),),
        "user id as token": (("authorization", f"Bearer {person.id}"),),
    }[case]


BAD_CASES = [
    "no metadata",
    "other metadata only",
    "garbage token",
    "garbage token with prefix",
    "token without scheme",
    "Bearer with a bot token",
    "Bot with a user token",
    "unknown scheme",
    "Basic scheme",
    "scheme only",
    "scheme and space",
    "empty value",
    "token with extra word",
    "truncated token",
    "user id as token",
]


def call(stubs, rpc: str, request, metadata):
    service, method, _ = RPCS[rpc]
    return getattr(stubs[service], method)(request, metadata=metadata)


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("rpc", list(RPCS))
def test_bad_credentials_are_unauthenticated(stubs, victim, rpc, case):
    request = RPCS[rpc][2](victim["community"].id)
    error = rpc_error(call, stubs, rpc, request, bad_metadata(victim, case))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_bad_credentials_changed_nothing(communities_stub, victim):
    """Every state-changing call above was refused: the member is still in, unmuted, settings untouched."""
    for account in (victim["person"], victim["bot"]):
        [seen] = communities_stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata).communities
        assert seen.id == victim["community"].id and seen.name == "Auth target" and seen.muted is False
    system = communities_stub.GetSettings(
        pb.GetSettings(community_id=victim["community"].id), metadata=victim["owner"].metadata
    ).system_messages
    assert system.join_messages is True


@pytest.mark.parametrize("rpc", list(INVALID_REQUESTS))
def test_authentication_comes_before_validation(stubs, victim, rpc):
    request = INVALID_REQUESTS[rpc](victim["community"].id)
    error = rpc_error(call, stubs, rpc, request, (("authorization", "Bearer nope"),))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


@pytest.mark.parametrize("who", ["person", "bot"])
def test_right_scheme_works(users_stub, communities_stub, victim, who):
    account = victim[who]
    me = users_stub.GetSelf(users_pb2.GetSelf(), metadata=account.metadata)
    assert (me.id, me.bot) == (account.id, who == "bot")
    listed = communities_stub.GetCommunities(pb.GetCommunities(), metadata=account.metadata)
    assert [c.id for c in listed.communities] == [victim["community"].id]


@pytest.mark.parametrize(
    "template",
    ["bearer {token}", "BEARER {token}", "Bearer  {token}", " Bearer {token} "],
    ids=["lowercase scheme", "uppercase scheme", "two spaces", "surrounding spaces"],
)
def test_scheme_is_case_insensitive_and_spacing_tolerated(users_stub, make_account, template):
    account = make_account()
    me = users_stub.GetSelf(users_pb2.GetSelf(), metadata=(("authorization", template.format(token=account.token)),))
    assert me.id == account.id


def get_self(users_stub, metadata):
    return users_stub.GetSelf(users_pb2.GetSelf(), metadata=metadata)


def assert_unauthenticated(users_stub, communities_stub, metadata):
    assert_error(rpc_error(get_self, users_stub, metadata), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert_error(
        rpc_error(communities_stub.GetCommunities, pb.GetCommunities(), metadata=metadata),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )
    assert_error(
        rpc_error(communities_stub.CreateCommunity, pb.CreateCommunity(name="x"), metadata=metadata),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )


def bearer(token: str, bot: bool = False):
    return (("authorization", f"{'Bot' if bot else 'Bearer'} {token}"),)


@pytest.mark.parametrize("bot", [False, True], ids=["person", "bot"])
def test_revoked_token_stops_working_and_another_keeps_working(server, users_stub, communities_stub, make_account, bot):
    account = make_account(bot=bot)
    second = server.run(users_service.create_token(server.app, account.id))
    assert second.token != account.token
    assert get_self(users_stub, account.metadata).id == account.id
    assert get_self(users_stub, bearer(second.token, bot)).id == account.id

    assert server.run(users_service.revoke(server.app, account.token)) == 1
    assert_unauthenticated(users_stub, communities_stub, account.metadata)
    me = get_self(users_stub, bearer(second.token, bot))
    assert (me.id, me.bot) == (account.id, bot)
    created = communities_stub.CreateCommunity(
        pb.CreateCommunity(name="still here"), metadata=bearer(second.token, bot)
    )
    assert created.owner is True

    # Revoking again finds nothing; the revoked token stays revoked.
    assert server.run(users_service.revoke(server.app, account.token)) == 0
    assert_unauthenticated(users_stub, communities_stub, account.metadata)


def test_revoke_by_user_id_revokes_every_token_of_that_user_only(server, users_stub, communities_stub, make_account):
    account, bystander = make_account(), make_account()
    second = server.run(users_service.create_token(server.app, account.id))
    assert server.run(users_service.revoke(server.app, str(account.id))) == 2
    assert_unauthenticated(users_stub, communities_stub, account.metadata)
    assert_unauthenticated(users_stub, communities_stub, bearer(second.token))
    assert get_self(users_stub, bystander.metadata).id == bystander.id


def test_new_token_after_revoking_all_works(server, users_stub, make_account):
    account = make_account()
    server.run(users_service.revoke(server.app, str(account.id)))
    fresh = server.run(users_service.create_token(server.app, account.id))
    assert get_self(users_stub, bearer(fresh.token)).id == account.id


def test_unauthenticated_message_is_not_revealing_the_token(users_stub, make_account):
    account = make_account()
    error = rpc_error(get_self, users_stub, (("authorization", f"Bot {account.token}"),))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    assert account.token not in (error.details() or "")


# ------------------------------------------------------------------------------------------------ health


@pytest.mark.parametrize("service", ["", "communities.v1.Communities", "communities.v1.Users"])
def test_health_needs_no_token(grpc_channel, service):
    stub = health_pb2_grpc.HealthStub(grpc_channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=service))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_unknown_service_is_not_found(grpc_channel):
    stub = health_pb2_grpc.HealthStub(grpc_channel)
    error = rpc_error(stub.Check, health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# -------------------------------------------------------------------------------------------- reflection

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def reflect(grpc_channel, request: reflection_pb2.ServerReflectionRequest, *, v1: bool = False):
    if v1:
        stream = grpc_channel.stream_stream(
            V1_METHOD,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
    else:
        stream = reflection_pb2_grpc.ServerReflectionStub(grpc_channel).ServerReflectionInfo
    [answer] = list(stream(iter([request]), timeout=10))
    return answer


@pytest.mark.parametrize("v1", [False, True], ids=["v1alpha", "v1"])
def test_reflection_lists_services_without_token(grpc_channel, v1):
    answer = reflect(grpc_channel, reflection_pb2.ServerReflectionRequest(list_services=""), v1=v1)
    names = {service.name for service in answer.list_services_response.service}
    assert {"communities.v1.Communities", "communities.v1.Users", "grpc.health.v1.Health"} <= names
    assert "grpc.reflection.v1alpha.ServerReflection" in names
    assert "grpc.reflection.v1.ServerReflection" not in names


@pytest.mark.parametrize("v1", [False, True], ids=["v1alpha", "v1"])
def test_reflection_describes_the_api_without_token(grpc_channel, v1):
    answer = reflect(
        grpc_channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="communities.v1.Communities"),
        v1=v1,
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    services = {(f.package, s.name): [m.name for m in s.method] for f in files for s in f.service}
    assert set(services[("communities.v1", "Communities")]) >= {
        "GetCommunities",
        "CreateCommunity",
        "EditCommunity",
        "LeaveCommunity",
        "DeleteCommunity",
        "EditSettings",
        "GetSettings",
        "SetMuted",
    }


def test_reflection_ignores_bad_credentials(grpc_channel):
    stream = reflection_pb2_grpc.ServerReflectionStub(grpc_channel).ServerReflectionInfo
    [answer] = list(
        stream(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            metadata=(("authorization", "Bearer garbage"),),
            timeout=10,
        )
    )
    assert "communities.v1.Users" in {service.name for service in answer.list_services_response.service}
