"""Targeted invite: only your paying supporters can accept it, and it gives them a Supporter role that opens a
private #supporter-chat channel.

The second walk-through of the community invites tutorial, on communities.v1 with the generated Python stubs.

Environment:
  COMMUNITIES_BOT_TOKEN        the bot's token (required; never put it in the code)
  COMMUNITIES_SUPPORTER_IDS    comma-separated user ids allowed to accept the invite (required)
  COMMUNITIES_ADDRESS          host:port of the server (default 127.0.0.1:50051)
  COMMUNITIES_SUPPORTER_TOKEN  optional: a listed supporter's token; accepts the invite as them
  COMMUNITIES_OUTSIDER_TOKEN   optional: an unlisted person's token; shows the invite does not exist for them

Run from the project root: .venv/bin/python examples/python/supporter_invite.py
"""

import os
import sys
import time

import grpc
from common import bot_token, explain, run

from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    permissions_pb2,
    roles_pb2,
    roles_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)

COMMUNITY_NAME = "My Game"
ROLE_NAME = "Supporter"
CHANNEL_NAME = "supporter-chat"

VIEW_CHANNEL = permissions_pb2.COMMUNITY_PERMISSION_VIEW_CHANNEL  # 2
SEND_MESSAGES = permissions_pb2.COMMUNITY_PERMISSION_SEND_MESSAGES  # 4
ADD_REACTIONS = permissions_pb2.COMMUNITY_PERMISSION_ADD_REACTIONS  # 4096


