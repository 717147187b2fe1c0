"""The invites seed's supporter scenario on roles, channels and overrides (without the invite itself)."""

import grpc

from communities.domain.permissions import Permission as P
from communities.v1 import channels_pb2, communities_pb2, members_pb2, roles_pb2
from tests.conftest import rpc_error
from tests.support.errors import assert_error


def test_private_supporter_channel(
    communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community
):
    owner = make_account("Streamer")
    supporter = make_account("Supporter One")
    regular = make_account("Regular")
    community = communities_stub.CreateCommunity(
        communities_pb2.CreateCommunity(name="Stream"), metadata=owner.metadata
    )
    assert join_community(community.id, supporter)
    assert join_community(community.id, regular)

    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Supporter", priority=1, color=0xFFAA00),
        metadata=owner.metadata,
    )
    channel = channels_stub.CreateChannel(
        channels_pb2.CreateChannel(community_id=community.id, name="supporter-chat", type=channels_pb2.TEXT),
        metadata=owner.metadata,
    )
    channels_stub.CreateChannelOverride(
        channels_pb2.CreateChannelOverride(
            channel_id=channel.id,
            role_id=community.id,
            overrides=channels_pb2.PermissionOverrides(neg=P.VIEW_CHANNEL),
        ),
        metadata=owner.metadata,
    )
    channels_stub.CreateChannelOverride(
        channels_pb2.CreateChannelOverride(
            channel_id=channel.id,
            role_id=role.id,
            overrides=channels_pb2.PermissionOverrides(pos=P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ADD_REACTIONS),
        ),
        metadata=owner.metadata,
    )
    members_stub.EditMember(
        members_pb2.EditMember(
            community_id=community.id, member_id=supporter.id, role_ids=members_pb2.RoleIds(ids=[role.id])
        ),
        metadata=owner.metadata,
    )

    def visible(account):
        listed = channels_stub.GetChannels(
            channels_pb2.GetChannels(community_id=community.id), metadata=account.metadata
        )
        return {c.name: c for c in listed.channels}

    assert set(visible(regular)) == {"general"}
    seen = visible(supporter)
    assert set(seen) == {"general", "supporter-chat"}
    assert seen["supporter-chat"].permissions & P.SEND_MESSAGES
    error = rpc_error(
        channels_stub.EditChannel,
        channels_pb2.EditChannel(channel_id=channel.id, name="x"),
        metadata=regular.metadata,
    )
    assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_CHANNEL")

    explained = roles_stub.ExplainPermissions(
        roles_pb2.ExplainPermissions(community_id=community.id, channel_id=channel.id), metadata=supporter.metadata
    )
    assert explained.permissions == seen["supporter-chat"].permissions
    sources = [step.source for step in explained.steps]
    assert roles_pb2.PERMISSION_SOURCE_EVERYONE_OVERRIDE in sources
    assert roles_pb2.PERMISSION_SOURCE_ROLE_OVERRIDES in sources
