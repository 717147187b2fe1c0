"""communities.v1.Members through the API: lookups and paging, nicknames and role sets, kicks, bans and unbans
(with a controllable clock for bans that end), every error row, and racing role-set edits."""

from __future__ import annotations

import base64

import grpc
import pytest
from google.protobuf import timestamp_pb2

from communities.domain.errors import DomainError
from communities.v1 import communities_pb2, members_pb2
from tests.api.permissions_world import DEFAULT, Expectations, P, World, run_together

NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


@pytest.fixture
def setup(world):
    """A fresh community: its owner, a moderator (MODIFY_ROLES and REMOVE_MEMBERS at priority 5) and a plain
    member."""
    owner = world.make_account("owner")
    community = world.community(owner)
    mods = world.role(owner, community.id, "mods", permissions=P.MODIFY_ROLES | P.REMOVE_MEMBERS, priority=5)
    moderator = world.member(community.id, "moderator")
    world.assign(owner, community.id, moderator, mods.id)
    member = world.member(community.id, "member")
    return owner, community, moderator, member


class Clock:
    """Replaces the server's clock for one test (monkeypatch restores it)."""

    def __init__(self, start_ms: int):
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(server, monkeypatch) -> Clock:
    fake = Clock(server.app.clock_ms())
    monkeypatch.setattr(server.app, "clock_ms", fake)
    return fake


def timestamp(ms: int) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromMilliseconds(ms)
    return value


def remove(world, actor, community_id: int, *member_ids: int, until=None, reason: str | None = None) -> None:
    request = members_pb2.RemoveMembers(community_id=community_id, member_ids=list(member_ids))
    if until is not None:
        request.until.CopyFrom(until)
    if reason is not None:
        request.reason = reason
    world.members.RemoveMembers(request, metadata=actor.metadata)


def bans(world, actor, community_id: int, page_size: int = 0) -> list[members_pb2.RemovedMember]:
    result, token = [], ""
    while True:
        page = world.members.GetRemovedMembers(
            members_pb2.GetRemovedMembers(community_id=community_id, page_size=page_size, page_token=token),
            metadata=actor.metadata,
        )
        result.extend(page.removed)
        token = page.next_page_token
        if not token:
            return result


def unban(world, actor, community_id: int, *user_ids: int) -> None:
    world.members.UnbanMembers(
        members_pb2.UnbanMembers(community_id=community_id, user_ids=list(user_ids)), metadata=actor.metadata
    )


def rejoin_refusal(world, community_id: int, account) -> str | None:
    """Joins like an accepted invite; the reason it is refused, or None when it joined."""
    try:
        assert world.join_community(community_id, account)
    except DomainError as error:
        return error.reason
    return None


def edit_member(world, actor, community_id: int, member_id: int, **fields) -> members_pb2.CommunityMember:
    if "role_ids" in fields:
        fields["role_ids"] = members_pb2.RoleIds(ids=list(fields["role_ids"]))
    return world.members.EditMember(
        members_pb2.EditMember(community_id=community_id, member_id=member_id, **fields), metadata=actor.metadata
    )


def community_ids(world, account) -> set[int]:
    listed = world.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
    return {c.id for c in listed.communities}


# ------------------------------------------------------------------------------------------------------ GetMembers


