"""`communities serve --database postgresql://...`: refuses an unmigrated database, serves after `migrate`."""

from __future__ import annotations

import asyncio

import pytest

from communities.storage import migrate
from tests.e2e.helpers import address, check_snowflake, grpcurl
from tests.support.postgres import create_database

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def test_postgres_needs_migrate_then_serves(e2e, postgres_url):
    database = asyncio.run(create_database(postgres_url))

    # Not migrated: the server refuses to start, says what to run, exits non-zero.
    refused = e2e.server("--database", database, database=None, listen=address(), ready=False)
    code = refused.wait(timeout=30)
    assert code != 0, refused.describe()
    assert "communities migrate" in refused.stderr(), refused.describe()
    assert "Traceback" not in refused.stderr(), refused.describe()

    migrated = e2e.cli("migrate", "--database", database, database=None).ok()
    assert f"is at schema {migrate.head_revision()}" in migrated.stdout, migrated.describe()

    server = e2e.server("--database", database, database=None)
    bot = e2e.create_user("PG Bot", database=database, bot=True)
    authorization = f"Bot {bot['token']}"
    created = grpcurl(
        server.address,
        "communities.v1.Communities/CreateCommunity",
        data={"name": "On PostgreSQL"},
        authorization=authorization,
    ).ok()
    community = created.json()
    assert community == {"id": community["id"], "owner": True, "name": "On PostgreSQL", "permissions": "57343"}
    check_snowflake(community["id"], since_ms=e2e.started_ms)
    listed = grpcurl(server.address, "communities.v1.Communities/GetCommunities", authorization=authorization).ok()
    assert listed.json() == {
        "communities": [community],
        "community_user_info": [{"community_id": community["id"]}],
    }
    assert server.call_log_lines("/communities.v1.Communities/GetCommunities"), server.describe()
    e2e.assert_no_secret_logged()
