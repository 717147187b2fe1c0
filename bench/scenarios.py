"""What the load generator calls. One entry in SCENARIOS per scenario.

To add a scenario, write
- a setup coroutine: runs once in the bench process against the running server (create principals with
  `ctx.principal(...)`, data with `ctx.channel`), checks that one call works, and returns a `Workload`;
- a request factory `(workload, slot, seq) -> protobuf message`: runs in the client processes for every call;
  `slot` is the in-flight slot (0..in_flight-1) making the call, `seq` counts that slot's calls in this job. It
  may return a `Call` instead, to send its own metadata (a different user per call);
and register a `Scenario` under a new name. The client processes look scenarios up by name, so setup and factory
may be any callables, but a Workload must pickle (it travels to the client processes). Optional: status codes
that are an expected outcome rather than an error (`expected`), a hook that sees each call's outcome in the
client process (`observe`), and a check after all runs (`verify`) whose verdict goes into the results.

A slot always lives in the same client process, and client processes live for the whole bench, so a factory
may keep per-slot state in a module-level variable across jobs (runs): the invite scenarios do, to give every
call a user that has not joined yet.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    permissions_pb2,
    roles_pb2,
    roles_pb2_grpc,
)

if TYPE_CHECKING:
    import grpc

    from bench.server import BenchServer, Principal

COMMUNITIES = "/communities.v1.Communities/"
ROLES = "/communities.v1.Roles/"
CHANNELS = "/communities.v1.Channels/"
INVITES = "/communities.v1.Invites/"
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


@dataclass(frozen=True)
class Call:
    """What a request factory returns when the call needs its own metadata (e.g. a different user each call)."""

    request: Message
    metadata: Metadata | None


def auth(authorization: str) -> Metadata:
    return (("authorization", authorization),)


@dataclass
class SetupContext:
    server: BenchServer
    channel: grpc.aio.Channel  # to the server under test, for setup calls (open until the end of the bench)
    clients: int  # client processes
    in_flight: int  # calls in flight over all client processes
    workdir: Path  # the bench's temporary directory (database, server log, user lists)
    # Seconds of calls (warm-up included) each scenario will see over the whole bench: sizes data that calls use up.
    seconds_per_scenario: float = 60.0
    fresh_users: int = 30_000  # the pool of people the invite scenarios join with (see fresh_people)
    shared: dict[str, Any] = field(default_factory=dict)  # data shared between scenarios' setups

    async def principal(self, name: str, *, bot: bool) -> Principal:
        """A new user or bot, made with `communities users create`."""
        return await self.server.create_principal(name, bot=bot)

    async def fresh_people(self) -> tuple[str, ...]:
        """`authorization` values of `fresh_users` people made for the invite scenarios in one process (the CLI
        makes one per process start); made once, shared by the scenarios (they join different communities).

        Not in the background of other setup: the helper mints ids with the CLI's worker id, like every
        `communities users create` the setups run, and two processes minting with one worker id in the same
        millisecond make the same id (UNIQUE constraint failed: users.id)."""
        if "fresh_people" not in self.shared:
            made = await self.server.create_people(self.fresh_users, self.workdir / "fresh-people.txt")
            self.shared["fresh_people"] = tuple(made)
        return self.shared["fresh_people"]

    def communities(self) -> communities_pb2_grpc.CommunitiesStub:
        return communities_pb2_grpc.CommunitiesStub(self.channel)

    def roles(self) -> roles_pb2_grpc.RolesStub:
        return roles_pb2_grpc.RolesStub(self.channel)

    def channels(self) -> channels_pb2_grpc.ChannelsStub:
        return channels_pb2_grpc.ChannelsStub(self.channel)

    def members(self) -> members_pb2_grpc.MembersStub:
        return members_pb2_grpc.MembersStub(self.channel)

    def invites(self) -> invites_pb2_grpc.InvitesStub:
        return invites_pb2_grpc.InvitesStub(self.channel)


@dataclass(frozen=True)
class Check:
    """A scenario's check after all runs: did the calls do what the scenario claims?"""

    ok: bool
    text: str


