"""Messages on both databases: each RPC and its errors, idempotent retries, history paging while messages arrive,
unread counters, join messages and the update events."""

from __future__ import annotations

import concurrent.futures
import threading

import grpc
import pytest
from sqlalchemy import func, select

from communities.storage import tables
from communities.v1 import (
    channels_pb2,
    communities_pb2,
    invites_pb2,
    messages_pb2,
    messages_pb2_grpc,
)
from tests.api.permissions_world import P, World
from tests.conftest import rpc_error
from tests.support.errors import assert_error
from tests.support.updates import UpdateStream

NOT_FOUND = grpc.StatusCode.NOT_FOUND
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
JOIN = messages_pb2.MESSAGE_TYPE_JOIN
DEFAULT = messages_pb2.MESSAGE_TYPE_DEFAULT


@pytest.fixture(scope="module")
def messages_stub(grpc_channel):
    return messages_pb2_grpc.MessagesStub(grpc_channel)


@pytest.fixture(scope="module")
def world(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community) -> World:
    return World(communities_stub, roles_stub, channels_stub, members_stub, make_account, join_community)


class Chat:
    """A community with an owner, two members and its `general` channel, and shortcuts for the Messages calls."""

    def __init__(self, world: World, stub):
        self.world, self.stub = world, stub
        self.owner = world.make_account("owner")
        self.community = world.community(self.owner)
        self.cid = self.community.id
        self.general = next(iter(world.visible(self.owner, self.cid)))
        self.alice = world.member(self.cid, "alice")
        self.bob = world.member(self.cid, "bob")

    def send(self, account, text="hello", channel_id=None, **fields) -> messages_pb2.Message:
        request = messages_pb2.SendMessage(channel_id=channel_id or self.general, text=text, **fields)
        return self.stub.SendMessage(request, metadata=account.metadata)

    def history(self, account, channel_id=None, **fields) -> list[messages_pb2.Message]:
        request = messages_pb2.GetHistory(channel_id=channel_id or self.general, **fields)
        return list(self.stub.GetHistory(request, metadata=account.metadata).messages)

    def mark(self, account, message_id, channel_id=None) -> messages_pb2.ReadState:
        request = messages_pb2.MarkRead(channel_id=channel_id or self.general, message_id=message_id)
        return self.stub.MarkRead(request, metadata=account.metadata)

    def delete(self, account, message_id, channel_id=None) -> None:
        request = messages_pb2.DeleteMessage(channel_id=channel_id or self.general, message_id=message_id)
        self.stub.DeleteMessage(request, metadata=account.metadata)

    def info(self, account) -> tuple[int, int]:
        """(unread_count, unread_mention_count) of this community in the account's GetCommunities."""
        answer = self.world.communities.GetCommunities(communities_pb2.GetCommunities(), metadata=account.metadata)
        [info] = [entry for entry in answer.community_user_info if entry.community_id == self.cid]
        return info.unread_count, info.unread_mention_count

    def states(self, account) -> dict[int, messages_pb2.ReadState]:
        answer = self.stub.GetReadStates(messages_pb2.GetReadStates(community_id=self.cid), metadata=account.metadata)
        return {state.channel_id: state for state in answer.states}


@pytest.fixture
def chat(world, messages_stub) -> Chat:
    return Chat(world, messages_stub)


def stored(db, table=tables.messages) -> int:
    return db.scalar(select(func.count()).select_from(table))


# ------------------------------------------------------------------------------------------------ the RPCs


def test_send_message_answers_the_stored_message(chat):
    sent = chat.send(chat.alice, "hello world")
    assert sent.id and sent.community_id == chat.cid and sent.channel_id == chat.general
    assert sent.author_id == chat.alice.id and sent.text == "hello world" and sent.type == DEFAULT
    assert sent.created_at.seconds > 0 and not sent.HasField("edited_at") and not sent.HasField("client_id")
    [read] = chat.history(chat.bob)
    assert read == sent


