"""Invites from the hardening issue:

- CreateInvite with a small target list (stored before the call answers) is all or nothing: if storing the
  list fails, the call fails with a clean status and leaves no invite behind and no active-invite slot spent.
- ListInvites reads the roles of all the invites it lists in one query, not one query per invite.
"""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from communities.services import invites as invites_service
from communities.storage import invites as invites_repo
from communities.storage import tables
from communities.storage.database import StorageUnavailable
from communities.v1 import communities_pb2, invites_pb2, roles_pb2
from tests.conftest import rpc_error


def csv_of(*ids: int) -> bytes:
    return b"user_id\n" + b"".join(b"%d\n" % i for i in ids)


def new_community(communities_stub, owner) -> tuple[int, int]:
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Guild"), metadata=owner.metadata)
    settings = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    )
    return community.id, settings.system_messages.channel_id


def all_invites(invites_stub, owner, community_id: int) -> list[invites_pb2.Invite]:
    return list(
        invites_stub.ListInvites(
            invites_pb2.ListInvites(community_id=community_id, include_inactive=True, page_size=1000),
            metadata=owner.metadata,
        ).invites
    )


def active_invite_counter(db, community_id: int) -> int:
    return db.scalar(select(tables.communities.c.invite_count).where(tables.communities.c.id == community_id))


def stored_invite_rows(db, community_id: int) -> tuple[int, int]:
    """(invites, target rows) the community has in the database."""
    codes = select(tables.invites.c.code).where(tables.invites.c.community_id == community_id)
    return (
        db.count(tables.invites, community_id=community_id),
        len(db.rows(select(tables.invite_targets.c.user_id).where(tables.invite_targets.c.code.in_(codes)))),
    )


# ------------------------------------------------------------------------------ defect 9: small target lists


def connection_lost() -> Exception:
    """What the driver raises when the database goes away in the middle of a statement."""
    return OperationalError("INSERT INTO invite_targets ...", None, ConnectionResetError("connection reset by peer"))


def conflict_lost() -> Exception:
    """What the storage layer raises when a transaction lost a race (or the database is locked for too long)."""
    return StorageUnavailable("The transaction conflicted with a concurrent one; retry")


def failing_store(fail_on_call: int, failure):
    """A stand-in for storage.invites.store_targets that stores chunks until its `fail_on_call`-th call, which
    raises `failure()`, the way the database fails."""
    real = invites_repo.store_targets
    calls = []

    async def store(*args, **kwargs):
        calls.append(1)
        if len(calls) >= fail_on_call:
            raise failure()
        return await real(*args, **kwargs)

    return store, calls


@pytest.mark.parametrize(
    "targets, fail_on_call, failure",
    [
        (3, 1, conflict_lost),
        (3, 1, connection_lost),
        (invites_service.TARGETS_CHUNK * 2 + 5, 2, connection_lost),
        (invites_service.INLINE_TARGETS, 5, conflict_lost),
    ],
    ids=["3-first-chunk-conflict", "3-first-chunk-connection", "4005-second-chunk", "10000-last-chunk"],
)
def test_small_target_list_that_cannot_be_stored_leaves_nothing(
    targets, fail_on_call, failure, communities_stub, invites_stub, make_account, db, monkeypatch
):
    owner = make_account("Owner")
    target = make_account("Target")
    community_id, general = new_community(communities_stub, owner)
    slots_before = active_invite_counter(db, community_id)
    ids = [target.id, *range(2**62, 2**62 + targets - 1)]
    store, calls = failing_store(fail_on_call, failure)
    monkeypatch.setattr(invites_repo, "store_targets", store)

    request = invites_pb2.CreateInvite(channel_id=general, max_uses=5, target_users_file=csv_of(*ids))
    error = rpc_error(invites_stub.CreateInvite, request, metadata=owner.metadata)
    assert calls, "the list was not stored through storage.invites.store_targets"
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error.details())
    assert all_invites(invites_stub, owner, community_id) == []
    assert stored_invite_rows(db, community_id) == (0, 0)
    assert active_invite_counter(db, community_id) == slots_before, "a failed CreateInvite spent an invite slot"

    # Once the database is back, the same call works and the invite admits its target straight away.
    monkeypatch.undo()
    invite = invites_stub.CreateInvite(request, metadata=owner.metadata)
    job = invites_stub.GetTargetUsersJobStatus(
        invites_pb2.GetTargetUsersJobStatus(code=invite.code), metadata=owner.metadata
    )
    assert (job.status, job.total_users, job.processed_users) == (invites_pb2.COMPLETED, targets, targets)
    assert stored_invite_rows(db, community_id) == (1, targets)
    assert active_invite_counter(db, community_id) == slots_before + 1
    invites_stub.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=target.metadata)