RequestFactory = Callable[[Workload, int, int], Message | Call]
# (workload, slot, status code name or None for OK), called in the client process after each call.
Observer = Callable[[Workload, int, str | None], None]
# (context, workload, calls answered over the whole bench by status ("OK", "NOT_FOUND", ...), warm-ups included)
Verifier = Callable[[SetupContext, Workload, Counter[str]], Awaitable[Check]]


@dataclass(frozen=True)
class Scenario:
    label: str  # for tables and the plot
    method: str  # full method path, /package.Service/Method
    setup: Callable[[SetupContext], Awaitable[Workload]]
    request: RequestFactory
    description: str = ""
    # Status codes (names) that are an expected outcome of this scenario: counted apart, not as errors.
    expected: frozenset[str] = frozenset()
    observe: Observer | None = None
    verify: Verifier | None = None


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


# ------------------------------------------------------------------------- ExplainPermissions and GetChannels

P = permissions_pb2
PERMISSION_CHANNELS = 50  # the community's channels, `general` included
PERMISSION_ROLES = 30
MEMBER_ROLE_PRIORITIES = (3, 9, 15, 21, 27)  # the roles the member holds
EXPLAINED_CHANNEL = 4  # index of the channel ExplainPermissions asks about: private, opened by the member's roles
# Bits roles may have: all but ADMINISTRATOR (which would skip the channel overrides entirely).
ROLE_BITS = (
    P.COMMUNITY_PERMISSION_VIEW_CHANNEL,
    P.COMMUNITY_PERMISSION_SEND_MESSAGES,
    P.COMMUNITY_PERMISSION_CONNECT_VOICE,
    P.COMMUNITY_PERMISSION_MODIFY_CHANNEL,
    P.COMMUNITY_PERMISSION_SEND_MEDIA,
    P.COMMUNITY_PERMISSION_DELETE_MESSAGES,
    P.COMMUNITY_PERMISSION_PIN_MESSAGES,
    P.COMMUNITY_PERMISSION_SPEAK_VOICE,
    P.COMMUNITY_PERMISSION_MODIFY_COMMUNITY,
    P.COMMUNITY_PERMISSION_MODIFY_ROLES,
    P.COMMUNITY_PERMISSION_REMOVE_MEMBERS,
    P.COMMUNITY_PERMISSION_ADD_REACTIONS,
    P.COMMUNITY_PERMISSION_CREATE_INVITE,
)


def _role_bits(priority: int) -> int:
    """Two to four bits per role, the same every time."""
    bits = 0
    for bit in random.Random(priority).sample(ROLE_BITS, 2 + priority % 3):
        bits |= bit
    return bits


def _overrides(index: int, roles: list[int], member_roles: list[int]) -> list[tuple[int | None, int, int]]:
    """(role id or None for everyone, allow, deny) of channel `index`: every channel has an everyone override and
    three role overrides; every fifth channel is private (everyone loses VIEW_CHANNEL; some roles get it back).
    The explained channel also has overrides for three of the member's roles."""
    private = index % 5 == EXPLAINED_CHANNEL % 5
    everyone = (
        (None, 0, P.COMMUNITY_PERMISSION_VIEW_CHANNEL)
        if private
        else (None, P.COMMUNITY_PERMISSION_ADD_REACTIONS if index % 2 else 0, P.COMMUNITY_PERMISSION_SEND_MEDIA)
    )
    role_ids = [roles[(index * 7 + offset * 11) % len(roles)] for offset in range(3)]
    if index == EXPLAINED_CHANNEL:
        role_ids += [role for role in member_roles[:3] if role not in role_ids]
    overrides = [everyone]
    for number, role_id in enumerate(role_ids):
        allow = P.COMMUNITY_PERMISSION_VIEW_CHANNEL | P.COMMUNITY_PERMISSION_SEND_MESSAGES
        deny = P.COMMUNITY_PERMISSION_PIN_MESSAGES if number % 2 else P.COMMUNITY_PERMISSION_DELETE_MESSAGES
        overrides.append((role_id, allow, deny))
    return overrides


