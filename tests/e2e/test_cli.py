"""The operator CLI against a running server: users, tokens (create, revoke without a restart), migrate, names."""

from __future__ import annotations

from pathlib import Path

import pytest

from communities.storage import migrate
from tests.e2e.helpers import CLI_WORKERS, TOKEN_RE, UNAUTHENTICATED_EXIT, check_snowflake, grpcurl, worker_of

pytestmark = pytest.mark.e2e


def get_self(server, authorization: str):
    return grpcurl(server.address, "communities.v1.Users/GetSelf", authorization=authorization)


def test_users_and_tokens(e2e):
    database = e2e.sqlite_url()
    server = e2e.server(database=database)

    # `users create NAME --json` while the server runs: {"id", "name", "bot", "token"}, id a decimal string.
    alice = e2e.create_user("Alice", database=database)
    assert list(alice) == ["id", "name", "bot", "token"], alice
    check_snowflake(alice["id"], since_ms=e2e.started_ms)
    assert worker_of(alice["id"]) in CLI_WORKERS, "the CLI mints ids with a worker id of its own, not a server's"
    assert alice["name"] == "Alice" and alice["bot"] is False
    assert TOKEN_RE.fullmatch(alice["token"]), alice
    helper = e2e.create_user("Helper", database=database, bot=True)
    assert helper["bot"] is True and helper["name"] == "Helper" and helper["id"] != alice["id"]

    # A person's token works as `Bearer`, a bot's as `Bot`; the other scheme is UNAUTHENTICATED.
    assert get_self(server, f"Bearer {alice['token']}").ok().json() == {"id": alice["id"], "name": "Alice"}
    assert get_self(server, f"Bot {helper['token']}").ok().json() == {"id": helper["id"], "name": "Helper", "bot": True}
    assert get_self(server, f"Bot {alice['token']}").returncode == UNAUTHENTICATED_EXIT
    assert get_self(server, f"Bearer {helper['token']}").returncode == UNAUTHENTICATED_EXIT
    assert get_self(server, "Bearer cmt_not-a-token-at-all-not-a-token").returncode == UNAUTHENTICATED_EXIT

    # `tokens create USER_ID` gives another working token (as JSON, or as text with the header to send).
    second = e2e.cli("tokens", "create", alice["id"], "--json", database=database).ok().json()
    assert second["id"] == alice["id"] and second["bot"] is False
    assert TOKEN_RE.fullmatch(second["token"]) and second["token"] != alice["token"]
    text = e2e.cli("tokens", "create", alice["id"], database=database).ok()
    tokens = TOKEN_RE.findall(text.stdout)
    assert tokens and len(set(tokens)) == 1, text.describe()
    third = tokens[0]
    assert f"authorization: Bearer {third}" in text.stdout, text.describe()
    for token in (alice["token"], second["token"], third):
        assert get_self(server, f"Bearer {token}").ok().json()["id"] == alice["id"]

    # `tokens revoke TOKEN`: that token fails at once, the others still work, the server keeps running.
    revoked = e2e.cli("tokens", "revoke", second["token"], database=database).ok()
    assert revoked.stdout.strip() == "revoked 1 token", revoked.describe()
    assert get_self(server, f"Bearer {second['token']}").returncode == UNAUTHENTICATED_EXIT
    assert get_self(server, f"Bearer {alice['token']}").ok()
    assert get_self(server, f"Bearer {third}").ok()

    # `tokens revoke USER_ID`: every token of that user.
    revoked = e2e.cli("tokens", "revoke", alice["id"], database=database).ok()
    assert revoked.stdout.strip() == "revoked 2 tokens", revoked.describe()
    for token in (alice["token"], second["token"], third):
        assert get_self(server, f"Bearer {token}").returncode == UNAUTHENTICATED_EXIT
    assert get_self(server, f"Bot {helper['token']}").ok(), "another user's token is untouched"

    assert server.poll() is None, f"the server stopped\n{server.describe()}"
    unauthenticated = [
        line for line in server.call_log_lines("/communities.v1.Users/GetSelf") if "status=UNAUTHENTICATED" in line
    ]
    assert len(unauthenticated) == 7 and all("principal=- " in line for line in unauthenticated), unauthenticated
    e2e.assert_no_secret_logged()


def test_migrate_a_fresh_sqlite_file_then_serve_on_it(e2e):
    database = e2e.sqlite_url("migrated")
    path = Path(database.removeprefix("sqlite:///"))
    assert not path.exists()
    head = migrate.head_revision()
    result = e2e.cli("migrate", "--database", database, database=None).ok()
    assert result.stdout.strip() == f"database {database} is at schema {head}", result.describe()
    assert path.exists()
    again = e2e.cli("migrate", "--database", database, database=None).ok()
    assert again.stdout == result.stdout, "migrate is idempotent"

    server = e2e.server(database=database)
    assert "creating the schema" not in server.stderr(), server.describe()
    assert grpcurl(server.address, "grpc.health.v1.Health/Check").ok().json() == {"status": "SERVING"}


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "must not be empty"), ("x" * 101, "must be at most 100 characters")],
    ids=["empty", "too-long"],
)
def test_invalid_user_names_are_refused(e2e, name, message):
    result = e2e.cli("users", "create", name, "--json", database=e2e.sqlite_url())
    assert result.returncode != 0, result.describe()
    assert result.stdout == "", result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    assert result.stderr.splitlines()[-1].startswith(f"error: name: {message}"), result.describe()
