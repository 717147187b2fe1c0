"""The permission computation through the API, on both databases, against an independent reference model.

Hypothesis draws default permissions, roles (permissions and priorities), which of them a member holds, and a
channel's overrides (everyone and per role, including roles the member does not hold). The owner sets all of it
up through the RPCs; then the member's Community.permissions (GetCommunities), its channel permissions
(GetChannels, and ExplainPermissions asked by the owner) and its rank are compared with the model below, which
is written from API.md's algorithm text and the flag table, not from the server's engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communities.v1 import channels_pb2, communities_pb2, members_pb2, roles_pb2

# API.md's flag table, written out again.
FLAG_BITS = {
    "ADMINISTRATOR": 0,
    "VIEW_CHANNEL": 1,
    "SEND_MESSAGES": 2,
    "CONNECT_VOICE": 3,
    "MODIFY_CHANNEL": 4,
    "SEND_MEDIA": 5,
    "DELETE_MESSAGES": 6,
    "PIN_MESSAGES": 7,
    "SPEAK_VOICE": 8,
    "MODIFY_COMMUNITY": 9,
    "MODIFY_ROLES": 10,
    "REMOVE_MEMBERS": 11,
    "ADD_REACTIONS": 12,
    "CREATE_INVITE": 14,
    "MENTION_EVERYONE": 15,
}
EVERY_FLAG = sum(1 << bit for bit in FLAG_BITS.values())
ADMINISTRATOR = 1 << FLAG_BITS["ADMINISTRATOR"]
VIEW_CHANNEL = 1 << FLAG_BITS["VIEW_CHANNEL"]
CHANNEL_FLAGS = [name for name in FLAG_BITS if name != "ADMINISTRATOR"]  # overrides refuse ADMINISTRATOR
ROLE_COUNT = 4


# --- the reference model (API.md, Permissions, "Computation") --------------------------------------------------


@dataclass(frozen=True)
class RoleSpec:
    permissions: int
    priority: int
    held: bool


@dataclass(frozen=True)
class Scenario:
    default: int
    roles: tuple[RoleSpec, ...]
    everyone: tuple[int, int] | None  # (allow, deny) of the everyone override, or none
    overrides: tuple[tuple[int, int] | None, ...]  # per role, in the order of `roles`


def community_level(scenario: Scenario) -> int:
    """1. Not the owner: default_permissions OR every held role's permissions; ADMINISTRATOR means all flags."""
    result = scenario.default
    for role in scenario.roles:
        if role.held:
            result = result | role.permissions
    if result & ADMINISTRATOR:
        return EVERY_FLAG
    return result


def channel_level(scenario: Scenario) -> int:
    """2. From (1); ADMINISTRATOR: all. Everyone override: clear deny, set allow. Then the member's role overrides
    OR'ed together: clear their denies, set their allows. Without VIEW_CHANNEL: 0."""
    result = community_level(scenario)
    if result & ADMINISTRATOR:
        return EVERY_FLAG
    if scenario.everyone is not None:
        allow, deny = scenario.everyone
        result = (result & ~deny) | allow
    allows = denies = 0
    for role, override in zip(scenario.roles, scenario.overrides, strict=True):
        if role.held and override is not None:
            allows |= override[0]
            denies |= override[1]
    result = (result & ~denies) | allows
    if not result & VIEW_CHANNEL:
        return 0
    return result


def rank(scenario: Scenario) -> int:
    """3. The highest priority among the member's roles, 0 with none."""
    return max((role.priority for role in scenario.roles if role.held), default=0)


# --- strategies ------------------------------------------------------------------------------------------------


def mask(names) -> int:
    return sum(1 << FLAG_BITS[name] for name in names)


# ADMINISTRATOR now and then (it makes everything else moot), any other flags freely.
permission_sets = st.builds(
    lambda administrator, names: mask(names) | (ADMINISTRATOR if administrator else 0),
    st.integers(0, 11).map(lambda n: n == 0),
    st.sets(st.sampled_from(CHANNEL_FLAGS)),
)


@st.composite
def override_specs(draw) -> tuple[int, int]:
    """Each flag (ADMINISTRATOR excepted) allowed, denied or left alone: allow and deny never overlap."""
    choices = draw(st.lists(st.sampled_from("..ad"), min_size=len(CHANNEL_FLAGS), max_size=len(CHANNEL_FLAGS)))
    allow = mask(name for name, choice in zip(CHANNEL_FLAGS, choices, strict=True) if choice == "a")
    deny = mask(name for name, choice in zip(CHANNEL_FLAGS, choices, strict=True) if choice == "d")
    return allow, deny


maybe_override = st.one_of(st.none(), override_specs())

scenarios = st.builds(
    Scenario,
    default=permission_sets,
    roles=st.tuples(
        *[st.builds(RoleSpec, permission_sets, st.integers(0, 1_000_000), st.booleans()) for _ in range(ROLE_COUNT)]
    ),
    everyone=maybe_override,
    overrides=st.tuples(*[maybe_override for _ in range(ROLE_COUNT)]),
)


# --- the community every example reuses ------------------------------------------------------------------------


