"""Player identities: a game server signs a token for one of its players, and the player calls the service with
it. No operator CLI, no account to create: the first call with a new (issuer, subject) makes the user.

The server trusts the game's key, e.g. with an HMAC secret shared between them:
  GAME_SECRET=$(openssl rand -base64 48) \\
    .venv/bin/communities serve --jwt-key my-game=HS256:env:GAME_SECRET
(RS256 or ES256 instead: the game keeps the private key, the server gets the public key's PEM file:
`--jwt-key my-game=RS256:file:game.pub.pem`.)

Environment:
  COMMUNITIES_GAME_SECRET  the HS256 secret the server was given (required; never put it in the code)
  COMMUNITIES_GAME_ISSUER  the `iss` the server trusts that secret for (default my-game)
  COMMUNITIES_ADDRESS      host:port of the server (default 127.0.0.1:50051)

Run from the project root: .venv/bin/python examples/python/game_tokens.py PLAYER_ID "Display Name"
"""

import os
import sys
import time

import grpc
import jwt
from common import run

from communities.v1 import communities_pb2, communities_pb2_grpc, users_pb2, users_pb2_grpc

TOKEN_LIFETIME_SECONDS = 3600


def mint(issuer: str, secret: str, player_id: str, name: str) -> str:
    """What the game server does when its player logs in: a short-lived token naming the player. `sub` is the
    game's own id for the player (the same player always gets the same user); `name` is used once, for the new
    user's display name; `exp` is required."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": player_id, "name": name, "iat": now, "exp": now + TOKEN_LIFETIME_SECONDS}
    return jwt.encode(claims, secret, algorithm="HS256")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: game_tokens.py PLAYER_ID NAME")
    player_id, name = sys.argv[1], sys.argv[2]
    secret = os.environ.get("COMMUNITIES_GAME_SECRET")
    if not secret:
        sys.exit("error: COMMUNITIES_GAME_SECRET is not set: the HS256 secret the server trusts for your game")
    issuer = os.environ.get("COMMUNITIES_GAME_ISSUER", "my-game")

    # On the game server: sign the player's identity.
    token = mint(issuer, secret, player_id, name)
    print(f"minted a token for player {player_id} (valid {TOKEN_LIFETIME_SECONDS} s)")

    # On the player's machine: call the service with it, as `Bearer`.
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(os.environ.get("COMMUNITIES_ADDRESS", "127.0.0.1:50051")) as channel:
        me = users_pb2_grpc.UsersStub(channel).GetSelf(users_pb2.GetSelf(), metadata=metadata)
        print(f'signed in as user {me.id} "{me.name}"')
        mine = communities_pb2_grpc.CommunitiesStub(channel).GetCommunities(
            communities_pb2.GetCommunities(), metadata=metadata
        )
        print(f"in {len(mine.communities)} communities")


if __name__ == "__main__":
    run(main)
