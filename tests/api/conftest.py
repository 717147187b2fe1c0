"""Fixtures for the API tests of the foundation: members added through storage (there is no invite RPC yet),
bulk setup through the service layer, and direct reads of the database to check what an RPC left behind."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, insert, select

from communities.domain import validation
from communities.services import communities as communities_service
from communities.services.context import Principal
from communities.storage import repository as repo
from communities.storage import tables
from communities.v1 import communities_pb2, permissions_pb2

try:  # where insert_member lives moved when the Members service arrived
    from communities.storage.members import insert_member
except ImportError:  # pragma: no cover - the foundation layout
    from communities.storage.repository import insert_member

P = permissions_pb2.CommunityPermission

# Computed from the proto, independently of the server's own Permission enum.
ALL_PERMISSIONS = 0
for _value in P.DESCRIPTOR.values:
    ALL_PERMISSIONS |= _value.number

DEFAULT_PERMISSIONS = (
    P.COMMUNITY_PERMISSION_VIEW_CHANNEL
    | P.COMMUNITY_PERMISSION_SEND_MESSAGES
    | P.COMMUNITY_PERMISSION_CONNECT_VOICE
    | P.COMMUNITY_PERMISSION_SPEAK_VOICE
    | P.COMMUNITY_PERMISSION_SEND_MEDIA
    | P.COMMUNITY_PERMISSION_ADD_REACTIONS
    | P.COMMUNITY_PERMISSION_CREATE_INVITE
)

MAX_FIXED64 = 2**64 - 1


def principal(account) -> Principal:
    return Principal(id=account.id, name=account.name, bot=account.bot)


@pytest.fixture(scope="module")
def add_member(server) -> Callable[..., None]:
    """add_member(community_id, account[, joined_at_ms]): what joining will do once invites exist — take one of
    the user's membership slots and insert the member row, in one transaction."""

    def add(community_id: int, account, joined_at_ms: int | None = None) -> None:
        async def run() -> None:
            async with server.app.db.unit_of_work(write=True) as uow:
                if not await repo.claim_membership_slot(uow, account.id, validation.COMMUNITIES_PER_USER):
                    raise AssertionError(f"{account.name} has no free membership slot")
                now = joined_at_ms if joined_at_ms is not None else server.app.clock_ms()
                added = await insert_member(uow, community_id, account.id, now)
                if added is False:
                    raise AssertionError(f"{account.name} is already a member of {community_id}")

        server.run(run())

    return add


@pytest.fixture(scope="module")
def create(communities_stub) -> Callable[..., communities_pb2.Community]:
    """create(account, name="...") -> Community, through the RPC."""

    def make(account, name: str = "A community") -> communities_pb2.Community:
        return communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name=name), metadata=account.metadata)

    return make


@pytest.fixture(scope="module")
def create_many(server) -> Callable[..., list[int]]:
    """create_many(account, n) -> ids: n owned communities, as setup for the limit tests.

    By default in one transaction: the user's membership counter is claimed once per community with the server's
    own claim_membership_slot (so a user at the limit cannot get more), and bare community and member rows are
    inserted (no channel: these are filler). With through_service=True each one is made by the service's
    create_community, exactly as the RPC does, one transaction each (slower)."""

    def make(account, count: int, *, through_service: bool = False) -> list[int]:
        async def one_by_one() -> list[int]:
            ids = []
            for index in range(count):
                view = await communities_service.create_community(server.app, principal(account), f"bulk {index}")
                ids.append(view.id)
            return ids

        async def bulk() -> list[int]:
            ids = [server.app.ids.next_id() for _ in range(count)]
            now = server.app.clock_ms()
            async with server.app.db.unit_of_work(write=True) as uow:
                for _ in ids:
                    if not await repo.claim_membership_slot(uow, account.id, validation.COMMUNITIES_PER_USER):
                        raise AssertionError(f"{account.name} would pass the community limit")
                await uow.execute(
                    insert(tables.communities),
                    [
                        {
                            "id": community_id,
                            "name": f"bulk {index}",
                            "owner_id": account.id,
                            "default_permissions": DEFAULT_PERMISSIONS,
                            "system_channel_id": None,
                            "join_messages": True,
                            "created_at": now,
                        }
                        for index, community_id in enumerate(ids)
                    ],
                )
                await uow.execute(
                    insert(tables.members),
                    [
                        {"community_id": community_id, "user_id": account.id, "joined_at": now, "muted": False}
                        for community_id in ids
                    ],
                )
            return ids

        return server.run(one_by_one() if through_service else bulk())

    return make


class Db:
    """Direct access to the server's database, for setup the API cannot do yet and for checking leftovers."""

    def __init__(self, server):
        self.server = server

    def rows(self, statement) -> list:
        async def run():
            async with self.server.app.db.unit_of_work(write=False) as uow:
                return (await uow.execute(statement)).all()

        return self.server.run(run())

    def scalar(self, statement):
        async def run():
            async with self.server.app.db.unit_of_work(write=False) as uow:
                return (await uow.execute(statement)).scalar_one()

        return self.server.run(run())

    def write(self, *statements) -> None:
        async def run() -> None:
            async with self.server.app.db.unit_of_work(write=True) as uow:
                for statement in statements:
                    await uow.execute(statement)

        self.server.run(run())

    def count(self, table, **where) -> int:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return self.scalar(query)

    def stored_community_count(self, user_id: int) -> int:
        """The counter the per-user limit is enforced with."""
        return self.scalar(select(tables.users.c.community_count).where(tables.users.c.id == user_id))

    def new_id(self) -> int:
        return self.server.app.ids.next_id()


@pytest.fixture(scope="module")
def db(server) -> Db:
    return Db(server)
