"""Races from the hardening issue, with real parallelism: many threads making real gRPC calls at once, spread
over two servers (replicas) on the same database. On PostgreSQL these race for real; on SQLite writers take
turns, so the same tests only check the outcomes stay right.

- An existing member racing itself on an invite that grants a role: one use for the one role granted.
- Parallel UploadFilePart calls: the per-uploader quota of pending upload bytes holds.
"""

from __future__ import annotations

import itertools
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy import func, select

from communities.services import media as media_service
from communities.storage import tables
from communities.v1 import (
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    members_pb2,
    roles_pb2,
)

ROUNDS = 3
KIB = 1024
PART = 512 * KIB
PENDING_MAX = 40 * 1024 * KIB  # 4 photos of 10 MiB, what the server lets an uploader keep pending
PARTS_PER_UPLOAD = 20


@pytest.fixture(scope="module")
def replica_invites(replica_channel):
    return invites_pb2_grpc.InvitesStub(replica_channel)


@pytest.fixture(scope="module")
def media_stub(grpc_channel):
    return media_pb2_grpc.MediaStub(grpc_channel)


@pytest.fixture(scope="module")
def replica_media(replica_channel):
    return media_pb2_grpc.MediaStub(replica_channel)


@pytest.fixture(scope="module")
def replica_communities(replica_channel):
    return communities_pb2_grpc.CommunitiesStub(replica_channel)


def outcome(call, request, metadata) -> str:
    try:
        call(request, metadata=metadata, timeout=120)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def run_together(jobs) -> list[str]:
    """Every job (call, request, metadata) on its own thread, all released at once by a barrier; their outcomes
    in order."""
    barrier = threading.Barrier(len(jobs))

    def start(job):
        barrier.wait()
        return outcome(*job)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(start, jobs))


def counts(outcomes: list[str]) -> dict[str, int]:
    return {o: outcomes.count(o) for o in sorted(set(outcomes))}


def new_community(communities_stub, owner) -> tuple[int, int]:
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="Race"), metadata=owner.metadata)
    settings = communities_stub.GetSettings(
        communities_pb2.GetSettings(community_id=community.id), metadata=owner.metadata
    )
    return community.id, settings.system_messages.channel_id


def listed_invite(invites_stub, owner, community_id: int, code: str) -> invites_pb2.Invite:
    listed = invites_stub.ListInvites(
        invites_pb2.ListInvites(community_id=community_id, include_inactive=True), metadata=owner.metadata
    )
    [invite] = [i for i in listed.invites if i.code == code]
    return invite


def role_ids_of(members_stub, owner, community_id: int, user_id: int) -> list[int]:
    [member] = members_stub.GetMembers(
        members_pb2.GetMembers(community_id=community_id, member_ids=[user_id]), metadata=owner.metadata
    ).members
    return list(member.role_ids)


# ------------------------------------------------------------------------------------------ defect 6: UseInvite


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_existing_member_racing_a_role_invite_counts_one_use(
    round_, communities_stub, roles_stub, members_stub, invites_stub, replica_invites, make_account
):
    """A member (joined earlier, without the role) sends 20 UseInvite calls at once, half to each replica, on an
    invite with max_uses that grants a role: one role granted, so exactly one use is counted."""
    owner = make_account("Owner")
    community_id, general = new_community(communities_stub, owner)
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community_id, name="Player", priority=1), metadata=owner.metadata
    )
    member = make_account("Member")
    plain = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, max_uses=1, unique=True), metadata=owner.metadata
    )
    invites_stub.UseInvite(invites_pb2.UseInvite(code=plain.code), metadata=member.metadata)
    assert role_ids_of(members_stub, owner, community_id, member.id) == []

    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, max_uses=100, role_ids=[role.id], unique=True),
        metadata=owner.metadata,
    )
    # Open every pooled database connection of both servers first, so the race below is a race from its start.
    lookup = invites_pb2.LookupInvite(code=invite.code)
    stubs = itertools.cycle([invites_stub, replica_invites])
    assert set(run_together([(next(stubs).LookupInvite, lookup, member.metadata) for _ in range(40)])) == {"OK"}

    request = invites_pb2.UseInvite(code=invite.code)
    outcomes = run_together([(next(stubs).UseInvite, request, member.metadata) for _ in range(20)])
    assert outcomes == ["OK"] * 20, counts(outcomes)

    final = listed_invite(invites_stub, owner, community_id, invite.code)
    assert role_ids_of(members_stub, owner, community_id, member.id) == [role.id]
    assert final.uses == 1, f"one role granted, {final.uses} uses burned"
    assert final.state == invites_pb2.INVITE_STATE_ACTIVE