async def permissions_world(ctx: SetupContext) -> dict[str, Any]:
    """A community with PERMISSION_CHANNELS channels and PERMISSION_ROLES roles, channel overrides for everyone
    and for roles, owned by a bot, and a person who joined with an invite and holds MEMBER_ROLE_PRIORITIES.
    Made once, through RPCs, and shared by explain_permissions and get_channels."""
    if "permissions_world" in ctx.shared:
        return ctx.shared["permissions_world"]
    owner = await ctx.principal("bench permissions owner", bot=True)
    member = await ctx.principal("bench permissions member", bot=False)
    as_owner = {"metadata": owner.metadata, "timeout": 10}
    community_id = (
        await ctx.communities().CreateCommunity(communities_pb2.CreateCommunity(name="bench permissions"), **as_owner)
    ).id
    channels = ctx.channels()
    listed = await channels.GetChannels(channels_pb2.GetChannels(community_id=community_id), **as_owner)
    channel_ids = [listed.channels[0].id]  # general
    roles = []
    for priority in range(1, PERMISSION_ROLES + 1):
        request = roles_pb2.CreateRole(
            community_id=community_id, name=f"role {priority}", permissions=_role_bits(priority), priority=priority
        )
        roles.append((await ctx.roles().CreateRole(request, **as_owner)).id)
    for number in range(1, PERMISSION_CHANNELS):
        kind = channels_pb2.VOICE if number % 10 == 9 else channels_pb2.TEXT
        request = channels_pb2.CreateChannel(community_id=community_id, name=f"channel-{number}", type=kind)
        channel_ids.append((await channels.CreateChannel(request, **as_owner)).id)
    member_roles = [roles[priority - 1] for priority in MEMBER_ROLE_PRIORITIES]
    override_count = 0
    for index, channel_id in enumerate(channel_ids):
        for role_id, allow, deny in _overrides(index, roles, member_roles):
            request = channels_pb2.CreateChannelOverride(
                channel_id=channel_id,
                role_id=community_id if role_id is None else role_id,
                overrides=channels_pb2.PermissionOverrides(pos=allow, neg=deny),
            )
            await channels.CreateChannelOverride(request, **as_owner)
            override_count += 1
    invite = await ctx.invites().CreateInvite(
        invites_pb2.CreateInvite(channel_id=channel_ids[0], max_uses=0, max_age=0), **as_owner
    )
    await ctx.invites().UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=member.metadata, timeout=10)
    await ctx.members().EditMember(
        members_pb2.EditMember(
            community_id=community_id, member_id=int(member.id), role_ids=members_pb2.RoleIds(ids=member_roles)
        ),
        **as_owner,
    )
    world = {
        "community_id": community_id,
        "explained_channel_id": channel_ids[EXPLAINED_CHANNEL],
        "member": member.authorization,
        "overrides": override_count,
    }
    ctx.shared["permissions_world"] = world
    return world


async def setup_explain_permissions(ctx: SetupContext) -> Workload:
    world = await permissions_world(ctx)
    explained = await ctx.roles().ExplainPermissions(
        roles_pb2.ExplainPermissions(community_id=world["community_id"], channel_id=world["explained_channel_id"]),
        metadata=auth(world["member"]),
        timeout=10,
    )
    sources = Counter(step.source for step in explained.steps)
    if (
        explained.owner
        or sources[roles_pb2.PERMISSION_SOURCE_ROLE] != len(MEMBER_ROLE_PRIORITIES)
        or not sources[roles_pb2.PERMISSION_SOURCE_EVERYONE_OVERRIDE]
        or sources[roles_pb2.PERMISSION_SOURCE_ROLE_OVERRIDE] < 2
        or not explained.permissions & P.COMMUNITY_PERMISSION_VIEW_CHANNEL
    ):
        raise SetupError(f"ExplainPermissions did not explain what the setup made: {explained}")
    return Workload(
        authorizations=(world["member"],),
        params={"community_id": world["community_id"], "channel_id": world["explained_channel_id"]},
    )


