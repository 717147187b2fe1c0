"""A targeted invite with a 1,000,000-line target users file, end to end: stored in the background, admitting
nobody until the job is done, then exactly its targets; the list read back and replaced.

Runs on both backends like every API module (the `database_url` fixture); it is the slow one (~1 min a backend).
"""

from __future__ import annotations

import time

import grpc
import pytest

from communities.v1 import communities_pb2, invites_pb2, invites_pb2_grpc, members_pb2, roles_pb2
from tests.conftest import rpc_error
from tests.support.errors import assert_error, details

MIB = 1 << 20
MILLION = 1_000_000
# Ids of nobody, on both sides of 2**63 (stored as negative numbers in the signed 64-bit columns), far above any
# snowflake of this century.
LOW_FILLER = 2**62
HIGH_FILLER = 2**64 - 600_000


@pytest.fixture(scope="module")
def big(server, grpc_addr):
    """Invites stub on a channel that carries 64 MiB messages (the fixtures' channel stops at 4 MiB)."""
    channel = grpc.insecure_channel(
        grpc_addr,
        options=[("grpc.max_send_message_length", 64 * MIB), ("grpc.max_receive_message_length", 64 * MIB)],
    )
    yield invites_pb2_grpc.InvitesStub(channel)
    channel.close()


def filler_ids(count: int) -> list[int]:
    half = count // 2
    return [*range(LOW_FILLER, LOW_FILLER + half), *range(HIGH_FILLER, HIGH_FILLER + count - half)]


def csv_file(ids, header: bool = True) -> bytes:
    return (b"user_id\n" if header else b"") + "\n".join(map(str, ids)).encode() + b"\n"


def job_status(stub, account, code: str) -> invites_pb2.TargetUsersJobStatus:
    return stub.GetTargetUsersJobStatus(
        invites_pb2.GetTargetUsersJobStatus(code=code), metadata=account.metadata, timeout=60
    )


def wait_for_job(stub, account, code: str, deadline_s: float = 900, latencies: list[float] | None = None):
    """Polls until the job leaves PROCESSING; returns every status seen (and notes how long each poll took)."""
    seen = []
    end = time.monotonic() + deadline_s
    while True:
        asked = time.monotonic()
        status = job_status(stub, account, code)
        if latencies is not None:
            latencies.append(time.monotonic() - asked)
        seen.append(status)
        if status.status != invites_pb2.PROCESSING:
            return seen
        assert time.monotonic() < end, f"job still PROCESSING after {deadline_s}s: {status}"
        time.sleep(0.05)


def read_ids(data: bytes) -> list[int]:
    lines = data.split(b"\n")
    assert lines[0] == b"user_id", lines[:2]
    return [int(line) for line in lines[1:] if line.strip()]