def test_get_members(world, setup, server):
    owner, community, moderator, member = setup
    before_join = server.app.clock_ms()
    invited = world.make_account("invited")
    assert world.join_community(community.id, invited, invite_code="abc123")
    after_join = server.app.clock_ms()
    unknown = server.app.ids.next_id()
    found = world.members.GetMembers(
        members_pb2.GetMembers(
            community_id=community.id, member_ids=[invited.id, owner.id, unknown, member.id, owner.id, 0]
        ),
        metadata=member.metadata,
    ).members
    assert [m.id for m in found] == [invited.id, owner.id, member.id]
    assert all(m.community_id == community.id for m in found)
    by_id = {m.id: m for m in found}
    assert by_id[invited.id].invite_code == "abc123"
    assert by_id[owner.id].invite_code == ""
    assert before_join <= by_id[invited.id].joined_at.ToMilliseconds() <= after_join
    assert all(m.nickname == "" and list(m.role_ids) == [] for m in found)
    [mod] = world.members.GetMembers(
        members_pb2.GetMembers(community_id=community.id, member_ids=[moderator.id]), metadata=member.metadata
    ).members
    assert len(mod.role_ids) == 1
    assert world.members.GetMembers(members_pb2.GetMembers(community_id=community.id), metadata=member.metadata) == (
        members_pb2.CommunityMembers()
    )
    many = [unknown + n for n in range(99)] + [owner.id]
    assert [
        m.id
        for m in world.members.GetMembers(
            members_pb2.GetMembers(community_id=community.id, member_ids=many), metadata=member.metadata
        ).members
    ] == [owner.id]
    expect = Expectations()
    too_many = members_pb2.GetMembers(community_id=community.id, member_ids=[unknown + n for n in range(101)])
    expect.error("101 ids", world.members.GetMembers, too_many, member, INVALID, "INVALID_ARGUMENT", field="member_ids")
    outsider = world.make_account("outsider")
    for label, caller, community_id in [("outsider", outsider, community.id), ("unknown", owner, unknown)]:
        request = members_pb2.GetMembers(community_id=community_id, member_ids=[owner.id])
        expect.error(label, world.members.GetMembers, request, caller, NOT_FOUND, "UNKNOWN_COMMUNITY")
    expect.check()


# ----------------------------------------------------------------------------------------------------- ListMembers


def test_list_members_pages_through_everyone_once_in_id_order(world, setup):
    owner, community, moderator, member = setup
    others = [world.member(community.id) for _ in range(8)]
    everyone = sorted([owner.id, moderator.id, member.id, *(a.id for a in others)])  # 11
    for page_size in (1, 3, 4, 10, 11, 12, 0, 1000):
        pages, token = [], ""
        while True:
            page = world.members.ListMembers(
                members_pb2.ListMembers(community_id=community.id, page_size=page_size, page_token=token),
                metadata=member.metadata,
            )
            pages.append([m.id for m in page.members])
            token = page.next_page_token
            if not token:
                break
            assert len(pages) < 20
        flat = [user_id for page in pages for user_id in page]
        assert flat == everyone, page_size
        size = page_size or 100
        assert all(len(page) == size for page in pages[:-1]), (page_size, pages)
        assert 1 <= len(pages[-1]) <= size
    # Paging twice gives the same pages.
    assert [m.id for m in world.all_members(member, community.id, 3)] == everyone


def test_list_members_is_stable_while_members_join_and_leave(world, setup):
    owner, community, moderator, member = setup
    others = [world.member(community.id) for _ in range(7)]
    everyone = sorted([owner.id, moderator.id, member.id, *(a.id for a in others)])  # 10
    first = world.members.ListMembers(
        members_pb2.ListMembers(community_id=community.id, page_size=4), metadata=owner.metadata
    )
    assert [m.id for m in first.members] == everyone[:4]
    # One member of the first page and one of a later page leave; a newcomer (a higher id) joins.
    leavers = {everyone[1], everyone[6]}
    for account in [owner, moderator, member, *others]:
        if account.id in leavers:
            world.communities.LeaveCommunity(
                communities_pb2.LeaveCommunity(community_id=community.id), metadata=account.metadata
            )
    newcomer = world.member(community.id, "newcomer")
    rest, token = [], first.next_page_token
    while token:
        page = world.members.ListMembers(
            members_pb2.ListMembers(community_id=community.id, page_size=4, page_token=token), metadata=owner.metadata
        )
        rest.extend(m.id for m in page.members)
        token = page.next_page_token
    assert rest == [user_id for user_id in everyone[4:] if user_id not in leavers] + [newcomer.id]


