"""Reflection documents the contract: `grpcurl describe` shows the proto comments, and every message and enum
resolves (CommunityPermission used to be "Symbol not found"), through v1alpha and v1 alike."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import GRPCURL, run

pytestmark = pytest.mark.e2e


def describe(address: str, symbol: str):
    return run([GRPCURL, "-plaintext", address, "describe", symbol], timeout=20)


def test_describe_shows_comments_and_resolves_every_symbol(e2e):
    server = e2e.server(database=e2e.sqlite_url())
    removal = describe(server.address, "communities.v1.RemoveMembers").ok().stdout
    assert "until" in removal and "//" in removal, removal
    permission = describe(server.address, "communities.v1.CommunityPermission").ok().stdout
    assert "COMMUNITY_PERMISSION_ADMINISTRATOR = 1" in permission, permission
    subscribe = describe(server.address, "communities.v1.Updates.Subscribe").ok().stdout
    assert "rpc Subscribe" in subscribe and "//" in subscribe, subscribe
    update = describe(server.address, "communities.v1.Update").ok().stdout
    assert "Opaque. Pass it to Subscribe" in update, update
    # Standard services still resolve (from the default pool, without comments).
    assert "rpc Check" in describe(server.address, "grpc.health.v1.Health").ok().stdout