def test_members_racing_for_the_last_uses_of_a_role_invite(
    communities_stub, roles_stub, members_stub, invites_stub, replica_invites, make_account
):
    """20 existing members race for 5 uses of an invite granting a role: 5 get it, 15 are refused and keep
    nothing (their role insert rolls back with the use they could not have)."""
    owner = make_account("Owner")
    community_id, general = new_community(communities_stub, owner)
    role = roles_stub.CreateRole(
        roles_pb2.CreateRole(community_id=community_id, name="Player", priority=1), metadata=owner.metadata
    )
    plain = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, unique=True), metadata=owner.metadata
    )
    racers = [make_account(f"Member {i}") for i in range(20)]
    for racer in racers:
        invites_stub.UseInvite(invites_pb2.UseInvite(code=plain.code), metadata=racer.metadata)
    invite = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=general, max_uses=5, role_ids=[role.id], unique=True),
        metadata=owner.metadata,
    )
    request = invites_pb2.UseInvite(code=invite.code)
    stubs = itertools.cycle([invites_stub, replica_invites])
    outcomes = run_together([(next(stubs).UseInvite, request, racer.metadata) for racer in racers])
    assert counts(outcomes) == {"NOT_FOUND": 15, "OK": 5}

    for racer, result in zip(racers, outcomes, strict=True):
        expected = [role.id] if result == "OK" else []
        assert role_ids_of(members_stub, owner, community_id, racer.id) == expected, racer.name
    final = listed_invite(invites_stub, owner, community_id, invite.code)
    assert (final.uses, final.state) == (5, invites_pb2.INVITE_STATE_USED_UP)


# ------------------------------------------------------------------------------------ defect 10a: upload quota

_upload_ids = itertools.count(1)


def new_upload_id() -> int:
    return (next(_upload_ids) << 32) | random.getrandbits(31)


def pending_bytes(db, account) -> int:
    """What the account's parts really take in the database."""
    total = db.scalar(
        select(func.coalesce(func.sum(tables.upload_parts.c.size), 0)).where(
            tables.upload_parts.c.uploader_id == account.id
        )
    )
    return int(total)


def fill(media_stub, account, part_count: int, size: int = PART) -> list[tuple[int, int]]:
    """Uploads `part_count` parts of `size` bytes one after the other; returns their (upload_id, part) keys."""
    keys = []
    upload_id = new_upload_id()
    for index in range(part_count):
        if index and index % PARTS_PER_UPLOAD == 0:
            upload_id = new_upload_id()
        part = index % PARTS_PER_UPLOAD
        media_stub.UploadFilePart(
            media_pb2.UploadFilePart(upload_id=upload_id, part=part, data=b"\1" * size), metadata=account.metadata
        )
        keys.append((upload_id, part))
    return keys