def test_history_is_newest_first_with_limit_and_cursors(chat):
    sent = [chat.send(chat.alice, f"m{i}") for i in range(7)]
    ids = [m.id for m in sent]
    assert [m.id for m in chat.history(chat.bob)] == ids[::-1]
    assert [m.id for m in chat.history(chat.bob, limit=3)] == ids[:3:-1]
    assert [m.id for m in chat.history(chat.bob, before=ids[4], limit=2)] == [ids[3], ids[2]]
    assert [m.id for m in chat.history(chat.bob, after=ids[1], limit=2)] == [ids[3], ids[2]]
    assert [m.id for m in chat.history(chat.bob, around=ids[3], limit=4)] == [ids[4], ids[3], ids[2], ids[1]]
    assert [m.id for m in chat.history(chat.bob, around=ids[0], limit=3)] == [ids[1], ids[0]]
    # Ids that name no message: the messages sent before / after that id.
    assert [m.id for m in chat.history(chat.bob, before=ids[4] + 1, limit=2)] == [ids[4], ids[3]]
    assert [m.id for m in chat.history(chat.bob, after=ids[4] + 1)] == [ids[6], ids[5]]
    assert chat.history(chat.bob, before=1) == []
    assert [m.id for m in chat.history(chat.bob, after=1, limit=2)] == [ids[1], ids[0]]
    # A deleted message keeps its place as a cursor.
    chat.delete(chat.alice, ids[3])
    assert [m.id for m in chat.history(chat.bob, before=ids[3], limit=2)] == [ids[2], ids[1]]
    assert [m.id for m in chat.history(chat.bob, after=ids[3], limit=2)] == [ids[5], ids[4]]
    assert ids[3] not in [m.id for m in chat.history(chat.bob, limit=100)]


def test_edit_message_by_its_author(chat):
    sent = chat.send(chat.alice, "first")
    edited = chat.stub.EditMessage(
        messages_pb2.EditMessage(channel_id=chat.general, message_id=sent.id, text=f"second <@{chat.bob.id}>"),
        metadata=chat.alice.metadata,
    )
    assert edited.id == sent.id and edited.text == f"second <@{chat.bob.id}>" and edited.HasField("edited_at")
    assert list(edited.mention_user_ids) == [chat.bob.id]
    assert chat.history(chat.bob) == [edited]
    assert chat.info(chat.bob) == (1, 1)


def test_delete_by_author_and_by_a_moderator(chat, world, db):
    first, second = chat.send(chat.alice, "one"), chat.send(chat.alice, "two")
    chat.delete(chat.alice, first.id)
    mods = world.role(chat.owner, chat.cid, "mods", permissions=P.DELETE_MESSAGES, priority=5)
    world.assign(chat.owner, chat.cid, chat.bob, mods.id)
    chat.delete(chat.bob, second.id)
    assert chat.history(chat.owner) == []
    assert chat.info(chat.owner) == (0, 0)
    # Only the moderator's delete is an audit entry.
    log = world.communities.GetAuditLog(
        communities_pb2.GetAuditLog(community_id=chat.cid, action="message_deleted"), metadata=chat.owner.metadata
    )
    assert [(e.actor_id, e.target_id) for e in log.entries] == [(chat.bob.id, second.id)]


def test_read_states_and_mark_read(chat, world):
    other = world.channel(chat.owner, chat.cid, "other")
    voice = world.channel(chat.owner, chat.cid, "voice", kind=channels_pb2.VOICE)
    hidden = world.channel(chat.owner, chat.cid, "hidden")
    world.override(chat.owner, hidden.id, chat.cid, neg=P.VIEW_CHANNEL)
    m1 = chat.send(chat.alice, "a")
    m2 = chat.send(chat.alice, f"b <@{chat.bob.id}>")
    chat.send(chat.owner, "x", channel_id=other.id)
    chat.send(chat.owner, "secret", channel_id=hidden.id)
    states = chat.states(chat.bob)
    assert set(states) == {chat.general, other.id, voice.id}
    assert (states[chat.general].unread_count, states[chat.general].unread_mention_count) == (2, 1)
    assert states[other.id].unread_count == 1 and states[voice.id].unread_count == 0
    assert chat.info(chat.bob) == (3, 1)
    state = chat.mark(chat.bob, m1.id)
    assert (state.channel_id, state.last_read_message_id, state.unread_count, state.unread_mention_count) == (
        chat.general,
        m1.id,
        1,
        1,
    )
    state = chat.mark(chat.bob, m2.id)
    assert (state.last_read_message_id, state.unread_count, state.unread_mention_count) == (m2.id, 0, 0)
    # Never backwards.
    state = chat.mark(chat.bob, m1.id)
    assert (state.last_read_message_id, state.unread_count) == (m2.id, 0)
    assert chat.info(chat.bob) == (1, 0)
    # Own messages are never unread.
    assert chat.info(chat.alice) == (1, 0)
    assert chat.info(chat.owner) == (2, 0)


