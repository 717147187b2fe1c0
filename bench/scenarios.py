"""What the load generator calls. One entry in SCENARIOS per scenario.

To add a scenario, write
- a setup coroutine: runs once in the bench process against the running server (create principals with
  `ctx.principal(...)`, data with `ctx.channel`), checks that one call works, and returns a `Workload`;
- a request factory `(workload, slot, seq) -> protobuf message`: runs in the client processes for every call;
  `slot` is the in-flight slot (0..in_flight-1) making the call, `seq` counts that slot's calls;
and register a `Scenario` under a new name. The client processes look scenarios up by name, so setup and factory
may be any callables, but a Workload must pickle (it travels to the client processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from communities.v1 import communities_pb2, communities_pb2_grpc

if TYPE_CHECKING:
    import grpc

    from bench.server import BenchServer, Principal

COMMUNITIES = "/communities.v1.Communities/"
CEILING = "ceiling"
READER_COMMUNITIES = 10  # how many communities the GetCommunities caller is in

Metadata = tuple[tuple[str, str], ...]


class SetupError(Exception):
    """A scenario's setup did not leave the server in the expected state."""


@dataclass(frozen=True)
class Workload:
    """What the client processes need to make a scenario's calls. Made once by the scenario's setup."""

    # `authorization` values; in-flight slot i sends authorizations[i % len]. Empty: no metadata at all.
    authorizations: tuple[str, ...] = ()
    # Anything else the request factory needs (ids made during setup, ...). Must pickle.
    params: dict[str, Any] = field(default_factory=dict)

    def metadata(self, slot: int) -> Metadata | None:
        if not self.authorizations:
            return None
        return (("authorization", self.authorizations[slot % len(self.authorizations)]),)


@dataclass
class SetupContext:
    server: BenchServer
    channel: grpc.aio.Channel  # to the server under test, for setup calls
    clients: int  # client processes
    in_flight: int  # calls in flight over all client processes

    async def principal(self, name: str, *, bot: bool) -> Principal:
        """A new user or bot, made with `communities users create`."""
        return await self.server.create_principal(name, bot=bot)

    def communities(self) -> communities_pb2_grpc.CommunitiesStub:
        return communities_pb2_grpc.CommunitiesStub(self.channel)


RequestFactory = Callable[[Workload, int, int], Message]


@dataclass(frozen=True)
class Scenario:
    label: str  # for tables and the plot
    method: str  # full method path, /package.Service/Method
    setup: Callable[[SetupContext], Awaitable[Workload]]
    request: RequestFactory
    description: str = ""


# ------------------------------------------------------------------------------------------------ ceiling


async def setup_ceiling(ctx: SetupContext) -> Workload:
    response = await health_pb2_grpc.HealthStub(ctx.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        raise SetupError(f"health check answered {response.status}")
    return Workload()


_HEALTH_CHECK = health_pb2.HealthCheckRequest()


def request_ceiling(workload: Workload, slot: int, seq: int) -> Message:
    return _HEALTH_CHECK


# ---------------------------------------------------------------------------------------------- GetCommunities


async def setup_get_communities(ctx: SetupContext) -> Workload:
    """A person (Bearer token) in READER_COMMUNITIES communities, each created by that person."""
    reader = await ctx.principal("bench reader", bot=False)
    stub = ctx.communities()
    for number in range(1, READER_COMMUNITIES + 1):
        await stub.CreateCommunity(
            communities_pb2.CreateCommunity(name=f"bench community {number}"), metadata=reader.metadata, timeout=10
        )
    listed = await stub.GetCommunities(communities_pb2.GetCommunities(), metadata=reader.metadata, timeout=10)
    if len(listed.communities) != READER_COMMUNITIES:
        raise SetupError(f"GetCommunities listed {len(listed.communities)} communities, expected {READER_COMMUNITIES}")
    return Workload(authorizations=(reader.authorization,))


_GET_COMMUNITIES = communities_pb2.GetCommunities()


def request_get_communities(workload: Workload, slot: int, seq: int) -> Message:
    return _GET_COMMUNITIES


# --------------------------------------------------------------------------------------------- CreateCommunity


async def setup_create_community(ctx: SetupContext) -> Workload:
    """One bot per client process (bots are not limited to 100 communities); every call creates a community."""
    bots = await asyncio.gather(*(ctx.principal(f"bench creator {index}", bot=True) for index in range(ctx.clients)))
    stub = ctx.communities()
    for bot in bots:
        created = await stub.CreateCommunity(
            communities_pb2.CreateCommunity(name="bench setup"), metadata=bot.metadata, timeout=10
        )
        if not created.owner:
            raise SetupError("CreateCommunity returned a community the caller does not own")
    return Workload(authorizations=tuple(bot.authorization for bot in bots))


def request_create_community(workload: Workload, slot: int, seq: int) -> Message:
    return communities_pb2.CreateCommunity(name=f"bench {slot}-{seq}")


# ---------------------------------------------------------------------------------------------------- registry

SCENARIOS: dict[str, Scenario] = {
    CEILING: Scenario(
        label="Health/Check (ceiling)",
        method="/grpc.health.v1.Health/Check",
        setup=setup_ceiling,
        request=request_ceiling,
        description="the server's own trivial health check, same interceptor stack, no token",
    ),
    "get_communities": Scenario(
        label="GetCommunities",
        method=COMMUNITIES + "GetCommunities",
        setup=setup_get_communities,
        request=request_get_communities,
        description=f"a person (Bearer token) in {READER_COMMUNITIES} communities lists them",
    ),
    "create_community": Scenario(
        label="CreateCommunity",
        method=COMMUNITIES + "CreateCommunity",
        setup=setup_create_community,
        request=request_create_community,
        description="bots (one per client process) each call creates a community with its #general channel",
    ),
}