def request_explain_permissions(workload: Workload, slot: int, seq: int) -> Message:
    return roles_pb2.ExplainPermissions(
        community_id=workload.params["community_id"], channel_id=workload.params["channel_id"]
    )


async def setup_get_channels(ctx: SetupContext) -> Workload:
    world = await permissions_world(ctx)
    listed = await ctx.channels().GetChannels(
        channels_pb2.GetChannels(community_id=world["community_id"]), metadata=auth(world["member"]), timeout=10
    )
    if not 0 < len(listed.channels) < PERMISSION_CHANNELS:
        raise SetupError(f"GetChannels listed {len(listed.channels)} of {PERMISSION_CHANNELS} channels")
    return Workload(authorizations=(world["member"],), params={"community_id": world["community_id"]})


def request_get_channels(workload: Workload, slot: int, seq: int) -> Message:
    return channels_pb2.GetChannels(community_id=workload.params["community_id"])


# -------------------------------------------------------------------------------------------------- UseInvite
#
# Every UseInvite call must be a real join: a user who already joined gets an OK that counts no use and costs
# less. Both invite scenarios draw users from one pool of fresh people (ctx.fresh_people), split by in-flight
# slot: slot s uses people s, s + in_flight, s + 2 * in_flight, ... They join different communities, so the
# two scenarios can share the pool. Each scenario's `verify` compares the invites' use counts with the OK calls.

USE_INVITE_MAX_RATE = 800  # calls/s assumed when sizing data; well above what 2 shared cores do
CONTENDED_MAX_USES = 100
INVITES_MAX = 990  # active invites per community (the server allows 1,000)
MAX_ROUNDS = 90  # communities a person of the pool joins in use_invite_unlimited (a person may be in 100)
_slot_calls: Counter[tuple[str, int]] = Counter()  # (scenario, slot) -> calls made, in this client process


def _person(workload: Workload, slot: int, number: int) -> Metadata:
    """The `number`-th person of `slot`'s share of the pool (wrapping around past the end of the share)."""
    people, in_flight = workload.authorizations, workload.params["in_flight"]
    share = len(people) // in_flight
    return auth(people[slot + in_flight * (number % share)])


async def community_with_channel(ctx: SetupContext, owner: Principal, name: str) -> tuple[int, int]:
    """A new community of `owner` and the id of its `general` channel."""
    community = await ctx.communities().CreateCommunity(
        communities_pb2.CreateCommunity(name=name), metadata=owner.metadata, timeout=10
    )
    listed = await ctx.channels().GetChannels(
        channels_pb2.GetChannels(community_id=community.id), metadata=owner.metadata, timeout=10
    )
    return community.id, listed.channels[0].id


async def _all_invites(ctx: SetupContext, owner: str, community_id: int) -> list[invites_pb2.Invite]:
    found, token = [], ""
    while True:
        page = await ctx.invites().ListInvites(
            invites_pb2.ListInvites(community_id=community_id, include_inactive=True, page_size=1000, page_token=token),
            metadata=auth(owner),
            timeout=30,
        )
        found += page.invites
        token = page.next_page_token
        if not token:
            return found


async def _check_join(ctx: SetupContext, code: str, community_id: int, name: str) -> None:
    """One UseInvite by someone outside the pool: it must join the community."""
    checker = await ctx.principal(name, bot=False)
    joined = await ctx.invites().UseInvite(invites_pb2.UseInvite(code=code), metadata=checker.metadata, timeout=10)
    if joined.id != community_id:
        raise SetupError(f"UseInvite joined community {joined.id}, expected {community_id}")


# One unlimited invite, 64 distinct users at a time.