def test_list_members_rejects_bad_arguments(world, setup):
    owner, community, _, member = setup
    before = world.snapshot(owner, community.id)
    expect = Expectations()
    tokens = [
        "garbage",
        "!!!",
        base64.urlsafe_b64encode(b"p1:abc").decode(),
        base64.urlsafe_b64encode(b"p9:12").decode(),
        base64.urlsafe_b64encode(b"p1:-5").decode(),
        base64.urlsafe_b64encode(b"p1:" + str(2**64).encode()).decode(),
        "\u00e9t\u00e9",
    ]
    for token in tokens:
        request = members_pb2.ListMembers(community_id=community.id, page_token=token)
        expect.error(
            repr(token), world.members.ListMembers, request, member, INVALID, "INVALID_ARGUMENT", field="page_token"
        )
        request = members_pb2.GetRemovedMembers(community_id=community.id, page_token=token)
        call = world.members.GetRemovedMembers
        expect.error(f"bans {token!r}", call, request, owner, INVALID, "INVALID_ARGUMENT", field="page_token")
    for size in (1001, 2**32 - 1):
        request = members_pb2.ListMembers(community_id=community.id, page_size=size)
        expect.error(
            str(size), world.members.ListMembers, request, member, INVALID, "INVALID_ARGUMENT", field="page_size"
        )
    outsider = world.make_account("outsider")
    request = members_pb2.ListMembers(community_id=community.id)
    expect.error("outsider", world.members.ListMembers, request, outsider, NOT_FOUND, "UNKNOWN_COMMUNITY")
    expect.check()
    assert world.snapshot(owner, community.id) == before


# ------------------------------------------------------------------------------------------------------ EditMember


def test_nicknames(world, setup):
    owner, community, moderator, member = setup
    edited = edit_member(world, member, community.id, member.id, nickname="  Nick  ")
    assert (edited.id, edited.community_id, edited.nickname) == (member.id, community.id, "Nick")
    assert world.get_member(owner, community.id, member.id).nickname == "Nick"
    assert edit_member(world, member, community.id, member.id, nickname="x" * 32).nickname == "x" * 32
    assert edit_member(world, member, community.id, member.id).nickname == "x" * 32  # absent: unchanged
    assert edit_member(world, member, community.id, member.id, nickname="").nickname == ""
    assert world.get_member(owner, community.id, member.id).nickname == ""
    # Others' nicknames: a moderator above them, and the owner.
    assert edit_member(world, moderator, community.id, member.id, nickname="set by mod").nickname == "set by mod"
    assert edit_member(world, owner, community.id, moderator.id, nickname="set by owner").nickname == "set by owner"
    assert edit_member(world, owner, community.id, owner.id, nickname="The Owner").nickname == "The Owner"
    # A nickname edit leaves roles alone.
    assert len(world.get_member(owner, community.id, moderator.id).role_ids) == 1

    before = world.snapshot(owner, community.id)
    expect = Expectations()
    for nickname in ("x" * 33, "   ", "new\nline", "\x00"):
        request = members_pb2.EditMember(community_id=community.id, member_id=member.id, nickname=nickname)
        expect.error(
            repr(nickname), world.members.EditMember, request, member, INVALID, "INVALID_ARGUMENT", field="nickname"
        )
    request = members_pb2.EditMember(community_id=community.id, member_id=moderator.id, nickname="mine now")
    flag = {"permission": "MODIFY_ROLES"}
    expect.error("another's", world.members.EditMember, request, member, DENIED, "MISSING_PERMISSIONS", metadata=flag)
    expect.check()
    assert world.snapshot(owner, community.id) == before


def test_role_ids_replace_the_whole_set(world, setup):
    owner, community, moderator, member = setup
    a, b, c = (world.role(owner, community.id, name, priority=1) for name in "abc")
    steps = [
        ([a.id, b.id], {a.id, b.id}),
        ([b.id, c.id], {b.id, c.id}),
        ([c.id, c.id], {c.id}),
        ([], set()),
        ([a.id, b.id, c.id], {a.id, b.id, c.id}),
    ]
    for requested, expected in steps:
        edited = edit_member(world, owner, community.id, member.id, role_ids=requested)
        assert set(edited.role_ids) == expected
        assert len(edited.role_ids) == len(expected)
        assert world.role_ids(member, community.id, member.id) == expected
    # Absent role_ids: unchanged; an empty set is not absent.
    assert set(edit_member(world, owner, community.id, member.id, nickname="n").role_ids) == {a.id, b.id, c.id}
    assert set(edit_member(world, owner, community.id, member.id, role_ids=[]).role_ids) == set()
    # The moderator (rank 5) manages them too.
    assert set(edit_member(world, moderator, community.id, member.id, role_ids=[a.id]).role_ids) == {a.id}
    assert world.permissions(member, community.id) == DEFAULT