def test_million_line_target_users_file(big, communities_stub, roles_stub, members_stub, make_account):
    owner = make_account("Owner")
    first, second, newcomer, outsider = (make_account(name) for name in ("First", "Second", "Newcomer", "Outsider"))
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Big"), metadata=owner.metadata)
    general = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    ).system_messages.channel_id
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community.id, name="Supporter", priority=1), metadata=owner.metadata
    )
    # The two real targets sort first, so they are among the first ids stored: a server that admitted targets
    # before the whole list is stored would let them in while the job still runs.
    expected = [first.id, second.id, *filler_ids(MILLION - 2)]
    data = csv_file(expected)
    assert data.count(b"\n") == MILLION + 1

    started = time.monotonic()
    invite = big.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, role_ids=[role.id], target_users_file=data),
        metadata=owner.metadata,
        timeout=300,
    )
    create_seconds = time.monotonic() - started
    assert invite.targeted and [r.id for r in invite.roles] == [role.id]

    # The call answered before the list was stored: the job is still running.
    status = job_status(big, owner, invite.code)
    assert status.status == invites_pb2.PROCESSING, status
    assert status.total_users == MILLION
    assert status.processed_users < MILLION
    assert status.HasField("created_at") and not status.HasField("completed_at")

    # Meanwhile it admits nobody, not even a target, and says so like an unknown invite.
    unknown = rpc_error(big.UseInvite, invites_pb2.UseInvite(code="abcdefghjk"), metadata=first.metadata)
    during_use = rpc_error(big.UseInvite, invites_pb2.UseInvite(code=invite.code), metadata=first.metadata)
    during_lookup = rpc_error(big.LookupInvite, invites_pb2.LookupInvite(code=invite.code), metadata=first.metadata)
    for error in (during_use, during_lookup):
        assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_INVITE")
        assert error.details() == unknown.details()
        assert details(error)[0].metadata == details(unknown)[0].metadata
    assert job_status(big, owner, invite.code).status == invites_pb2.PROCESSING, "the calls above were made too late"

    latencies: list[float] = []
    seen = [status, *wait_for_job(big, owner, invite.code, latencies=latencies)]
    job_seconds = time.monotonic() - started
    # "In the background": other calls keep being answered while the list is stored (generous bound: the
    # job takes far longer than this, so a server storing it in one go would fail).
    assert max(latencies) < 10, f"a status call waited {max(latencies):.1f}s while the job ran"
    final = seen[-1]
    assert final.status == invites_pb2.COMPLETED, final
    assert final.total_users == MILLION and final.processed_users == MILLION
    assert final.unknown_users == MILLION - 2
    assert final.error_message == ""
    assert final.HasField("completed_at") and final.completed_at.ToNanoseconds() >= final.created_at.ToNanoseconds()
    processed = [s.processed_users for s in seen]
    assert processed == sorted(processed), f"processed_users went backwards: {processed}"
    assert all(s.total_users == MILLION for s in seen)
    assert any(0 < p < MILLION for p in processed), f"no progress was visible while PROCESSING: {processed[:20]}"

    # Nothing was counted by the refused attempts; now the targets get in, with the role, and nobody else.
    listed = big.ListInvites(invites_pb2.ListInvites(community_id=community.id), metadata=owner.metadata).invites
    assert [(i.code, i.uses, i.state) for i in listed] == [(invite.code, 0, invites_pb2.INVITE_STATE_ACTIVE)]
    assert big.LookupInvite(invites_pb2.LookupInvite(code=invite.code), metadata=first.metadata).targeted
    big.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=first.metadata)
    [member] = members_stub.GetMembers(
        members_pb2.GetMembers(community_id=community.id, member_ids=[first.id]), metadata=owner.metadata
    ).members
    assert list(member.role_ids) == [role.id] and member.invite_code == invite.code
    for account in (outsider, newcomer):
        error = rpc_error(big.UseInvite, invites_pb2.UseInvite(code=invite.code), metadata=account.metadata)
        assert_error(error, grpc.StatusCode.NOT_FOUND, "UNKNOWN_INVITE")

    # The list reads back whole, with its header.
    started_read = time.monotonic()
    exported = big.GetTargetUsers(
        invites_pb2.GetTargetUsers(code=invite.code), metadata=owner.metadata, timeout=300
    ).target_users_file
    read_seconds = time.monotonic() - started_read
    ids = read_ids(exported)
    assert len(ids) == MILLION
    assert set(ids) == set(expected)

    # Replacing it: the old targets are out, the new ones in.
    started_update = time.monotonic()
    replaced = big.UpdateTargetUsers(
        invites_pb2.UpdateTargetUsers(code=invite.code, target_users_file=csv_file([newcomer.id, first.id])),
        metadata=owner.metadata,
        timeout=300,
    )
    assert replaced.total_users == 2
    if replaced.status == invites_pb2.PROCESSING:
        replaced = wait_for_job(big, owner, invite.code)[-1]
    update_seconds = time.monotonic() - started_update
    assert replaced.status == invites_pb2.COMPLETED and replaced.processed_users == 2
    now_exported = big.GetTargetUsers(invites_pb2.GetTargetUsers(code=invite.code), metadata=owner.metadata)
    assert sorted(read_ids(now_exported.target_users_file)) == sorted([newcomer.id, first.id])
    for account in (second, outsider):
        for call, request in (
            (big.UseInvite, invites_pb2.UseInvite(code=invite.code)),
            (big.LookupInvite, invites_pb2.LookupInvite(code=invite.code)),
        ):
            assert_error(
                rpc_error(call, request, metadata=account.metadata), grpc.StatusCode.NOT_FOUND, "UNKNOWN_INVITE"
            )
    big.UseInvite(invites_pb2.UseInvite(code=invite.code), metadata=newcomer.metadata)
    members = members_stub.ListMembers(
        members_pb2.ListMembers(community_id=community.id), metadata=owner.metadata
    ).members
    assert {m.id for m in members} == {owner.id, first.id, newcomer.id}
    print(
        f"\n1M targets: CreateInvite answered in {create_seconds:.1f}s, job done after {job_seconds:.1f}s "
        f"({len(seen)} polls, slowest {max(latencies):.2f}s), GetTargetUsers {read_seconds:.1f}s, "
        f"UpdateTargetUsers {update_seconds:.1f}s"
    )


def test_more_than_a_million_ids_are_refused(big, communities_stub, make_account):
    owner = make_account("Owner")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Huge"), metadata=owner.metadata)
    general = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    ).system_messages.channel_id
    error = rpc_error(
        big.CreateInvite,
        invites_pb2.CreateInvite(channel_id=general, target_users_file=csv_file(filler_ids(MILLION + 1))),
        metadata=owner.metadata,
        timeout=300,
    )
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="target_users_file")
    listed = big.ListInvites(
        invites_pb2.ListInvites(community_id=community.id, include_inactive=True), metadata=owner.metadata
    )
    assert list(listed.invites) == []