async def setup_use_invite_unlimited(ctx: SetupContext) -> Workload:
    """Unlimited invites (max_uses 0), one per community, made by a bot. Slot s makes its n-th call with person
    n mod share of its share and invite n div share: when a slot has used all its people, they join the next
    community. There are enough communities for USE_INVITE_MAX_RATE calls/s (1.5 x for slots running unevenly)."""
    people = await ctx.fresh_people()
    owner = await ctx.principal("bench unlimited inviter", bot=True)
    budget = USE_INVITE_MAX_RATE * ctx.seconds_per_scenario
    rounds = max(1, math.ceil(1.5 * budget / len(people)))
    if rounds > MAX_ROUNDS:
        raise SetupError(f"{len(people):,} fresh people would each join {rounds} communities: raise --fresh-users")
    codes, community_ids = [], []
    for number in range(rounds):
        community_id, channel_id = await community_with_channel(ctx, owner, f"bench open {number}")
        invite = await ctx.invites().CreateInvite(
            invites_pb2.CreateInvite(channel_id=channel_id, max_uses=0, max_age=0, unique=True),
            metadata=owner.metadata,
            timeout=10,
        )
        codes.append(invite.code)
        community_ids.append(community_id)
    await _check_join(ctx, codes[0], community_ids[0], "bench unlimited check")
    return Workload(
        authorizations=people,
        params={
            "codes": codes,
            "community_ids": community_ids,
            "owner": owner.authorization,
            "in_flight": ctx.in_flight,
            "setup_uses": 1,
        },
    )