def test_edit_member_errors(world, setup, server):
    owner, community, moderator, member = setup
    a = world.role(owner, community.id, "a", priority=1)
    world.assign(owner, community.id, member, a.id)
    elsewhere = world.community(owner, "elsewhere")
    foreign_role = world.role(owner, elsewhere.id, "foreign", priority=1)
    stranger = world.make_account("stranger")
    before = world.snapshot(owner, community.id)
    expect = Expectations()

    def request(member_id=member.id, community_id=community.id, role_ids=None, nickname=None):
        message = members_pb2.EditMember(community_id=community_id, member_id=member_id)
        if role_ids is not None:
            message.role_ids.ids.extend(role_ids)
        if nickname is not None:
            message.nickname = nickname
        return message

    call = world.members.EditMember
    for label, message, caller, code, reason in [
        ("unknown role", request(role_ids=[a.id, foreign_role.id + 3]), owner, NOT_FOUND, "UNKNOWN_ROLE"),
        ("foreign role", request(role_ids=[foreign_role.id]), owner, NOT_FOUND, "UNKNOWN_ROLE"),
        ("everyone as role", request(role_ids=[community.id]), owner, NOT_FOUND, "UNKNOWN_ROLE"),
        ("zero role", request(role_ids=[0]), moderator, NOT_FOUND, "UNKNOWN_ROLE"),
        ("a non-member", request(member_id=stranger.id, nickname="x"), owner, NOT_FOUND, "UNKNOWN_MEMBER"),
        ("a non-member's roles", request(member_id=stranger.id, role_ids=[a.id]), owner, NOT_FOUND, "UNKNOWN_MEMBER"),
        ("no user", request(member_id=server.app.ids.next_id(), nickname="x"), owner, NOT_FOUND, "UNKNOWN_MEMBER"),
        ("member zero", request(member_id=0, nickname="x"), owner, NOT_FOUND, "UNKNOWN_MEMBER"),
        ("community of none", request(community_id=elsewhere.id, nickname="x"), owner, NOT_FOUND, "UNKNOWN_MEMBER"),
        ("outsider", request(nickname="x"), stranger, NOT_FOUND, "UNKNOWN_COMMUNITY"),
        ("outsider on self", request(member_id=stranger.id, nickname="x"), stranger, NOT_FOUND, "UNKNOWN_COMMUNITY"),
        ("unknown community", request(community_id=0, nickname="x"), owner, NOT_FOUND, "UNKNOWN_COMMUNITY"),
        ("plain member's roles", request(member_id=moderator.id, role_ids=[]), member, DENIED, "MISSING_PERMISSIONS"),
    ]:
        expect.error(label, call, message, caller, code, reason)
    too_many = request(role_ids=[a.id + n for n in range(251)])
    expect.error("251 roles", call, too_many, owner, INVALID, "INVALID_ARGUMENT", field="role_ids")
    expect.check()
    assert world.snapshot(owner, community.id) == before


# -------------------------------------------------------------------------------------- RemoveMembers and bans


def test_kick(world, setup):
    owner, community, moderator, member = setup
    role = world.role(owner, community.id, "r", priority=1)
    world.assign(owner, community.id, member, role.id)
    edit_member(world, member, community.id, member.id, nickname="before")
    remove(world, moderator, community.id, member.id, reason="cool off")
    assert world.get_member(owner, community.id, member.id) is None
    assert member.id not in {m.id for m in world.all_members(owner, community.id)}
    assert community.id not in community_ids(world, member)
    assert bans(world, moderator, community.id) == []
    # A kicked member may come back, without its old roles and nickname.
    assert rejoin_refusal(world, community.id, member) is None
    back = world.get_member(owner, community.id, member.id)
    assert (list(back.role_ids), back.nickname) == ([], "")


