"""Post and read: the bot posts in the community's system channel, a player sees the unread count go up in
GetCommunities, reads the history and marks it read, and the count goes back to zero.

Environment:
  COMMUNITIES_BOT_TOKEN     the bot's token (required; never put it in the code)
  COMMUNITIES_PLAYER_TOKEN  a person's token (required): the reader; joins the bot's community if not in it yet
  COMMUNITIES_ADDRESS       host:port of the server (default 127.0.0.1:50051)

Run from the project root: .venv/bin/python examples/python/post_and_read.py
"""

import os
import random
import sys
from datetime import UTC

import grpc
from common import bot_token, run

from communities.v1 import (
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)

COMMUNITY_NAME = "My Game"
HISTORY = 5


def main() -> None:
    # IMPORTANT: never hard-code tokens or commit them; read them from the environment.
    token = bot_token()
    player_token = os.environ.get("COMMUNITIES_PLAYER_TOKEN")
    if not player_token:
        sys.exit("error: COMMUNITIES_PLAYER_TOKEN is not set: the token of the person who reads the messages")
    address = os.environ.get("COMMUNITIES_ADDRESS", "127.0.0.1:50051")

    as_bot = (("authorization", f"Bot {token}"),)
    as_player = (("authorization", f"Bearer {player_token}"),)
    channel = grpc.insecure_channel(address)
    users = users_pb2_grpc.UsersStub(channel)
    communities = communities_pb2_grpc.CommunitiesStub(channel)
    invites = invites_pb2_grpc.InvitesStub(channel)
    messages = messages_pb2_grpc.MessagesStub(channel)

    bot = users.GetSelf(users_pb2.GetSelf(), metadata=as_bot)
    player = users.GetSelf(users_pb2.GetSelf(), metadata=as_player)
    names = {bot.id: bot.name, player.id: player.name}
    print(f"Signed in as bot {bot.name} ({bot.id})")

    # 1. The bot's community (made if missing) and its system channel, where the bot posts.
    owned = communities.GetCommunities(communities_pb2.GetCommunities(), metadata=as_bot).communities
    community = next((c for c in owned if c.owner and c.name == COMMUNITY_NAME), None)
    if community is None:
        community = communities.CreateCommunity(communities_pb2.CreateCommunity(name=COMMUNITY_NAME), metadata=as_bot)
    print(f"Community: {community.name} ({community.id})")
    settings = communities.GetSettings(communities_pb2.GetSettings(community_id=community.id), metadata=as_bot)
    channel_id = settings.system_messages.channel_id
    if not channel_id:
        sys.exit("error: the community has no system channel; set one with Communities/EditSettings")

    # 2. The player joins (an invite to the channel; accepting it again as a member changes nothing).
    invite = invites.CreateInvite(invites_pb2.CreateInvite(channel_id=channel_id), metadata=as_bot)
    invites.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=as_player)
    print(f"{player.name} ({player.id}) is in {community.name}")

    def show_unread() -> None:
        """The player's counters for the community, as GetCommunities reports them."""
        listed = communities.GetCommunities(communities_pb2.GetCommunities(), metadata=as_player)
        info = next(i for i in listed.community_user_info if i.community_id == community.id)
        counts = f"{info.unread_count} (mentions: {info.unread_mention_count})"
        print(f"{player.name}'s unread in {community.name}: {counts}")

    show_unread()

    # 3. The bot posts, mentioning the player. client_id makes a retry of this call (after a timeout, say) answer
    #    the same message instead of posting it twice.
    text = f"Welcome to {community.name}, <@{player.id}>!"
    sent = messages.SendMessage(
        messages_pb2.SendMessage(channel_id=channel_id, text=text, client_id=random.getrandbits(63)), metadata=as_bot
    )
    print(f"{bot.name} posted message {sent.id}: {sent.text}")
    show_unread()

    # 4. The player reads the newest messages (newest first) and marks the newest one read.
    history = messages.GetHistory(messages_pb2.GetHistory(channel_id=channel_id, limit=HISTORY), metadata=as_player)
    print(f"{player.name} reads the newest {len(history.messages)} messages:")
    for message in history.messages:
        when = message.created_at.ToDatetime(tzinfo=UTC).strftime("%H:%M:%S")
        author = names.get(message.author_id, str(message.author_id))
        if message.type == messages_pb2.MESSAGE_TYPE_JOIN:
            print(f"  {when} {author} joined")
        else:
            print(f"  {when} {author}: {message.text}")
    state = messages.MarkRead(
        messages_pb2.MarkRead(channel_id=channel_id, message_id=history.messages[0].id), metadata=as_player
    )
    print(
        f"{player.name} marked message {state.last_read_message_id} read: "
        f"{state.unread_count} unread in the channel (mentions: {state.unread_mention_count})"
    )
    show_unread()


if __name__ == "__main__":
    run(main)
