"""communities.v1.Users: GetSelf and GetUsers."""

from __future__ import annotations

import grpc
import pytest

from communities.v1 import users_pb2
from tests.api.conftest import MAX_FIXED64
from tests.conftest import rpc_error
from tests.support.errors import assert_error


def get_users(stub, account, ids) -> list[tuple[int, str, bool]]:
    answer = stub.GetUsers(users_pb2.GetUsers(user_ids=ids), metadata=account.metadata)
    return [(user.id, user.name, user.bot) for user in answer.users]


@pytest.mark.parametrize("bot", [False, True], ids=["person", "bot"])
def test_get_self_returns_the_caller(users_stub, make_account, bot):
    account = make_account("Ünïcode 🤖 name" if bot else "Plain Person", bot=bot)
    me = users_stub.GetSelf(users_pb2.GetSelf(), metadata=account.metadata)
    assert (me.id, me.name, me.bot) == (account.id, account.name, bot)
    assert me.id != 0


def test_get_self_tells_callers_apart(users_stub, make_account):
    first, second = make_account(), make_account()
    assert users_stub.GetSelf(users_pb2.GetSelf(), metadata=first.metadata).id == first.id
    assert users_stub.GetSelf(users_pb2.GetSelf(), metadata=second.metadata).id == second.id
    assert first.id != second.id


@pytest.fixture(scope="module")
def people(make_account):
    return [make_account("Ada"), make_account("Grace Bot", bot=True), make_account("Linus")]


def test_get_users_in_request_order(users_stub, people):
    ada, bot, linus = people
    expected = [(linus.id, "Linus", False), (ada.id, "Ada", False), (bot.id, "Grace Bot", True)]
    assert get_users(users_stub, ada, [linus.id, ada.id, bot.id]) == expected
    assert get_users(users_stub, bot, [bot.id, linus.id]) == [expected[2], expected[0]]


def test_get_users_skips_unknown_ids(users_stub, people, db):
    ada, _, linus = people
    unknown = [db.new_id(), 0, 1, MAX_FIXED64, 1 << 63]
    ids = [unknown[0], ada.id, unknown[1], unknown[2], linus.id, unknown[3], unknown[4]]
    assert get_users(users_stub, ada, ids) == [(ada.id, "Ada", False), (linus.id, "Linus", False)]
    assert get_users(users_stub, ada, unknown) == []


def test_get_users_dedupes(users_stub, people):
    ada, bot, _ = people
    ids = [bot.id, ada.id, bot.id, bot.id, ada.id]
    assert get_users(users_stub, ada, ids) == [(bot.id, "Grace Bot", True), (ada.id, "Ada", False)]


def test_get_users_empty_request(users_stub, people):
    assert get_users(users_stub, people[0], []) == []


def test_get_users_accepts_100_ids(users_stub, people, db):
    ada, bot, linus = people
    ids = [db.new_id() for _ in range(97)] + [linus.id, bot.id, ada.id]
    assert len(ids) == 100
    assert [user.id for user in users_stub.GetUsers(users_pb2.GetUsers(user_ids=ids), metadata=ada.metadata).users] == [
        linus.id,
        bot.id,
        ada.id,
    ]


@pytest.mark.parametrize("count", [101, 1000])
def test_get_users_rejects_more_than_100_ids(users_stub, people, db, count):
    ada = people[0]
    ids = [ada.id] + [db.new_id() for _ in range(count - 1)]
    error = rpc_error(users_stub.GetUsers, users_pb2.GetUsers(user_ids=ids), metadata=ada.metadata)
    assert_error(error, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="user_ids")


def test_get_users_sees_users_without_shared_community(users_stub, make_account):
    """Basic public info: any known user can be looked up by id."""
    asker, stranger = make_account(), make_account("Stranger")
    assert get_users(users_stub, asker, [stranger.id]) == [(stranger.id, "Stranger", False)]
