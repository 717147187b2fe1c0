"""Signing in to the console with a one-time link, on both databases: the code gives a real token of its user
once (also under 20 racing redeems across two replicas), expired codes and tokens are refused, `tokens revoke`
ends the token, and neither codes nor tokens are stored or logged in clear."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from communities.services import users as users_service
from communities.storage import tables
from communities.v1 import users_pb2
from communities.web import login
from tests.web.conftest import assert_connect_error, call_json

USED_OR_EXPIRED = {"code": "unauthenticated", "message": "this login link was already used or has expired"}


def link(server, account, **options) -> str:
    return server.run(login.create_link(server.app, account.id, **options))


def redeem(client: httpx.Client, code: str) -> httpx.Response:
    return client.post("/console/login", json={"code": code})


def get_self(client: httpx.Client, token: str, *, bot: bool = False) -> httpx.Response:
    return call_json(client, "Users/GetSelf", {}, {"authorization": f"{'Bot' if bot else 'Bearer'} {token}"})


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize("bot", [False, True], ids=["user", "bot"])
def test_login_link_gives_a_token_of_the_user_once(server, console, make_account, users_stub, bot):
    account = make_account(bot=bot)
    code = link(server, account)
    started = time.time()
    answer = redeem(console, code)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    session = answer.json()
    assert set(session) == {"token", "user_id", "name", "bot", "expires_at"}
    assert (session["user_id"], session["name"], session["bot"]) == (str(account.id), account.name, bot)
    expires = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo == UTC or expires.utcoffset().total_seconds() == 0
    assert abs(expires.timestamp() - (started + login.TOKEN_SECONDS)) < 60
    token = session["token"]
    assert token.startswith("cmt_") and token != account.token

    me = get_self(console, token, bot=bot)
    assert me.status_code == 200 and me.json()["id"] == str(account.id), me.text
    # A real token of the user: the gRPC API takes it as well.
    scheme = "Bot" if bot else "Bearer"
    assert users_stub.GetSelf(users_pb2.GetSelf(), metadata=(("authorization", f"{scheme} {token}"),)).id == account.id

    again = redeem(console, code)
    assert again.status_code == 401 and again.json() == USED_OR_EXPIRED


def test_codes_and_tokens_are_stored_hashed_and_never_logged(server, console, make_account, db, caplog):
    account = make_account()
    with caplog.at_level(logging.DEBUG):
        code = link(server, account)
        token = redeem(console, code).json()["token"]
        assert get_self(console, token).status_code == 200
    logged = caplog.text
    assert code not in logged and token not in logged
    assert f"user:{account.id}" in logged  # the sign-in itself is logged, by who
    links = db.rows(select(tables.console_login_links).where(tables.console_login_links.c.user_id == account.id))
    assert len(links) == 1 and links[0].code_hash == users_service.hash_token(code) and links[0].used_at is not None
    stored = db.rows(select(tables.tokens).where(tables.tokens.c.user_id == account.id))
    assert users_service.hash_token(token) in [row.token_hash for row in stored]
    assert all(token.encode() not in row.token_hash for row in stored)


def test_racing_redeems_across_replicas_sign_in_once(server, console_replica, make_account, db):
    account = make_account()
    code = link(server, account)
    urls = [server.console_url, console_replica.console_url]

    def attempt(index: int) -> int:
        with httpx.Client(base_url=urls[index % 2], timeout=30) as client:
            return redeem(client, code).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert sorted(statuses) == [200] + [401] * 19, statuses
    tokens = db.rows(select(tables.tokens.c.token_hash).where(tables.tokens.c.user_id == account.id))
    assert len(tokens) == 2  # the account's own token and exactly one console token


def test_expired_code_is_refused(server, console, make_account):
    code = link(server, make_account(), seconds=0)
    answer = redeem(console, code)
    assert answer.status_code == 401 and answer.json() == USED_OR_EXPIRED
    assert redeem(console, "never-issued").json() == USED_OR_EXPIRED


def test_unknown_user_has_no_link(server, make_account):
    from communities.domain.errors import NotFound

    with pytest.raises(NotFound):
        server.run(login.create_link(server.app, 12345))


def test_console_token_expires(server, console, make_account):
    account = make_account()
    code = link(server, account)
    session = server.run(login.redeem(server.app, code, token_seconds=2))
    assert session is not None
    assert get_self(console, session.token).status_code == 200  # now also in the credential cache
    wait_until(lambda: time.time() * 1000 >= session.expires_ms + 50, timeout=5)
    assert_connect_error(get_self(console, session.token), 401, "unauthenticated", "UNAUTHENTICATED")


def test_tokens_revoke_ends_a_console_token(server, console, make_account):
    account = make_account()
    token = redeem(console, link(server, account)).json()["token"]
    assert get_self(console, token).status_code == 200
    assert server.run(users_service.revoke(server.app, token)) == 1
    wait_until(lambda: get_self(console, token).status_code == 401)
    # The user's other token is untouched.
    assert get_self(console, account.token).status_code == 200


@pytest.mark.parametrize(
    ("method", "headers", "body", "status"),
    [
        ("GET", {}, None, 405),
        ("PUT", {"content-type": "application/json"}, b'{"code": "x"}', 405),
        ("POST", {"content-type": "text/plain"}, b'{"code": "x"}', 415),
        ("POST", {}, b'{"code": "x"}', 415),
        ("POST", {"content-type": "application/json"}, b"{not json", 400),
        ("POST", {"content-type": "application/json"}, b'["x"]', 400),
        ("POST", {"content-type": "application/json"}, b'{"code": 5}', 400),
        ("POST", {"content-type": "application/json"}, b'{"code": ""}', 400),
        ("POST", {"content-type": "application/json"}, b'{"code": "' + b"x" * 5000 + b'"}', 413),
    ],
    ids=["get", "put", "text", "no-type", "bad-json", "not-object", "not-string", "empty", "huge"],
)
def test_bad_login_requests_are_clear_4xx(console, method, headers, body, status):
    answer = console.request(method, "/console/login", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["code"] in ("invalid_argument", "unimplemented") and error["message"], error
    if status == 405:
        assert answer.headers["allow"] == "POST"