def main() -> None:
    # IMPORTANT: never hard-code tokens or commit them; read them from the environment.
    token = bot_token()
    # In production you would fetch these from your subscription database.
    supporter_ids = [i.strip() for i in os.environ.get("COMMUNITIES_SUPPORTER_IDS", "").split(",") if i.strip()]
    if not supporter_ids:
        sys.exit("error: COMMUNITIES_SUPPORTER_IDS is not set: give the supporters' user ids, comma-separated.")
    address = os.environ.get("COMMUNITIES_ADDRESS", "127.0.0.1:50051")

    as_bot = (("authorization", f"Bot {token}"),)
    channel = grpc.insecure_channel(address)
    users = users_pb2_grpc.UsersStub(channel)
    communities = communities_pb2_grpc.CommunitiesStub(channel)
    roles = roles_pb2_grpc.RolesStub(channel)
    channels = channels_pb2_grpc.ChannelsStub(channel)
    invites = invites_pb2_grpc.InvitesStub(channel)

    bot = users.GetSelf(users_pb2.GetSelf(), metadata=as_bot)
    print(f"Signed in as bot {bot.name} ({bot.id})")

    # 1. The community: reuse the one the bot owns, or create it. As owner the bot holds every permission,
    #    including MODIFY_COMMUNITY (Discord's MANAGE_GUILD), which targeted invites need.
    owned = communities.GetCommunities(communities_pb2.GetCommunities(), metadata=as_bot).communities
    community = next((c for c in owned if c.owner and c.name == COMMUNITY_NAME), None)
    if community is None:
        community = communities.CreateCommunity(communities_pb2.CreateCommunity(name=COMMUNITY_NAME), metadata=as_bot)
    print(f"Community: {community.name} ({community.id})")

    # 2. The Supporter role. It needs no permissions of its own: the channel overrides below do the work.
    existing = roles.GetRoles(roles_pb2.GetRoles(community_id=community.id), metadata=as_bot).roles
    supporter_role = next((r for r in existing if r.name == ROLE_NAME), None)
    if supporter_role is None:
        supporter_role = roles.CreateRole(
            roles_pb2.CreateRole(community_id=community.id, name=ROLE_NAME, priority=1), metadata=as_bot
        )
    print(f"Role: {supporter_role.name} ({supporter_role.id})")

    # 3. The private channel: everyone (role_id = the community id) is denied VIEW_CHANNEL; the Supporter role is
    #    allowed to view it, send messages and add reactions. Overrides are created or replaced.
    listed = channels.GetChannels(channels_pb2.GetChannels(community_id=community.id), metadata=as_bot).channels
    private = next((c for c in listed if c.name == CHANNEL_NAME and c.type == channels_pb2.TEXT), None)
    if private is None:
        private = channels.CreateChannel(
            channels_pb2.CreateChannel(community_id=community.id, name=CHANNEL_NAME, type=channels_pb2.TEXT),
            metadata=as_bot,
        )
    for role_id, overrides in (
        (community.id, channels_pb2.PermissionOverrides(neg=VIEW_CHANNEL)),
        (supporter_role.id, channels_pb2.PermissionOverrides(pos=VIEW_CHANNEL | SEND_MESSAGES | ADD_REACTIONS)),
    ):
        channels.CreateChannelOverride(
            channels_pb2.CreateChannelOverride(channel_id=private.id, role_id=role_id, overrides=overrides),
            metadata=as_bot,
        )
    print(f"Private channel: #{private.name} ({private.id}), visible to {ROLE_NAME} only")

    # 4. The targeted invite: target_users_file is a CSV file of user ids (one per line); only those users can
    #    see and accept it. role_ids gives them the Supporter role.
    csv_file = "\n".join(supporter_ids).encode()
    invite = invites.CreateInvite(
        invites_pb2.CreateInvite(channel_id=private.id, role_ids=[supporter_role.id], target_users_file=csv_file),
        metadata=as_bot,
    )

    # 5. The list is stored by a job (in the background for large files); the invite admits nobody until it is
    #    COMPLETED, so wait for it.
    deadline = time.monotonic() + 300
    while True:
        job = invites.GetTargetUsersJobStatus(invites_pb2.GetTargetUsersJobStatus(code=invite.code), metadata=as_bot)
        if job.status == invites_pb2.COMPLETED:
            break
        if job.status == invites_pb2.FAILED:
            sys.exit(f"error: storing the target users failed: {job.error_message}")
        if time.monotonic() > deadline:
            sys.exit(f"error: target users still {invites_pb2.JobStatus.Name(job.status)} after 5 minutes")
        time.sleep(0.5)
    unknown = f", {job.unknown_users} not registered yet" if job.unknown_users else ""
    print(f"Target users stored: {job.processed_users} of {job.total_users}{unknown}")
    print(f"Invite code: {invite.code} (targeted; grants {', '.join(r.name for r in invite.roles)})")
    print(f"Share this code with your supporters: {invite.code}")

    # 6. A listed supporter looks the invite up, accepts it, and now sees #supporter-chat.
    supporter_token = os.environ.get("COMMUNITIES_SUPPORTER_TOKEN")
    if supporter_token:
        as_supporter = (("authorization", f"Bearer {supporter_token}"),)
        supporter = users.GetSelf(users_pb2.GetSelf(), metadata=as_supporter)
        preview = invites.LookupInvite(invites_pb2.LookupInvite(code=invite.code), metadata=as_supporter)
        print(f"{supporter.name} sees the invite to {preview.community_name} #{preview.channel_name}")
        invites.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=as_supporter)
        visible = channels.GetChannels(
            channels_pb2.GetChannels(community_id=community.id), metadata=as_supporter
        ).channels
        names = [c.name for c in visible]
        print(f"Channels {supporter.name} can see: {', '.join('#' + n for n in names)}")
        if CHANNEL_NAME not in names:
            sys.exit(f"error: {supporter.name} accepted the invite but cannot see #{CHANNEL_NAME}")

    # 7. Anyone not on the list gets NOT_FOUND, exactly as for a code that does not exist.
    outsider_token = os.environ.get("COMMUNITIES_OUTSIDER_TOKEN")
    if outsider_token:
        as_outsider = (("authorization", f"Bearer {outsider_token}"),)
        outsider = users.GetSelf(users_pb2.GetSelf(), metadata=as_outsider)
        try:
            invites.LookupInvite(invites_pb2.LookupInvite(code=invite.code), metadata=as_outsider)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            print(f"{outsider.name} is not on the list; looking the invite up gives {explain(error)}")
        else:
            sys.exit(f"error: {outsider.name} is not a supporter but can see the invite")


if __name__ == "__main__":
    run(main)