def request_use_invite_unlimited(workload: Workload, slot: int, seq: int) -> Call:
    key = (workload.params.get("key", "use_invite_unlimited"), slot)  # bench/scale.py runs more such workloads
    number = _slot_calls[key]
    _slot_calls[key] += 1
    codes = workload.params["codes"]
    if workload.params.get("spread"):  # bench/scale.py: call n joins community n mod len(codes), so all grow alike
        code = codes[number % len(codes)]
        return Call(invites_pb2.UseInvite(code=code), _person(workload, slot, number // len(codes)))
    share = len(workload.authorizations) // workload.params["in_flight"]
    code = codes[(number // share) % len(codes)]
    return Call(invites_pb2.UseInvite(code=code), _person(workload, slot, number))


async def verify_use_invite_unlimited(ctx: SetupContext, workload: Workload, answered: Counter[str]) -> Check:
    uses = 0
    for community_id in workload.params["community_ids"]:
        uses += sum(invite.uses for invite in await _all_invites(ctx, workload.params["owner"], community_id))
    expected = answered["OK"] + workload.params["setup_uses"]
    return Check(
        uses == expected,
        f"the unlimited invites counted {uses:,} uses; OK answers over the bench (warm-ups and setup included): "
        f"{expected:,}" + (": every OK call was a real join" if uses == expected else ": MISMATCH, some were not"),
    )


# Invites of max_uses 100, 64 distinct users racing on the current one.


@dataclass
class _Race:
    """One client process's place in the list of contended invites."""

    current: int = 0  # the invite this process's slots use now
    in_flight: dict[int, int] = field(default_factory=dict)  # slot -> invite of its call in flight
    joined: Counter[int] = field(default_factory=Counter)  # slot -> people of its share used up


_race = _Race()


async def setup_use_invite_contended(ctx: SetupContext) -> Workload:
    """Invites of max_uses 100 in one community, made by a bot, enough for USE_INVITE_MAX_RATE calls/s (capped
    at INVITES_MAX). Each client process sends every call to its current invite; a NOT_FOUND answer (the
    invite is used up) moves the process on to the next invite in the list. A slot keeps its person after a
    NOT_FOUND (nothing was joined) and takes the next one after any other answer."""
    people = await ctx.fresh_people()
    owner = await ctx.principal("bench contended inviter", bot=True)
    community_id, channel_id = await community_with_channel(ctx, owner, "bench contended")
    budget = USE_INVITE_MAX_RATE * ctx.seconds_per_scenario
    count = min(INVITES_MAX - 1, math.ceil(1.2 * budget / CONTENDED_MAX_USES))
    codes = []
    for _ in range(count + 1):
        invite = await ctx.invites().CreateInvite(
            invites_pb2.CreateInvite(channel_id=channel_id, max_uses=CONTENDED_MAX_USES, max_age=0, unique=True),
            metadata=owner.metadata,
            timeout=10,
        )
        codes.append(invite.code)
    await _check_join(ctx, codes.pop(), community_id, "bench contended check")  # the extra invite
    return Workload(
        authorizations=people,
        params={
            "codes": codes,
            "community_id": community_id,
            "owner": owner.authorization,
            "in_flight": ctx.in_flight,
            "setup_uses": 1,
        },
    )


def request_use_invite_contended(workload: Workload, slot: int, seq: int) -> Call:
    codes = workload.params["codes"]
    _race.in_flight[slot] = _race.current
    code = codes[_race.current % len(codes)]  # past the end every call is NOT_FOUND: verify reports it
    return Call(invites_pb2.UseInvite(code=code), _person(workload, slot, _race.joined[slot]))


def observe_use_invite_contended(workload: Workload, slot: int, code: str | None) -> None:
    if code == "NOT_FOUND":
        _race.current = max(_race.current, _race.in_flight[slot] + 1)
    else:
        _race.joined[slot] += 1


async def verify_use_invite_contended(ctx: SetupContext, workload: Workload, answered: Counter[str]) -> Check:
    invites = await _all_invites(ctx, workload.params["owner"], workload.params["community_id"])
    uses = [invite.uses for invite in invites]
    over = sum(1 for count in uses if count > CONTENDED_MAX_USES)
    used_up = sum(1 for count in uses if count == CONTENDED_MAX_USES)
    expected = answered["OK"] + workload.params["setup_uses"]
    ok = over == 0 and sum(uses) == expected and used_up < len(workload.params["codes"])
    return Check(
        ok,
        f"{len(invites)} invites of max_uses {CONTENDED_MAX_USES} (ListInvites with include_inactive): "
        f"{over} with more than {CONTENDED_MAX_USES} uses (highest {max(uses, default=0)}), {used_up} used up; "
        f"{sum(uses):,} uses in all against {expected:,} OK answers over the bench (setup included) and "
        f"{answered['NOT_FOUND']:,} NOT_FOUND" + ("" if ok else "; CHECK FAILED"),
    )


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
    "explain_permissions": Scenario(
        label="ExplainPermissions",
        method=ROLES + "ExplainPermissions",
        setup=setup_explain_permissions,
        request=request_explain_permissions,
        description=f"a member (a person holding {len(MEMBER_ROLE_PRIORITIES)} of {PERMISSION_ROLES} roles) explains "
        f"its own permissions in a channel with overrides for everyone and several roles; {PERMISSION_CHANNELS} "
        "channels",
    ),
    "get_channels": Scenario(
        label="GetChannels",
        method=CHANNELS + "GetChannels",
        setup=setup_get_channels,
        request=request_get_channels,
        description=f"the same member lists the channels it can see ({PERMISSION_CHANNELS} channels, each with "
        "overrides for everyone and 3 roles, every fifth private)",
    ),
    "use_invite_unlimited": Scenario(
        label="UseInvite (unlimited)",
        method=INVITES + "UseInvite",
        setup=setup_use_invite_unlimited,
        request=request_use_invite_unlimited,
        description="distinct people (never one who already joined) join with one unlimited invite",
        verify=verify_use_invite_unlimited,
    ),
    "use_invite_contended": Scenario(
        label="UseInvite (max_uses 100)",
        method=INVITES + "UseInvite",
        setup=setup_use_invite_contended,
        request=request_use_invite_contended,
        description=f"distinct people race on invites of max_uses {CONTENDED_MAX_USES}; NOT_FOUND (used up) is "
        "expected and moves a client process to the next invite",
        expected=frozenset({"NOT_FOUND"}),
        observe=observe_use_invite_contended,
        verify=verify_use_invite_contended,
    ),
}