def test_deleting_an_unread_message_stops_counting_it(chat):
    m1, m2 = chat.send(chat.alice, f"<@{chat.bob.id}>"), chat.send(chat.alice, "two")
    chat.mark(chat.owner, m1.id)
    assert chat.info(chat.bob) == (2, 1) and chat.info(chat.owner) == (1, 0)
    chat.delete(chat.alice, m1.id)  # read by the owner, unread for bob
    assert chat.info(chat.bob) == (1, 0) and chat.info(chat.owner) == (1, 0)
    chat.delete(chat.alice, m2.id)
    assert chat.info(chat.bob) == (0, 0) and chat.info(chat.owner) == (0, 0)
    own = chat.send(chat.bob, "mine")
    assert chat.info(chat.bob) == (0, 0) and chat.info(chat.alice) == (1, 0)
    chat.delete(chat.bob, own.id)
    assert chat.info(chat.bob) == (0, 0) and chat.info(chat.alice) == (0, 0)


def test_a_channel_that_becomes_invisible_drops_out_of_the_totals(chat, world):
    chat.send(chat.owner, f"<@{chat.bob.id}>")
    assert chat.info(chat.bob) == (1, 1)
    world.override(chat.owner, chat.general, chat.cid, neg=P.VIEW_CHANNEL)
    assert chat.info(chat.bob) == (0, 0)
    assert chat.general not in chat.states(chat.bob)
    world.override(chat.owner, chat.general, chat.cid)
    assert chat.info(chat.bob) == (1, 1)


def test_mentions_of_roles_and_everyone(chat, world):
    players = world.role(chat.owner, chat.cid, "players", priority=1)
    world.assign(chat.owner, chat.cid, chat.bob, players.id)
    by_role = chat.send(chat.owner, f"hi <@&{players.id}> and <@&{players.id}> <@{chat.bob.id}>")
    assert list(by_role.mention_role_ids) == [players.id] and list(by_role.mention_user_ids) == [chat.bob.id]
    assert chat.info(chat.bob) == (1, 1) and chat.info(chat.alice) == (1, 0)
    # @everyone needs MENTION_EVERYONE: plain text for alice, a mention for the owner.
    plain = chat.send(chat.alice, "@everyone look")
    assert not plain.mention_everyone
    loud = chat.send(chat.owner, "@everyone look")
    assert loud.mention_everyone
    assert chat.info(chat.bob) == (3, 2) and chat.info(chat.alice) == (2, 1)
    # Unknown users and roles are not mentions.
    odd = chat.send(chat.owner, "<@12345> <@&999> <@abc>")
    assert list(odd.mention_user_ids) == [] and list(odd.mention_role_ids) == []


# ------------------------------------------------------------------------------------------------ errors


