"""Player identities: JSON Web Tokens signed by keys the server trusts (HS256 secrets, RS256/ES256 public keys,
several per issuer), one user per (issuer, subject), and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import func, select

from communities.services import identities
from communities.storage import tables
from communities.v1 import users_pb2
from tests.api.conftest import Db
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details
from tests.support.updates import UpdateStream

SECRET = "a-secret-of-the-game-server-at-least-32-bytes-long"
ROTATED = "the-next-secret-of-the-game-server-also-32-bytes-long"
OTHER_SECRET = "an-entirely-different-secret-nobody-configured-here"
LEEWAY = 1.0

_subjects = itertools.count(1)


def subject() -> str:
    return f"player-{uuid.uuid4().hex[:8]}-{next(_subjects)}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jwt-keys")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    paths = {}
    for name, key in (("rsa", rsa_key), ("ec", ec_key)):
        path = folder / f"{name}.pub.pem"
        path.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        paths[name] = path
    environ = {"GAME_SECRET": SECRET, "GAME_SECRET_NEXT": ROTATED}
    configured = identities.parse_keys(
        [
            "game=HS256:env:GAME_SECRET",
            "game=HS256:env:GAME_SECRET_NEXT",
            f"https://studio.example=RS256:file:{paths['rsa']}",
            f"mobile=ES256:file:{paths['ec']}",
        ],
        environ,
    )
    return {"rsa": rsa_key, "ec": ec_key, "rsa_pem": paths["rsa"].read_bytes(), "configured": configured}


@pytest.fixture(scope="module", autouse=True)
def trusting(server, keys):
    server.app.jwt = identities.JwtVerifier(keys["configured"], leeway_seconds=LEEWAY)
    yield
    server.app.jwt = None


def mint(issuer="game", key=SECRET, algorithm="HS256", *, ttl=300, **claims) -> str:
    payload = {"iss": issuer, "sub": subject(), "exp": int(time.time()) + ttl, "name": "Ada", **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


def bearer(token: str):
    return (("authorization", f"Bearer {token}"),)


def get_self(users_stub, token: str, scheme: str = "Bearer"):
    return users_stub.GetSelf(users_pb2.GetSelf(), metadata=(("authorization", f"{scheme} {token}"),))


def test_a_new_player_signs_in_and_stays_one_user(users_stub, keys):
    sub = subject()
    first = mint(sub=sub, name="  Ada Lovelace ")
    me = get_self(users_stub, first)
    assert me.name == "Ada Lovelace" and not me.bot and me.id
    # Another token for the same subject (later, or renamed): the same user; its name is the one made first.
    again = mint(sub=sub, name="Someone Else", ttl=600)
    assert get_self(users_stub, again).id == me.id
    assert get_self(users_stub, first).id == me.id
    # Another subject, or the same subject of another issuer: another user.
    assert get_self(users_stub, mint(name="Bob")).id != me.id
    other_issuer = mint("mobile", keys["ec"], "ES256", sub=sub)
    assert get_self(users_stub, other_issuer).id != me.id


@pytest.mark.parametrize("kind", ["HS256 rotated key", "RS256", "ES256"])
def test_every_configured_key_signs_players_in(users_stub, keys, kind):
    token = {
        "HS256 rotated key": lambda: mint(key=ROTATED),
        "RS256": lambda: mint("https://studio.example", keys["rsa"], "RS256", name="Rhea"),
        "ES256": lambda: mint("mobile", keys["ec"], "ES256", name="Eve"),
    }[kind]()
    me = get_self(users_stub, token)
    assert me.id and me.name in {"Ada", "Rhea", "Eve"}


def test_without_a_name_claim_the_player_is_called_player(users_stub):
    assert get_self(users_stub, mint(name=None)).name == "Player"
    assert get_self(users_stub, mint(name="\x00bad")).name == "Player"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, key: bytes | None) -> str:
    """A token signed by hand, the way an attacker would (PyJWT refuses to make these)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key is not None else b""
    return f"{signing_input}.{_b64(signature)}"


def claims(**overrides):
    payload = {"iss": "game", "sub": subject(), "exp": int(time.time()) + 300}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


