"""Fixtures: every API test module runs against a real server, once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest

from communities.services import members as members_service
from communities.services import users as users_service
from communities.v1 import (
    channels_pb2_grpc,
    communities_pb2_grpc,
    invites_pb2_grpc,
    members_pb2_grpc,
    roles_pb2_grpc,
    users_pb2_grpc,
)
from tests.support.postgres import create_database, free_port, postgres_server
from tests.support.server import AioServerFacade

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db')}/communities.db"
    server = request.getfixturevalue("postgres_url")
    return asyncio.run(create_database(server))


@pytest.fixture(scope="module")
def grpc_addr():
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def _grpc_server(database_url):
    """Overrides pytest-grpc's synchronous server with the real grpc.aio server (see support/server.py)."""
    facade = AioServerFacade(database_url)
    yield facade


@pytest.fixture(scope="module")
def grpc_add_to_server():
    return lambda servicer, server: None


@pytest.fixture(scope="module")
def grpc_servicer():
    return None


@pytest.fixture(scope="module")
def server(grpc_server) -> AioServerFacade:
    return grpc_server


@pytest.fixture(scope="module")
def replica(server, database_url):
    """A second server (worker id 1) on the module's database, for races and streams across replicas."""
    second = AioServerFacade(database_url, worker_id=1, listen=f"127.0.0.1:{free_port()}")
    second.start()
    yield second
    second.stop()


@pytest.fixture(scope="module")
def replica_channel(replica):
    channel = grpc.insecure_channel(replica.listen)
    yield channel
    channel.close()


@pytest.fixture(scope="module")
def communities_stub(grpc_channel):
    return communities_pb2_grpc.CommunitiesStub(grpc_channel)


@pytest.fixture(scope="module")
def users_stub(grpc_channel):
    return users_pb2_grpc.UsersStub(grpc_channel)


@pytest.fixture(scope="module")
def roles_stub(grpc_channel):
    return roles_pb2_grpc.RolesStub(grpc_channel)


@pytest.fixture(scope="module")
def channels_stub(grpc_channel):
    return channels_pb2_grpc.ChannelsStub(grpc_channel)


@pytest.fixture(scope="module")
def members_stub(grpc_channel):
    return members_pb2_grpc.MembersStub(grpc_channel)


@pytest.fixture(scope="module")
def invites_stub(grpc_channel):
    return invites_pb2_grpc.InvitesStub(grpc_channel)


class Account:
    """A user or bot created through the same service as the CLI, with its call metadata."""

    def __init__(self, credentials):
        self.id = credentials.user.id
        self.name = credentials.user.name
        self.bot = credentials.user.bot
        self.token = credentials.token
        self.metadata = (("authorization", f"{'Bot' if self.bot else 'Bearer'} {self.token}"),)


_names = itertools.count(1)


@pytest.fixture(scope="module")
def make_account(server):
    def make(name: str | None = None, *, bot: bool = False) -> Account:
        name = name or f"player-{next(_names)}"
        return Account(server.run(users_service.create_user(server.app, name, bot=bot)))

    return make


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    """Call a stub method expecting an error; returns the RpcError."""
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.fixture(scope="module")
def join_community(server):
    """Adds an account to a community the way an accepted invite does (services.members.join), for tests of
    services that need members before invites exist in the test."""

    def join(community_id: int, account: Account, invite_code: str | None = None) -> bool:
        async def run():
            async with server.app.db.unit_of_work(write=True) as uow:
                return await members_service.join(uow, server.app, community_id, account.id, invite_code=invite_code)

        return server.run(run())

    return join
