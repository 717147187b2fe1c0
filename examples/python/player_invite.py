"""Role granting invite: a game's bot hands out an invite that gives every player who accepts it a Player role.

The first walk-through of the community invites tutorial, on communities.v1 with the generated Python stubs.

Environment:
  COMMUNITIES_BOT_TOKEN     the bot's token (required; never put it in the code)
  COMMUNITIES_ADDRESS       host:port of the server (default 127.0.0.1:50051)
  COMMUNITIES_PLAYER_TOKEN  optional: a person's token; the script then accepts the invite as that player

Run from the project root: .venv/bin/python examples/python/player_invite.py
"""

import os
import sys

import grpc
from common import bot_token, run

from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)

COMMUNITY_NAME = "My Game"
ROLE_NAME = "Player"


def main() -> None:
    # IMPORTANT: never hard-code tokens or commit them; read them from the environment.
    token = bot_token()
    address = os.environ.get("COMMUNITIES_ADDRESS", "127.0.0.1:50051")
    player_token = os.environ.get("COMMUNITIES_PLAYER_TOKEN")

    # Every call carries `authorization: Bot <token>` (people use `Bearer <token>`).
    as_bot = (("authorization", f"Bot {token}"),)
    channel = grpc.insecure_channel(address)
    users = users_pb2_grpc.UsersStub(channel)
    communities = communities_pb2_grpc.CommunitiesStub(channel)
    roles = roles_pb2_grpc.RolesStub(channel)
    channels = channels_pb2_grpc.ChannelsStub(channel)
    invites = invites_pb2_grpc.InvitesStub(channel)
    members = members_pb2_grpc.MembersStub(channel)

    bot = users.GetSelf(users_pb2.GetSelf(), metadata=as_bot)
    print(f"Signed in as bot {bot.name} ({bot.id})")

    # 1. The game's community: reuse the one the bot owns, or create it (the bot becomes its owner, with every
    #    permission: CREATE_INVITE to make invites and MODIFY_ROLES to let them grant roles).
    owned = communities.GetCommunities(communities_pb2.GetCommunities(), metadata=as_bot).communities
    community = next((c for c in owned if c.owner and c.name == COMMUNITY_NAME), None)
    if community is None:
        community = communities.CreateCommunity(communities_pb2.CreateCommunity(name=COMMUNITY_NAME), metadata=as_bot)
    print(f"Community: {community.name} ({community.id})")

    # 2. The Player role. An invite may only grant roles below the inviter's own rank; the owner outranks all.
    existing = roles.GetRoles(roles_pb2.GetRoles(community_id=community.id), metadata=as_bot).roles
    player_role = next((r for r in existing if r.name == ROLE_NAME), None)
    if player_role is None:
        player_role = roles.CreateRole(
            roles_pb2.CreateRole(community_id=community.id, name=ROLE_NAME, priority=1), metadata=as_bot
        )
    print(f"Role: {player_role.name} ({player_role.id}, priority {player_role.priority})")

    # 3. Where the invite leads: the community's system channel (`general` in a new community).
    settings = communities.GetSettings(communities_pb2.GetSettings(community_id=community.id), metadata=as_bot)
    channel_id = settings.system_messages.channel_id
    if not channel_id:
        sys.exit("error: the community has no system channel; set one with Communities/EditSettings")
    listed = channels.GetChannels(channels_pb2.GetChannels(community_id=community.id), metadata=as_bot).channels
    channel_name = next((c.name for c in listed if c.id == channel_id), "?")
    print(f"Invite channel: #{channel_name} ({channel_id})")

    # 4. The invite: role_ids lists the roles given to whoever accepts it. Not `unique`, so running the script
    #    again returns the same still-valid invite instead of piling up new ones.
    invite = invites.CreateInvite(
        invites_pb2.CreateInvite(channel_id=channel_id, role_ids=[player_role.id]), metadata=as_bot
    )
    expires = invite.expires_at.ToJsonString() if invite.HasField("expires_at") else "never"
    print(f"Invite code: {invite.code} (grants {', '.join(r.name for r in invite.roles)}; expires {expires})")
    print(f"Share this code: {invite.code}")

    if not player_token:
        print("Set COMMUNITIES_PLAYER_TOKEN to a player's token to accept the invite as that player.")
        return

    # 5. A player accepts the invite with their own (Bearer) token: they join and get the Player role.
    as_player = (("authorization", f"Bearer {player_token}"),)
    player = users.GetSelf(users_pb2.GetSelf(), metadata=as_player)
    joined = invites.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=as_player)
    print(f"{player.name} ({player.id}) accepted the invite and is in {joined.name}")

    # 6. Check: the player's roles, as the community sees them.
    member = members.GetMembers(
        members_pb2.GetMembers(community_id=community.id, member_ids=[player.id]), metadata=as_bot
    ).members[0]
    names = {r.id: r.name for r in roles.GetRoles(roles_pb2.GetRoles(community_id=community.id), metadata=as_bot).roles}
    print(f"{player.name}'s roles: {', '.join(names.get(r, str(r)) for r in member.role_ids) or '(none)'}")
    if player_role.id not in member.role_ids:
        sys.exit(f"error: {player.name} did not get the {ROLE_NAME} role")
    print(f"{ROLE_NAME} role granted to {player.name}")


if __name__ == "__main__":
    run(main)
