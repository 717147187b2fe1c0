"""Shared helpers of the roles / channels / members / escalation API tests: permission flags taken from the proto
(not from the server's engine), a `World` that builds communities, members, roles, channels and overrides through
the RPCs, and snapshots of everything a community holds, to check that a refused call changed nothing."""

from __future__ import annotations

import enum
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import message as protobuf_message

from communities.v1 import channels_pb2, communities_pb2, members_pb2, permissions_pb2, roles_pb2
from tests.support.errors import assert_error

# The flags exactly as the proto spells them, without the COMMUNITY_PERMISSION_ prefix.
P = enum.IntFlag(
    "P",
    {
        value.name.removeprefix("COMMUNITY_PERMISSION_"): value.number
        for value in permissions_pb2.CommunityPermission.DESCRIPTOR.values
        if value.number
    },
)
ALL = 0
for _flag in P:
    ALL |= _flag.value

DEFAULT = int(
    P.VIEW_CHANNEL
    | P.SEND_MESSAGES
    | P.CONNECT_VOICE
    | P.SPEAK_VOICE
    | P.SEND_MEDIA
    | P.ADD_REACTIONS
    | P.CREATE_INVITE
)
RESERVED_BIT = 1 << 13


class World:
    """Builds test data through the API (as a client would) and reads it back."""

    def __init__(self, communities, roles, channels, members, make_account, join_community):
        self.communities = communities
        self.roles = roles
        self.channels = channels
        self.members = members
        self.make_account = make_account
        self.join_community = join_community

    # ------------------------------------------------------------------------------------------------ building
    def community(self, owner, name: str = "Test community") -> communities_pb2.Community:
        return self.communities.CreateCommunity(communities_pb2.CreateCommunity(name=name), metadata=owner.metadata)

    def member(self, community_id: int, name: str | None = None, *, bot: bool = False):
        account = self.make_account(name, bot=bot)
        assert self.join_community(community_id, account)
        return account

    def role(
        self, actor, community_id: int, name: str = "role", permissions: int = 0, priority: int = 1, **fields
    ) -> roles_pb2.CommunityRole:
        return self.roles.CreateRole(
            roles_pb2.CreateRole(
                community_id=community_id, name=name, permissions=int(permissions), priority=priority, **fields
            ),
            metadata=actor.metadata,
        )

    def assign(self, actor, community_id: int, member, *role_ids: int) -> members_pb2.CommunityMember:
        return self.members.EditMember(
            members_pb2.EditMember(
                community_id=community_id, member_id=member.id, role_ids=members_pb2.RoleIds(ids=list(role_ids))
            ),
            metadata=actor.metadata,
        )

    def channel(
        self,
        actor,
        community_id: int,
        name: str = "channel",
        kind: int = channels_pb2.TEXT,
        parent_id: int | None = None,
    ) -> channels_pb2.Channel:
        request = channels_pb2.CreateChannel(community_id=community_id, name=name, type=kind)
        if parent_id is not None:
            request.parent_id = parent_id
        return self.channels.CreateChannel(request, metadata=actor.metadata)

    def override(
        self, actor, channel_id: int, role_id: int, pos: int = 0, neg: int = 0
    ) -> channels_pb2.ChannelOverride:
        return self.channels.CreateChannelOverride(
            channels_pb2.CreateChannelOverride(
                channel_id=channel_id,
                role_id=role_id,
                overrides=channels_pb2.PermissionOverrides(pos=int(pos), neg=int(neg)),
            ),
            metadata=actor.metadata,
        )

    def set_default(self, actor, community_id: int, permissions: int) -> roles_pb2.CommunityRoles:
        return self.roles.EditDefaultPermissions(
            roles_pb2.EditDefaultPermissions(community_id=community_id, permissions=int(permissions)),
            metadata=actor.metadata,
        )

    # ------------------------------------------------------------------------------------------------ reading
    def permissions(self, account, community_id: int) -> int:
        """Community.permissions as GetCommunities shows it to `account`."""
        listed = self.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
        [community] = [c for c in listed.communities if c.id == community_id]
        return community.permissions

    def visible(self, account, community_id: int) -> dict[int, channels_pb2.Channel]:
        listed = self.channels.GetChannels(
            channels_pb2.GetChannels(community_id=community_id), metadata=account.metadata
        )
        return {channel.id: channel for channel in listed.channels}

    def get_roles(self, account, community_id: int) -> roles_pb2.CommunityRoles:
        return self.roles.GetRoles(roles_pb2.GetRoles(community_id=community_id), metadata=account.metadata)

    def overrides(self, account, channel_id: int) -> dict[int, tuple[int, int]]:
        listed = self.channels.GetChannelOverrides(
            channels_pb2.GetChannelOverrides(channel_id=channel_id), metadata=account.metadata
        )
        return {o.role_id: (o.overrides.pos, o.overrides.neg) for o in listed.overrides}

    def get_member(self, account, community_id: int, member_id: int) -> members_pb2.CommunityMember | None:
        found = self.members.GetMembers(
            members_pb2.GetMembers(community_id=community_id, member_ids=[member_id]), metadata=account.metadata
        ).members
        return found[0] if found else None

    def role_ids(self, account, community_id: int, member_id: int) -> set[int]:
        member = self.get_member(account, community_id, member_id)
        assert member is not None
        return set(member.role_ids)

    def all_members(self, account, community_id: int, page_size: int = 0) -> list[members_pb2.CommunityMember]:
        result, token = [], ""
        while True:
            page = self.members.ListMembers(
                members_pb2.ListMembers(community_id=community_id, page_size=page_size, page_token=token),
                metadata=account.metadata,
            )
            result.extend(page.members)
            token = page.next_page_token
            if not token:
                return result

    def explain(self, account, community_id: int, user_id: int = 0, channel_id: int | None = None):
        request = roles_pb2.ExplainPermissions(community_id=community_id, user_id=user_id)
        if channel_id is not None:
            request.channel_id = channel_id
        return self.roles.ExplainPermissions(request, metadata=account.metadata)

    def settings(self, account, community_id: int) -> communities_pb2.CommunitySettings:
        return self.communities.GetSettings(
            communities_pb2.GetSettings(community_id=community_id), metadata=account.metadata
        )

    def snapshot(
        self, owner, community_id: int, *, with_overrides: bool = True
    ) -> list[protobuf_message.Message | dict | list]:
        """Everything the owner can read about a community: to compare before and after a refused call.
        (with_overrides=False skips one GetChannelOverrides per channel, for communities with many channels.)"""
        listed = self.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=owner.metadata)
        community = [c for c in listed.communities if c.id == community_id]
        channels = self.channels.GetChannels(
            channels_pb2.GetChannels(community_id=community_id), metadata=owner.metadata
        ).channels
        bans = self.members.GetRemovedMembers(
            members_pb2.GetRemovedMembers(community_id=community_id, page_size=1000), metadata=owner.metadata
        )
        return [
            community,
            self.get_roles(owner, community_id),
            list(channels),
            {channel.id: self.overrides(owner, channel.id) for channel in channels} if with_overrides else {},
            [
                (m.id, sorted(m.role_ids), m.nickname, m.joined_at.ToMilliseconds())
                for m in self.all_members(owner, community_id)
            ],
            self.settings(owner, community_id),
            bans,
        ]


def outcome(call, request, metadata) -> str:
    try:
        call(request, metadata=metadata, timeout=60)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def run_together(jobs) -> list[str]:
    """Start every (call, request, metadata) job at the same moment, each on its own thread; outcomes in order."""
    barrier = threading.Barrier(len(jobs))

    def start(job):
        barrier.wait()
        return outcome(*job)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(start, jobs))


class Expectations:
    """Many refused calls in one test: each mismatch is collected (with its label) and reported together."""

    def __init__(self):
        self.failures: list[str] = []

    def error(
        self,
        label: str,
        call,
        request,
        caller,
        code: grpc.StatusCode,
        reason: str,
        *,
        field: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> grpc.RpcError | None:
        try:
            call(request, metadata=caller.metadata)
        except grpc.RpcError as error:
            try:
                assert_error(error, code, reason, field=field, metadata=metadata)
            except AssertionError as mismatch:
                self.failures.append(f"{label}: {mismatch}")
            return error
        self.failures.append(f"{label}: succeeded, expected {code.name} {reason}")
        return None

    def that(self, label: str, condition: bool, detail: object = "") -> None:
        if not condition:
            self.failures.append(f"{label}: {detail}")

    def check(self) -> None:
        assert not self.failures, "\n".join(self.failures)
