"""Player identities and revocation against `communities serve` processes: a game signs its players in (the
examples, grpcurl), the CLI lists and shows them, bad key settings stop the start with one line, and a token
revoked with the CLI is refused by the running server within a second although it had it cached."""

from __future__ import annotations

import shutil
import time

import grpc
import jwt
import pytest

from communities.v1 import users_pb2, users_pb2_grpc
from tests.e2e.helpers import BIN, COMMUNITIES, ROOT, UNAUTHENTICATED_EXIT, clean_env, grpcurl, run

pytestmark = pytest.mark.e2e

SECRET = "e2e-secret-of-the-game-server-long-enough-for-hs256"
ISSUER = "my-game"


def mint(sub: str, name: str, *, secret: str = SECRET, ttl: int = 300) -> str:
    return jwt.encode(
        {"iss": ISSUER, "sub": sub, "name": name, "exp": int(time.time()) + ttl}, secret, algorithm="HS256"
    )


def test_a_game_signs_its_players_in(e2e):
    database = e2e.sqlite_url()
    e2e.secrets.add(SECRET)
    server = e2e.server("--jwt-key", f"{ISSUER}=HS256:env:GAME_SECRET", database=database, env={"GAME_SECRET": SECRET})
    assert f"accepting JSON Web Tokens of issuers '{ISSUER}'" in server.stderr()

    # grpcurl with a token the game minted: the first call makes the user.
    token = mint("steam-76561198000000001", "Ada")
    e2e.secrets.add(token)
    me = grpcurl(server.address, "communities.v1.Users/GetSelf", authorization=f"Bearer {token}").ok().json()
    assert me["name"] == "Ada"
    again = grpcurl(server.address, "communities.v1.Users/GetSelf", authorization=f"Bearer {mint(me['name'], 'x')}")
    assert again.ok().json()["id"] != me["id"], "another subject is another user"
    forged = grpcurl(
        server.address,
        "communities.v1.Users/GetSelf",
        authorization=f"Bearer {mint('steam-76561198000000001', 'Ada', secret='x' * 40)}",
        extra=["-format-error"],
    )
    assert forged.returncode == UNAUTHENTICATED_EXIT and "JWT_BAD_SIGNATURE" in forged.stderr, forged.describe()

    # The examples: the game mints, the player calls. Python, then Node (the same player: the same user).
    env = clean_env(COMMUNITIES_ADDRESS=server.address, COMMUNITIES_GAME_SECRET=SECRET, COMMUNITIES_GAME_ISSUER=ISSUER)
    python = run(
        [str(BIN / "python"), "examples/python/game_tokens.py", "player-42", "Grace"], env=env, timeout=60
    ).ok()
    lines = python.stdout.splitlines()
    assert lines[0] == "minted a token for player player-42 (valid 3600 s)", python.describe()
    assert lines[1].startswith("signed in as user ") and lines[1].endswith(' "Grace"'), python.describe()
    assert lines[2] == "in 0 communities", python.describe()
    node = shutil.which("node")
    if node is not None and (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        from_node = run([node, "examples/node/game_tokens.js", "player-42", "Grace"], env=env, timeout=60).ok()
        assert from_node.stdout == python.stdout, from_node.describe()

    # The operator sees them: `users list --name`, `users show ID`.
    listed = e2e.cli("users", "list", "--name", "grA", "--json", database=database).ok().json()
    assert [user["name"] for user in listed] == ["Grace"]
    grace_id = listed[0]["id"]
    assert lines[1] == f'signed in as user {grace_id} "Grace"'
    shown = e2e.cli("users", "show", grace_id, "--json", database=database).ok().json()
    assert shown["identities"] == [{"issuer": ISSUER, "subject": "player-42"}]
    assert shown["bot"] is False and shown["tokens"] == 0 and shown["name"] == "Grace"
    text = e2e.cli("users", "show", grace_id, database=database).ok().stdout
    assert f"user Grace id {grace_id}" in text and "subject 'player-42'" in text
    everyone = e2e.cli("users", "list", database=database).ok().stdout.splitlines()
    assert len(everyone) == 3 and all(line.split()[1] == "user" for line in everyone), everyone
    missing = e2e.cli("users", "show", "12345", database=database)
    assert missing.returncode == 1 and "Unknown user" in missing.stderr
    e2e.assert_no_secret_logged()


@pytest.mark.parametrize(
    ("spec", "env", "expected"),
    [
        ("my-game=HS256:env:NOPE", {}, "environment variable NOPE is not set"),
        ("my-game=HS256:env:SHORT", {"SHORT": "tooshort-secret"}, "at least 32 bytes"),
        ("my-game=HS256:" + "s" * 40, {}, "entries must be ISSUER=ALG:file:PATH or ISSUER=ALG:env:NAME"),
        ("my-game=RS256:file:/nonexistent/key.pem", {}, "cannot read the file"),
        ("my-game=RS256:env:SHORT", {"SHORT": "x"}, "public keys are read from a PEM file"),
        ("my-game=none:env:SHORT", {"SHORT": "x"}, "entries must be"),
    ],
    ids=["env unset", "short secret", "secret inline", "no key file", "public key from env", "alg none"],
)
def test_bad_key_settings_stop_the_start_with_one_line(e2e, spec, env, expected):
    result = run(
        [COMMUNITIES, "serve", "--listen", "127.0.0.1:0", "--jwt-key", spec],
        env=clean_env(COMMUNITIES_DATABASE=e2e.sqlite_url(), **env),
        timeout=60,
    )
    assert result.returncode == 1, result.describe()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.describe()
    assert "Traceback" not in result.stderr
    assert "s" * 40 not in result.stderr and "tooshort-secret" not in result.stderr, "a secret was printed"


def test_a_token_revoked_with_the_cli_is_refused_within_a_second(e2e):
    database = e2e.sqlite_url()
    server = e2e.server(database=database)
    alice = e2e.create_user("Alice", database=database)
    metadata = (("authorization", f"Bearer {alice['token']}"),)
    with grpc.insecure_channel(server.address) as channel:
        stub = users_pb2_grpc.UsersStub(channel)
        for _ in range(5):  # cached from the first call on
            assert stub.GetSelf(users_pb2.GetSelf(), metadata=metadata).name == "Alice"
        e2e.cli("tokens", "revoke", alice["token"], database=database).ok()
        revoked_at = time.monotonic()
        while True:
            try:
                stub.GetSelf(users_pb2.GetSelf(), metadata=metadata)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() - revoked_at < 1.0, "the revoked token still works after 1 s"
            time.sleep(0.02)