REFUSALS = {
    "bad signature": (lambda k: mint(key=OTHER_SECRET), "JWT_BAD_SIGNATURE"),
    "tampered payload": (
        lambda k: ".".join(
            [mint().split(".")[0], _b64(json.dumps(claims(sub="admin")).encode()), mint().split(".")[2]]
        ),
        "JWT_BAD_SIGNATURE",
    ),
    "alg none": (lambda k: hand_made({"alg": "none", "typ": "JWT"}, claims(), None), "JWT_WRONG_ALGORITHM"),
    "alg None spelled otherwise": (lambda k: hand_made({"alg": "None"}, claims(), None), "JWT_WRONG_ALGORITHM"),
    "HS256 with the RSA public key as secret": (
        lambda k: hand_made({"alg": "HS256"}, claims(iss="https://studio.example"), k["rsa_pem"]),
        "JWT_WRONG_ALGORITHM",
    ),
    "RS256 for an HS256 issuer": (lambda k: mint("game", k["rsa"], "RS256"), "JWT_WRONG_ALGORITHM"),
    "ES256 for an RS256 issuer": (lambda k: mint("https://studio.example", k["ec"], "ES256"), "JWT_WRONG_ALGORITHM"),
    "expired": (lambda k: mint(ttl=-int(LEEWAY) - 5), "JWT_EXPIRED"),
    "not yet valid": (lambda k: mint(nbf=int(time.time()) + 60), "JWT_NOT_YET_VALID"),
    "missing sub": (lambda k: jwt.encode(claims(sub=None), SECRET, algorithm="HS256"), "JWT_MISSING_CLAIM"),
    "missing exp": (lambda k: jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), "JWT_MISSING_CLAIM"),
    "missing iss": (lambda k: jwt.encode(claims(iss=None), SECRET, algorithm="HS256"), "JWT_MISSING_CLAIM"),
    "unknown issuer": (lambda k: mint("someone-else"), "JWT_UNKNOWN_ISSUER"),
    "issuer of another key": (lambda k: mint("mobile"), "JWT_WRONG_ALGORITHM"),
    "sub not a string": (lambda k: jwt.encode(claims(sub=42), SECRET, algorithm="HS256"), "JWT_INVALID_CLAIM"),
    "exp not a number": (lambda k: jwt.encode(claims(exp="soon"), SECRET, algorithm="HS256"), "JWT_INVALID_CLAIM"),
    "sub too long": (lambda k: mint(sub="x" * 256), "JWT_INVALID_CLAIM"),
    "an audience nobody configured": (lambda k: mint(aud="another-service"), "JWT_WRONG_AUDIENCE"),
    "three dots of garbage": (lambda k: "not.a.jwt", "JWT_MALFORMED"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_tokens_say_why(users_stub, keys, case):
    make, reason = REFUSALS[case]
    token = make(keys)
    error = rpc_error(get_self, users_stub, token)
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, reason)
    info, _ = details(error)
    if reason == "JWT_MISSING_CLAIM":
        assert info.metadata["claim"] == case.removeprefix("missing ")
    for part in token.split("."):
        if len(part) > 8:
            assert part not in (error.details() or ""), "the token is never echoed"


def test_a_player_token_is_refused_as_a_bot_token(users_stub):
    error = rpc_error(get_self, users_stub, mint(), "Bot")
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_expiry_within_the_leeway_is_accepted(users_stub):
    assert get_self(users_stub, mint(ttl=-int(LEEWAY) + 1)).id  # expired now, but within the clock skew allowed


def test_a_server_trusting_no_issuer_refuses_jwts(server, users_stub):
    token = mint()
    saved, server.app.jwt = server.app.jwt, None
    try:
        assert_error(rpc_error(get_self, users_stub, token), grpc.StatusCode.UNAUTHENTICATED, "JWT_UNKNOWN_ISSUER")
    finally:
        server.app.jwt = saved


def test_racing_first_calls_create_exactly_one_user(server, grpc_channel, users_stub):
    sub = subject()
    name = f"Racer {sub}"
    tokens = [mint(sub=sub, name=name, ttl=300 + index) for index in range(4)]  # the same token, and others
    start = threading.Barrier(16)
    results: list = []

    def sign_in(index: int) -> None:
        start.wait()
        try:
            results.append(get_self(users_stub, tokens[index % len(tokens)]).id)
        except grpc.RpcError as error:  # pragma: no cover - shown in the assertion below
            results.append(error)

    threads = [threading.Thread(target=sign_in, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 16 and len(set(results)) == 1, results
    db = Db(server)
    assert db.scalar(select(func.count()).select_from(tables.users).where(tables.users.c.name == name)) == 1
    assert (
        db.scalar(select(func.count()).select_from(tables.jwt_identities).where(tables.jwt_identities.c.subject == sub))
        == 1
    )


def test_an_update_stream_ends_when_its_jwt_expires(grpc_channel):
    token = mint(ttl=2)
    expires_at = time.time() + 2 + LEEWAY
    stream = UpdateStream(grpc_channel, bearer(token))
    deadline = time.time() + 15
    while stream.error is None and time.time() < deadline:
        time.sleep(0.05)
    assert stream.error is not None, "the stream outlived its token"
    ended = time.time()
    assert_error(stream.error, grpc.StatusCode.UNAUTHENTICATED, "JWT_EXPIRED")
    assert expires_at - 1.5 <= ended <= expires_at + 2.5, (ended, expires_at)