def part_jobs(media_stubs, account, count: int, size: int = PART):
    """`count` new parts of `size` bytes (fresh upload ids), their calls alternating between the servers."""
    stubs = itertools.cycle(media_stubs)
    jobs = []
    upload_id = new_upload_id()
    for index in range(count):
        if index and index % PARTS_PER_UPLOAD == 0:
            upload_id = new_upload_id()
        request = media_pb2.UploadFilePart(upload_id=upload_id, part=index % PARTS_PER_UPLOAD, data=b"\2" * size)
        jobs.append((next(stubs).UploadFilePart, request, account.metadata))
    return jobs


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_parallel_parts_stay_within_the_upload_quota(round_, media_stub, replica_media, make_account, db):
    """An uploader 2 parts short of the quota sends 40 parts at once over both servers: exactly 2 fit."""
    uploader = make_account("Uploader")
    fill(media_stub, uploader, PENDING_MAX // PART - 2)
    outcomes = run_together(part_jobs([media_stub, replica_media], uploader, 40))
    assert counts(outcomes) == {"OK": 2, "RESOURCE_EXHAUSTED": 38}
    assert pending_bytes(db, uploader) == PENDING_MAX


def test_parallel_parts_from_empty_fill_the_quota_exactly(media_stub, replica_media, make_account, db):
    """100 parts at once from nothing: 80 fit (40 MiB), 20 are refused."""
    uploader = make_account("Uploader")
    outcomes = run_together(part_jobs([media_stub, replica_media], uploader, 100))
    assert counts(outcomes) == {"OK": PENDING_MAX // PART, "RESOURCE_EXHAUSTED": 100 - PENDING_MAX // PART}
    assert pending_bytes(db, uploader) == PENDING_MAX


def test_resending_parts_at_the_quota_is_idempotent(media_stub, replica_media, make_account, db):
    """At the quota, parts sent again (many times at once, same or smaller size) still succeed and count once;
    what a smaller resend frees can be used by a new part, and not a byte more."""
    uploader = make_account("Uploader")
    keys = fill(media_stub, uploader, PENDING_MAX // PART)
    assert pending_bytes(db, uploader) == PENDING_MAX
    upload_id, part = keys[0]
    resend = media_pb2.UploadFilePart(upload_id=upload_id, part=part, data=b"\3" * PART)
    stubs = itertools.cycle([media_stub, replica_media])
    outcomes = run_together([(next(stubs).UploadFilePart, resend, uploader.metadata) for _ in range(20)])
    assert outcomes == ["OK"] * 20, counts(outcomes)
    assert pending_bytes(db, uploader) == PENDING_MAX
    # A bigger resend would pass the quota.
    upload_id, part = keys[1]
    smaller = media_pb2.UploadFilePart(upload_id=upload_id, part=part, data=b"\4" * (PART - 1000))
    media_stub.UploadFilePart(smaller, metadata=uploader.metadata)
    assert pending_bytes(db, uploader) == PENDING_MAX - 1000
    bigger = media_pb2.UploadFilePart(upload_id=upload_id, part=part, data=b"\4" * PART)
    media_stub.UploadFilePart(bigger, metadata=uploader.metadata)  # back to the quota exactly
    assert pending_bytes(db, uploader) == PENDING_MAX
    outcomes = run_together(part_jobs([media_stub, replica_media], uploader, 10, size=1))
    assert counts(outcomes) == {"RESOURCE_EXHAUSTED": 10}
    media_stub.UploadFilePart(smaller, metadata=uploader.metadata)
    outcomes = run_together(part_jobs([media_stub, replica_media], uploader, 20, size=100))
    assert counts(outcomes) == {"OK": 10, "RESOURCE_EXHAUSTED": 10}
    assert pending_bytes(db, uploader) == PENDING_MAX


def test_consumed_and_swept_parts_give_their_bytes_back(
    server, communities_stub, media_stub, replica_media, make_account, db, monkeypatch
):
    """Parts an EditPhoto uses and parts the daily sweep removes leave the quota: exactly that much fits again."""
    from PIL import Image

    from tests.unit.test_images import encode

    uploader = make_account("Uploader")
    community_id = communities_stub.CreateCommunity(
        communities_pb2.CreateCommunity(name="Pictured"), metadata=uploader.metadata
    ).id
    start = server.app.clock_ms()
    fill(media_stub, uploader, PENDING_MAX // PART - 1)  # swept later
    image = encode(Image.new("RGB", (64, 64), (10, 200, 30)), "PNG")
    photo_upload = new_upload_id()
    media_stub.UploadFilePart(
        media_pb2.UploadFilePart(upload_id=photo_upload, part=0, data=image), metadata=uploader.metadata
    )
    room = PENDING_MAX - pending_bytes(db, uploader)
    assert 0 < room < PART
    # The photo's part leaves the quota when EditPhoto uses it.
    communities_stub.EditPhoto(
        communities_pb2.EditPhoto(
            community_id=community_id,
            file=media_pb2.UploadedFileRef(id=photo_upload, name="p.png", part_count=1),
        ),
        metadata=uploader.metadata,
    )
    room += len(image)
    outcomes = run_together(part_jobs([media_stub, replica_media], uploader, 20, size=room // 2))
    assert counts(outcomes) == {"OK": 2, "RESOURCE_EXHAUSTED": 18}
    # A day later the sweep removes everything but what is newer than a day.
    monkeypatch.setattr(server.app, "clock_ms", lambda: start + media_service.UPLOAD_TTL_MS + 60_000)
    server.run(media_service.sweep_stale_uploads(server.app))
    room = PENDING_MAX - pending_bytes(db, uploader)
    monkeypatch.undo()
    outcomes = run_together(part_jobs([media_stub, replica_media], uploader, 100, size=PART))
    assert counts(outcomes) == {"OK": room // PART, "RESOURCE_EXHAUSTED": 100 - room // PART}
