"""The invites seed's two scenarios, end to end through the API."""

import grpc

from communities.v1 import channels_pb2, communities_pb2, invites_pb2, members_pb2, roles_pb2
from tests.conftest import rpc_error
from tests.support.errors import assert_error


def test_player_role_invite(communities_stub, roles_stub, invites_stub, members_stub, make_account):
    bot = make_account("Game Bot", bot=True)
    player = make_account("Player")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Game"), metadata=bot.metadata)
    settings = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=bot.metadata
    )
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Player", priority=1), metadata=bot.metadata
    )
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=settings.system_messages.channel_id, role_ids=[role.id]),
        metadata=bot.metadata,
    )
    assert len(invite.code) >= 8 and [r.id for r in invite.roles] == [role.id]
    preview = invites_stub.LookupInvite(invites_pb2.LookupInvite(code=invite.code), metadata=player.metadata)
    assert preview.community_name == "Game" and preview.approximate_member_count == 1
    joined = invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=player.metadata)
    assert joined.id == community.id and not joined.owner
    [member] = members_stub.GetMembers(
        members_pb2.GetMembers(community_id=community.id, member_ids=[player.id]), metadata=bot.metadata
    ).members
    assert list(member.role_ids) == [role.id] and member.invite_code == invite.code


def test_targeted_supporter_invite(communities_stub, roles_stub, channels_stub, invites_stub, make_account):
    owner = make_account("Streamer")
    targets = [make_account(f"Supporter {i}") for i in range(3)]
    outsider = make_account("Outsider")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="S"), metadata=owner.metadata)
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Supporter", priority=1), metadata=owner.metadata
    )
    channel = channels_stub.CreateChannel(
        channels_pb2.CreateChannel(community_id=community.id, name="supporter-chat"), metadata=owner.metadata
    )
    csv = ("\n".join(str(t.id) for t in targets)).encode()
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=channel.id, role_ids=[role.id], target_users_file=csv),
        metadata=owner.metadata,
    )
    assert invite.targeted
    status = invites_stub.GetTargetUsersJobStatus(
        invites_pb2.GetTargetUsersJobStatus(code=invite.code), metadata=owner.metadata
    )
    assert status.status == invites_pb2.COMPLETED and status.total_users == 3
    for call in (invites_stub.LookupInvite, invites_stub.UseInvite):
        request = (invites_pb2.LookupInvite if call == invites_stub.LookupInvite else invites_pb2.UseInvite)(
            code=invite.code
        )
        assert_error(rpc_error(call, request, metadata=outsider.metadata), grpc.StatusCode.NOT_FOUND, "UNKNOWN_INVITE")
    invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=targets[0].metadata)
    exported = invites_stub.GetTargetUsers(invites_pb2.GetTargetUsers(code=invite.code), metadata=owner.metadata)
    assert exported.target_users_file.decode().split("\n")[0] == "user_id"