def test_small_target_list_is_complete_when_create_invite_answers(communities_stub, invites_stub, make_account):
    owner = make_account("Owner")
    targets = [make_account(f"Target {i}") for i in range(3)]
    _, general = new_community(communities_stub, owner)
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, target_users_file=csv_of(*(t.id for t in targets), 2**63 + 5)),
        metadata=owner.metadata,
    )
    assert invite.targeted
    job = invites_stub.GetTargetUsersJobStatus(
        invites_pb2.GetTargetUsersJobStatus(code=invite.code), metadata=owner.metadata
    )
    assert (job.status, job.total_users, job.processed_users, job.unknown_users) == (invites_pb2.COMPLETED, 4, 4, 1)
    for target in targets:
        invites_stub.LookupInvite(invites_pb2.LookupInvite(code=invite.code), metadata=target.metadata)


# --------------------------------------------------------------------------- defect 10b: roles of ListInvites


class RoleQueries:
    """Counts the statements that read the roles table, on the server's own engine."""

    def __init__(self, server):
        db = server.app.db
        engine = db._engine
        self.engine = getattr(engine, "sync_engine", engine)
        self.count = 0

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        if "FROM roles" in statement:
            self.count += 1

    def __enter__(self):
        self.count = 0
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_list_invites_reads_their_roles_in_one_query(server, communities_stub, roles_stub, invites_stub, make_account):
    owner = make_account("Owner")
    community_id, general = new_community(communities_stub, owner)
    roles = [
        roles_stub.CreateRole(
            roles_pb2.CreateRole(community_id=community_id, name=f"Role {i}", priority=i + 1),
            metadata=owner.metadata,
        )
        for i in range(12)
    ]
    first = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, role_ids=[roles[0].id], unique=True), metadata=owner.metadata
    )

    def listing() -> tuple[list[invites_pb2.Invite], int]:
        with RoleQueries(server) as queries:
            invites = all_invites(invites_stub, owner, community_id)
        return invites, queries.count

    [only], with_one = listing()
    assert only.code == first.code and [r.id for r in only.roles] == [roles[0].id]

    expected = {first.code: [roles[0].id]}
    for index in range(1, 12):
        granted = [roles[index].id, roles[index - 1].id, roles[0].id]
        invite = invites_stub.CreateInvite(
            invites_pb2.CreateInvite(channel_id=general, role_ids=granted, unique=True), metadata=owner.metadata
        )
        expected[invite.code] = sorted(set(granted), key=lambda role_id: -[r.id for r in roles].index(role_id))
    plain = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, unique=True), metadata=owner.metadata
    )
    expected[plain.code] = []

    invites, with_thirteen = listing()
    assert {i.code: [r.id for r in i.roles] for i in invites} == expected, "highest priority first, per invite"
    assert {i.code: [r.name for r in i.roles][:1] for i in invites if i.roles} == {
        code: [f"Role {[r.id for r in roles].index(ids[0])}"] for code, ids in expected.items() if ids
    }
    assert with_thirteen == with_one, f"{with_thirteen} roles queries for 13 invites, {with_one} for one"

    # Pages read their own invites' roles the same way.
    page = invites_stub.ListInvites(
        invites_pb2.ListInvites(community_id=community_id, page_size=5), metadata=owner.metadata
    )
    assert len(page.invites) == 5 and page.next_page_token
    assert all([r.id for r in i.roles] == expected[i.code] for i in page.invites)