def test_permanent_ban_and_unban(world, setup, server):
    owner, community, moderator, member = setup
    other = world.member(community.id, "other")
    before = server.app.clock_ms()
    remove(world, moderator, community.id, member.id, other.id, until=timestamp(0), reason="  spam  ")
    after = server.app.clock_ms()
    for account in (member, other):
        assert world.get_member(owner, community.id, account.id) is None
        assert community.id not in community_ids(world, account)
        assert rejoin_refusal(world, community.id, account) == "BANNED"
    listed = bans(world, moderator, community.id)
    assert [b.user_id for b in listed] == sorted([member.id, other.id])
    for ban in listed:
        assert not ban.HasField("until")
        assert (ban.reason, ban.removed_by) == ("spam", moderator.id)
        assert before <= ban.removed_at.ToMilliseconds() <= after
    assert bans(world, owner, community.id, page_size=1) == listed

    unban(world, moderator, community.id, member.id)
    assert [b.user_id for b in bans(world, owner, community.id)] == [other.id]
    assert rejoin_refusal(world, community.id, member) is None
    assert rejoin_refusal(world, community.id, other) == "BANNED"
    # Unbanning someone who is not banned is fine and changes nothing.
    unban(world, owner, community.id, member.id, owner.id)
    assert [b.user_id for b in bans(world, owner, community.id)] == [other.id]


def test_ban_until_a_time(world, setup, clock):
    owner, community, moderator, member = setup
    until = clock.now + 60_000
    remove(world, moderator, community.id, member.id, until=timestamp(until))
    [ban] = bans(world, owner, community.id)
    assert ban.HasField("until")
    assert (ban.user_id, ban.until.ToMilliseconds(), ban.reason, ban.removed_by) == (member.id, until, "", moderator.id)
    assert ban.removed_at.ToMilliseconds() == clock.now
    assert rejoin_refusal(world, community.id, member) == "BANNED"
    clock.now = until - 1
    assert rejoin_refusal(world, community.id, member) == "BANNED"
    assert len(bans(world, owner, community.id)) == 1
    clock.now = until + 1
    assert bans(world, owner, community.id) == []
    assert rejoin_refusal(world, community.id, member) is None
    # An expired ban stays stored until replaced by a new ban, which then decides.
    remove(world, moderator, community.id, member.id, until=timestamp(clock.now + 1000), reason="first")
    assert rejoin_refusal(world, community.id, member) == "BANNED"
    clock.now += 2000
    assert rejoin_refusal(world, community.id, member) is None
    remove(world, owner, community.id, member.id, until=timestamp(0), reason="second")
    [ban] = bans(world, owner, community.id)
    assert (ban.user_id, ban.reason, ban.removed_by, ban.HasField("until")) == (member.id, "second", owner.id, False)
    clock.now += 10**12
    assert rejoin_refusal(world, community.id, member) == "BANNED"