def test_errors_carry_error_info_and_change_nothing(chat, world, db):
    voice = world.channel(chat.owner, chat.cid, "voice", kind=channels_pb2.VOICE)
    hidden = world.channel(chat.owner, chat.cid, "hidden")
    world.override(chat.owner, hidden.id, chat.cid, neg=P.VIEW_CHANNEL)
    muted = world.channel(chat.owner, chat.cid, "read-only")
    world.override(chat.owner, muted.id, chat.cid, neg=P.SEND_MESSAGES)
    outsider = world.make_account("outsider")
    message = chat.send(chat.alice, "keep")
    before = (stored(db), stored(db, tables.events), stored(db, tables.read_states))
    s = chat.stub
    g = chat.general
    cases = [
        (
            s.SendMessage,
            messages_pb2.SendMessage(channel_id=hidden.id, text="x"),
            chat.bob,
            NOT_FOUND,
            "UNKNOWN_CHANNEL",
        ),
        (s.SendMessage, messages_pb2.SendMessage(channel_id=g, text="x"), outsider, NOT_FOUND, "UNKNOWN_CHANNEL"),
        (s.SendMessage, messages_pb2.SendMessage(channel_id=123, text="x"), chat.bob, NOT_FOUND, "UNKNOWN_CHANNEL"),
        (
            s.SendMessage,
            messages_pb2.SendMessage(channel_id=muted.id, text="x"),
            chat.bob,
            DENIED,
            "MISSING_PERMISSIONS",
        ),
        (s.SendMessage, messages_pb2.SendMessage(channel_id=g, text=""), chat.bob, INVALID, "INVALID_ARGUMENT"),
        (s.SendMessage, messages_pb2.SendMessage(channel_id=g, text=" \n"), chat.bob, INVALID, "INVALID_ARGUMENT"),
        (s.SendMessage, messages_pb2.SendMessage(channel_id=g, text="x" * 4001), chat.bob, INVALID, "INVALID_ARGUMENT"),
        (
            s.SendMessage,
            messages_pb2.SendMessage(channel_id=voice.id, text="x"),
            chat.bob,
            grpc.StatusCode.FAILED_PRECONDITION,
            "CHANNEL_NOT_TEXT",
        ),
        (s.GetHistory, messages_pb2.GetHistory(channel_id=hidden.id), chat.bob, NOT_FOUND, "UNKNOWN_CHANNEL"),
        (s.GetHistory, messages_pb2.GetHistory(channel_id=g, limit=101), chat.bob, INVALID, "INVALID_ARGUMENT"),
        (
            s.EditMessage,
            messages_pb2.EditMessage(channel_id=g, message_id=message.id, text="y"),
            chat.bob,
            DENIED,
            "NOT_AUTHOR",
        ),
        (
            s.EditMessage,
            messages_pb2.EditMessage(channel_id=g, message_id=message.id, text=""),
            chat.alice,
            INVALID,
            "INVALID_ARGUMENT",
        ),
        (
            s.EditMessage,
            messages_pb2.EditMessage(channel_id=g, message_id=message.id + 1, text="y"),
            chat.alice,
            NOT_FOUND,
            "UNKNOWN_MESSAGE",
        ),
        (
            s.DeleteMessage,
            messages_pb2.DeleteMessage(channel_id=g, message_id=message.id),
            chat.bob,
            DENIED,
            "MISSING_PERMISSIONS",
        ),
        (
            s.DeleteMessage,
            messages_pb2.DeleteMessage(channel_id=hidden.id, message_id=message.id),
            chat.alice,
            NOT_FOUND,
            "UNKNOWN_CHANNEL",
        ),
        (s.MarkRead, messages_pb2.MarkRead(channel_id=g, message_id=0), chat.bob, NOT_FOUND, "UNKNOWN_MESSAGE"),
        (
            s.MarkRead,
            messages_pb2.MarkRead(channel_id=g, message_id=message.id),
            outsider,
            NOT_FOUND,
            "UNKNOWN_CHANNEL",
        ),
        (s.GetReadStates, messages_pb2.GetReadStates(community_id=chat.cid), outsider, NOT_FOUND, "UNKNOWN_COMMUNITY"),
    ]
    for call, request, account, code, reason in cases:
        error = rpc_error(call, request, metadata=account.metadata)
        assert_error(error, code, reason)
        if reason == "INVALID_ARGUMENT":
            assert_error(error, code, reason, field="limit" if isinstance(request, messages_pb2.GetHistory) else "text")
    error = rpc_error(
        s.SendMessage, messages_pb2.SendMessage(channel_id=muted.id, text="x"), metadata=chat.bob.metadata
    )
    assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "SEND_MESSAGES"})
    error = rpc_error(
        s.DeleteMessage, messages_pb2.DeleteMessage(channel_id=g, message_id=message.id), metadata=chat.bob.metadata
    )
    assert_error(error, DENIED, "MISSING_PERMISSIONS", metadata={"permission": "DELETE_MESSAGES"})
    assert (stored(db), stored(db, tables.events), stored(db, tables.read_states)) == before
    assert chat.history(chat.alice) == [message]
    # The text bounds themselves are fine.
    assert chat.send(chat.bob, "x" * 4000).text == "x" * 4000
    assert chat.history(chat.bob, limit=100)