class Fixture:
    """One community, its owner, a member, ROLE_COUNT roles and a channel; `apply` brings them to a scenario,
    sending only what changed since the previous example."""

    def __init__(self, communities, roles, channels, members, make_account, join_community):
        self.communities, self.roles, self.channels, self.members = communities, roles, channels, members
        self.owner = make_account("property owner", bot=True)
        self.member = make_account("property member", bot=True)
        self.community = communities.CreateCommunity(
            communities_pb2.CreateCommunity(name="property"), metadata=self.owner.metadata
        )
        assert join_community(self.community.id, self.member)
        [self.general] = channels.GetChannels(
            channels_pb2.GetChannels(community_id=self.community.id), metadata=self.owner.metadata
        ).channels
        self.channel = channels.CreateChannel(
            channels_pb2.CreateChannel(community_id=self.community.id, name="overridden"), metadata=self.owner.metadata
        )
        self.role_ids = [
            roles.CreateRole(
                roles_pb2.CreateRole(community_id=self.community.id, name=f"role {n}", priority=0),
                metadata=self.owner.metadata,
            ).id
            for n in range(ROLE_COUNT)
        ]
        self.state: dict[str, object] = {}  # what the server holds now, as last set

    def _set(self, key: str, value, send) -> None:
        if self.state.get(key, "unset") != value:
            send()
            self.state[key] = value

    def apply(self, scenario: Scenario) -> None:
        owner, cid = self.owner.metadata, self.community.id
        self._set(
            "default",
            scenario.default,
            lambda: self.roles.EditDefaultPermissions(
                roles_pb2.EditDefaultPermissions(community_id=cid, permissions=scenario.default), metadata=owner
            ),
        )
        for role_id, spec in zip(self.role_ids, scenario.roles, strict=True):
            self._set(
                f"role {role_id}",
                (spec.permissions, spec.priority),
                lambda role_id=role_id, spec=spec: self.roles.EditRole(
                    roles_pb2.EditRole(
                        community_id=cid, role_id=role_id, permissions=spec.permissions, priority=spec.priority
                    ),
                    metadata=owner,
                ),
            )
        held = [role_id for role_id, spec in zip(self.role_ids, scenario.roles, strict=True) if spec.held]
        self._set(
            "held",
            held,
            lambda: self.members.EditMember(
                members_pb2.EditMember(
                    community_id=cid, member_id=self.member.id, role_ids=members_pb2.RoleIds(ids=held)
                ),
                metadata=owner,
            ),
        )
        targets = [cid, *self.role_ids]
        for target, spec in zip(targets, (scenario.everyone, *scenario.overrides), strict=True):
            self._set(f"override {target}", spec, lambda target=target, spec=spec: self._override(target, spec))

    def _override(self, target: int, spec: tuple[int, int] | None) -> None:
        if spec is None:
            self.channels.DeleteChannelOverride(
                channels_pb2.DeleteChannelOverride(channel_id=self.channel.id, role_id=target),
                metadata=self.owner.metadata,
            )
        else:
            self.channels.CreateChannelOverride(
                channels_pb2.CreateChannelOverride(
                    channel_id=self.channel.id,
                    role_id=target,
                    overrides=channels_pb2.PermissionOverrides(pos=spec[0], neg=spec[1]),
                ),
                metadata=self.owner.metadata,
            )

    def reset_overrides_state(self) -> None:
        """Overrides start absent: DeleteChannelOverride of an absent one would be NOT_FOUND."""
        for target in [self.community.id, *self.role_ids]:
            self.state[f"override {target}"] = None


@pytest.fixture(scope="module")
def fixture(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> Fixture:
    made = Fixture(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)
    made.reset_overrides_state()
    return made


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios)
def test_member_permissions_match_the_reference_model(fixture, scenario):
    fixture.apply(scenario)
    member, owner, cid = fixture.member, fixture.owner, fixture.community.id
    expected_community = community_level(scenario)
    expected_channel = channel_level(scenario)
    expected_general = expected_community if expected_community & VIEW_CHANNEL else 0

    [community] = [
        c
        for c in fixture.communities.GetCommunities(
            communities_pb2.GetCommunities(), metadata=member.metadata
        ).communities
        if c.id == cid
    ]
    assert community.permissions == expected_community

    visible = {
        c.id: c.permissions
        for c in fixture.channels.GetChannels(
            channels_pb2.GetChannels(community_id=cid), metadata=member.metadata
        ).channels
    }
    assert visible.get(fixture.channel.id, 0) == expected_channel
    assert (fixture.channel.id in visible) == (expected_channel != 0)
    assert visible.get(fixture.general.id, 0) == expected_general
    assert (fixture.general.id in visible) == (expected_general != 0)

    explained = fixture.roles.ExplainPermissions(
        roles_pb2.ExplainPermissions(community_id=cid, user_id=member.id, channel_id=fixture.channel.id),
        metadata=owner.metadata,
    )
    assert explained.permissions == expected_channel
    assert explained.steps[-1].result == expected_channel
    assert (explained.rank, explained.owner) == (rank(scenario), False)
    held = {role_id for role_id, spec in zip(fixture.role_ids, scenario.roles, strict=True) if spec.held}
    assert {s.role_id for s in explained.steps if s.source == roles_pb2.PERMISSION_SOURCE_ROLE} == held

    own = fixture.roles.ExplainPermissions(roles_pb2.ExplainPermissions(community_id=cid), metadata=member.metadata)
    assert own.permissions == own.steps[-1].result == expected_community