def test_remove_members_errors(world, setup, clock):
    owner, community, moderator, member = setup
    other = world.member(community.id, "other")
    stranger = world.make_account("stranger")
    before = world.snapshot(owner, community.id)

    def request(*member_ids, until=None, reason=None, community_id=community.id):
        message = members_pb2.RemoveMembers(community_id=community_id, member_ids=list(member_ids))
        if until is not None:
            message.until.CopyFrom(timestamp(until))
        if reason is not None:
            message.reason = reason
        return message

    expect = Expectations()
    call = world.members.RemoveMembers
    flag = {"permission": "REMOVE_MEMBERS"}
    for label, message, caller, code, reason, extra in [
        ("kick by plain", request(other.id), member, DENIED, "MISSING_PERMISSIONS", {"metadata": flag}),
        ("ban by plain", request(other.id, until=0), member, DENIED, "MISSING_PERMISSIONS", {"metadata": flag}),
        ("unknown among", request(member.id, stranger.id), moderator, NOT_FOUND, "UNKNOWN_MEMBER", {}),
        ("unknown among (ban)", request(member.id, stranger.id, until=0), moderator, NOT_FOUND, "UNKNOWN_MEMBER", {}),
        ("member zero", request(member.id, 0), moderator, NOT_FOUND, "UNKNOWN_MEMBER", {}),
        ("outsider", request(member.id), stranger, NOT_FOUND, "UNKNOWN_COMMUNITY", {}),
        ("none", request(), moderator, INVALID, "INVALID_ARGUMENT", {"field": "member_ids"}),
        ("past", request(member.id, until=clock.now - 1), moderator, INVALID, "INVALID_ARGUMENT", {"field": "until"}),
        ("now", request(member.id, until=clock.now), moderator, INVALID, "INVALID_ARGUMENT", {"field": "until"}),
        (
            "long reason",
            request(member.id, reason="r" * 513),
            moderator,
            INVALID,
            "INVALID_ARGUMENT",
            {"field": "reason"},
        ),
        (
            "101 ids",
            request(*(stranger.id + n for n in range(101))),
            moderator,
            INVALID,
            "INVALID_ARGUMENT",
            {"field": "member_ids"},
        ),
    ]:
        expect.error(label, call, message, caller, code, reason, **extra)
    for label, message in [
        ("GetRemovedMembers", members_pb2.GetRemovedMembers(community_id=community.id)),
        ("UnbanMembers", members_pb2.UnbanMembers(community_id=community.id, user_ids=[stranger.id])),
    ]:
        method = getattr(world.members, label)
        expect.error(label, method, message, member, DENIED, "MISSING_PERMISSIONS", metadata=flag)
        expect.error(f"{label} outsider", method, message, stranger, NOT_FOUND, "UNKNOWN_COMMUNITY")
    expect.check()
    assert world.snapshot(owner, community.id) == before
    # 512 characters are fine.
    remove(world, moderator, community.id, member.id, until=timestamp(0), reason="r" * 512)
    assert [b.reason for b in bans(world, owner, community.id)] == ["r" * 512]


def test_removed_members_page(world, setup):
    owner, community, moderator, _ = setup
    banned = [world.member(community.id) for _ in range(5)]
    remove(world, moderator, community.id, *(a.id for a in banned), until=timestamp(0))
    expected = sorted(a.id for a in banned)
    for page_size in (1, 2, 5, 0):
        assert [b.user_id for b in bans(world, owner, community.id, page_size)] == expected
    first = world.members.GetRemovedMembers(
        members_pb2.GetRemovedMembers(community_id=community.id, page_size=2), metadata=owner.metadata
    )
    assert len(first.removed) == 2
    assert first.next_page_token


# ------------------------------------------------------------------------------------------------------ races


def test_racing_role_set_edits_end_in_one_requested_set(world, setup):
    owner, community, moderator, member = setup
    roles = [world.role(owner, community.id, f"r{n}", priority=1) for n in range(5)]
    ids = [role.id for role in roles]
    sets = [
        [ids[0]],
        [ids[1], ids[2]],
        [ids[3]],
        [],
        [ids[0], ids[4]],
        [ids[2], ids[3], ids[4]],
        [ids[1]],
        [ids[4]],
    ]
    for round_number in range(4):
        world.assign(owner, community.id, member, *ids[round_number : round_number + 2])
        jobs = [
            (
                world.members.EditMember,
                members_pb2.EditMember(
                    community_id=community.id, member_id=member.id, role_ids=members_pb2.RoleIds(ids=wanted)
                ),
                (owner if index % 2 else moderator).metadata,
            )
            for index, wanted in enumerate(sets)
        ]
        outcomes = run_together(jobs)
        assert set(outcomes) == {"OK"}, outcomes
        final = world.role_ids(owner, community.id, member.id)
        assert final in [set(wanted) for wanted in sets], (round_number, final)


def test_racing_kicks_and_bans(world, setup):
    owner, community, moderator, _member = setup
    for _ in range(3):
        target = world.member(community.id, "target")
        request = members_pb2.RemoveMembers(community_id=community.id, member_ids=[target.id])
        ban = members_pb2.RemoveMembers(community_id=community.id, member_ids=[target.id], until=timestamp(0))
        jobs = [(world.members.RemoveMembers, request if n % 2 else ban, moderator.metadata) for n in range(6)]
        outcomes = run_together(jobs)
        assert outcomes.count("OK") >= 1, outcomes
        assert set(outcomes) <= {"OK", "NOT_FOUND"}, outcomes
        assert world.get_member(owner, community.id, target.id) is None
        assert community.id not in community_ids(world, target)