# ------------------------------------------------------------------------------------------------ retries


def test_concurrent_retries_with_one_client_id_make_one_message(chat, db):
    request = messages_pb2.SendMessage(channel_id=chat.general, text="once", client_id=2**64 - 1)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(lambda _: chat.stub.SendMessage(request, metadata=chat.alice.metadata, timeout=60), range(100))
        )
    assert len({answer.id for answer in answers}) == 1
    assert answers[0].client_id == 2**64 - 1
    [only] = chat.history(chat.bob)
    assert only.id == answers[0].id
    assert db.count(tables.messages, channel_id=chat.general) == 1
    assert chat.info(chat.bob) == (1, 0)
    # Another author, or another client_id, is another message.
    assert chat.send(chat.bob, "once", client_id=2**64 - 1).id != only.id
    assert chat.send(chat.alice, "once", client_id=7).id != only.id


# ------------------------------------------------------------------------------------------------ paging


def test_history_paging_has_no_gaps_or_repeats_while_messages_arrive(chat):
    for index in range(30):
        chat.send(chat.alice, f"before {index}")
    stop = threading.Event()

    def sender():
        index = 0
        while not stop.is_set():
            chat.send(chat.bob, f"during {index}")
            index += 1

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        # Backwards from the newest page: every message older than the first page, exactly once.
        backwards = chat.history(chat.owner, limit=7)
        while True:
            page = chat.history(chat.owner, before=backwards[-1].id, limit=7)
            if not page:
                break
            backwards.extend(page)
        # Forwards from the start, following new messages as they come.
        forwards = list(reversed(chat.history(chat.owner, after=1, limit=5)))
        for _ in range(200):
            page = list(reversed(chat.history(chat.owner, after=forwards[-1].id, limit=5)))
            forwards.extend(page)
    finally:
        stop.set()
        thread.join()
    while page := list(reversed(chat.history(chat.owner, after=forwards[-1].id, limit=5))):
        forwards.extend(page)
    everything = []
    while page := chat.history(chat.owner, limit=100, **({"before": everything[-1].id} if everything else {})):
        everything.extend(page)
    everything.reverse()
    ids = [m.id for m in everything]
    assert len(set(ids)) == len(ids)
    assert [m.id for m in forwards] == ids
    back = [m.id for m in reversed(backwards)]
    assert back == ids[: len(back)]


# ------------------------------------------------------------------------------------------------ join messages


def _invite_join(world, invites_stub, owner, channel_id, account) -> None:
    code = invites_stub.CreateInvite(
        invites_pb2.CreateInvite(channel_id=channel_id, unique=True), metadata=owner.metadata
    ).code
    invites_stub.UseInvite(invites_pb2.UseInvite(code=code), metadata=account.metadata)


def _settings(world, owner, cid, **system) -> None:
    world.communities.EditSettings(
        communities_pb2.EditSettings(
            community_id=cid,
            settings=communities_pb2.CommunitySettings(system_messages=communities_pb2.SystemMessages(**system)),
        ),
        metadata=owner.metadata,
    )


def test_join_messages_on_and_off(chat, world, invites_stub, grpc_channel, db):
    newcomer = world.make_account("newcomer")
    with UpdateStream(grpc_channel, chat.owner.metadata) as stream:
        _invite_join(world, invites_stub, chat.owner, chat.general, newcomer)
        stream.expect("invite_created")
        joined = stream.expect("member_joined")
        created = stream.expect("message_created")
    assert joined.member_joined.member.id == newcomer.id
    message = created.message_created
    assert (message.type, message.author_id, message.channel_id, message.text) == (JOIN, newcomer.id, chat.general, "")
    assert chat.history(chat.owner) == [message]
    assert chat.info(chat.owner) == (1, 0) and chat.info(newcomer) == (0, 0)
    # Off: none.
    _settings(world, chat.owner, chat.cid, join_messages=False)
    _invite_join(world, invites_stub, chat.owner, chat.general, world.make_account("quiet"))
    assert chat.history(chat.owner) == [message]
    # On again, but no system channel: none.
    _settings(world, chat.owner, chat.cid, join_messages=True, channel_id=0)
    _invite_join(world, invites_stub, chat.owner, chat.general, world.make_account("quieter"))
    assert chat.history(chat.owner) == [message]
    # Another system channel: there.
    other = world.channel(chat.owner, chat.cid, "welcome")
    _settings(world, chat.owner, chat.cid, channel_id=other.id)
    late = world.make_account("late")
    _invite_join(world, invites_stub, chat.owner, chat.general, late)
    [welcome] = chat.history(chat.owner, channel_id=other.id)
    assert (welcome.type, welcome.author_id) == (JOIN, late.id)


# ------------------------------------------------------------------------------------------------ updates


def test_message_events_reach_channel_viewers_and_read_state_only_the_reader(chat, world, grpc_channel):
    hidden = world.channel(chat.owner, chat.cid, "hidden")
    world.override(chat.owner, hidden.id, chat.cid, neg=P.VIEW_CHANNEL)
    with (
        UpdateStream(grpc_channel, chat.owner.metadata) as owner_stream,
        UpdateStream(grpc_channel, chat.bob.metadata) as bob_stream,
    ):
        secret = chat.send(chat.owner, "secret", channel_id=hidden.id)
        sent = chat.send(chat.alice, "hi")
        chat.stub.EditMessage(
            messages_pb2.EditMessage(channel_id=chat.general, message_id=sent.id, text="hi!"),
            metadata=chat.alice.metadata,
        )
        chat.mark(chat.bob, sent.id)
        chat.mark(chat.bob, sent.id)  # no move: no event
        chat.delete(chat.alice, sent.id)
        owner_updates = owner_stream.events(1.0)
        bob_updates = bob_stream.events(0.3)
    kinds = [u.WhichOneof("event") for u in owner_updates]
    assert kinds == ["message_created", "message_created", "message_edited", "message_deleted"]
    assert owner_updates[0].message_created.id == secret.id
    assert owner_updates[1].message_created == sent
    assert owner_updates[2].message_edited.text == "hi!"
    deleted = owner_updates[3].message_deleted
    assert (deleted.channel_id, deleted.message_id) == (chat.general, sent.id)
    kinds = [u.WhichOneof("event") for u in bob_updates]
    assert kinds == ["message_created", "message_edited", "read_state_updated", "message_deleted"]
    state = bob_updates[2].read_state_updated
    assert (state.channel_id, state.last_read_message_id, state.unread_count) == (chat.general, sent.id, 0)


def test_messages_of_a_deleted_channel_go_with_it(chat, world, db):
    channel = world.channel(chat.owner, chat.cid, "gone")
    chat.send(chat.alice, f"<@{chat.bob.id}>", channel_id=channel.id)
    assert chat.info(chat.bob) == (1, 1)
    world.channels.DeleteChannel(channels_pb2.DeleteChannel(channel_id=channel.id), metadata=chat.owner.metadata)
    assert db.count(tables.messages, channel_id=channel.id) == 0
    assert db.count(tables.message_channels, channel_id=channel.id) == 0
    assert db.count(tables.read_states, channel_id=channel.id) == 0
    assert chat.info(chat.bob) == (0, 0)
