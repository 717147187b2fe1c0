"""examples/*/reward_joins: the Updates.Subscribe example, run as a reader would run it (a subprocess against a real
`communities serve`), killed and started again with the same cursor file: every join is printed once, none lost,
none repeated; an expired cursor starts over from now; a server restart is ridden out."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from communities.v1 import (
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from tests.e2e.helpers import BIN, ROOT
from tests.support.updates import UpdateStream

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "examples"
LINE_TIMEOUT = 30  # generous: the first line includes starting Python or Node and a call
EXIT_TIMEOUT = 20

READY = "ready: caught up, waiting for joins"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the Node.js examples need Node 18+ on PATH")
    if not (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node_modules/@grpc/grpc-js is missing: run `npm install` at the project root")
    return node


@pytest.fixture(params=["python", "node"])
def language(request) -> str:
    return request.param


@dataclass
class World:
    address: str
    database: str
    bot_id: int
    bot_token: str
    community_id: int
    role_id: int
    channel_id: int
    code: str

    @property
    def as_bot(self):
        return (("authorization", f"Bot {self.bot_token}"),)


class Example:
    """examples/<language>/reward_joins.* as a subprocess in its own process group; stdout read line by line as it
    comes (a thread moves the lines into a queue), stderr to a file."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path):
        self.command = command
        self.lines: list[str] = []  # everything read so far
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr_path = cwd / f"stderr.{time.monotonic_ns()}"
        self._stderr = open(self._stderr_path, "w+")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.command)}\nexit {self.process.poll()}\n--- stdout so far\n"
            + "\n".join(self.lines)
            + f"\n--- stderr\n{self.stderr()}"
        )

    def next_line(self, timeout: float = LINE_TIMEOUT) -> str:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output line within {timeout}s\n{self.describe()}") from None
        if line is None:
            self._queue.put(None)
            raise AssertionError(f"the example's output ended\n{self.describe()}")
        self.lines.append(line)
        return line

    def expect(self, *expected: str, timeout: float = LINE_TIMEOUT) -> None:
        """The next lines are exactly `expected`."""
        for want in expected:
            got = self.next_line(timeout)
            assert got == want, f"expected {want!r}, got {got!r}\n{self.describe()}"

    def until(self, wanted: str, timeout: float = LINE_TIMEOUT) -> list[str]:
        """The lines before `wanted` (which is read too)."""
        deadline = time.monotonic() + timeout
        before = []
        while (line := self.next_line(max(0.0, deadline - time.monotonic()))) != wanted:
            before.append(line)
        return before

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Its exit code; fails when it does not exit in time."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the example did not exit within {timeout}s\n{self.describe()}") from None

    def rest(self) -> list[str]:
        """Once it has exited: the lines not read yet."""
        self.wait()
        rest = []
        while (line := self._queue.get(timeout=10)) is not None:
            rest.append(line)
        self._queue.put(None)
        self.lines += rest
        return rest

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        self._stderr.close()


@pytest.fixture
def start_example(request, language, tmp_path):
    """start_example(world, *args): runs the language's reward_joins in tmp_path with only COMMUNITIES_ADDRESS and
    COMMUNITIES_BOT_TOKEN set; every example still running at the end is killed."""
    node = request.getfixturevalue("node") if language == "node" else None
    started: list[Example] = []

    def start(world: World, *args: str) -> Example:
        env = {key: value for key, value in os.environ.items() if not key.startswith("COMMUNITIES_")}
        env.update(COMMUNITIES_ADDRESS=world.address, COMMUNITIES_BOT_TOKEN=world.bot_token)
        if language == "python":
            command = [str(BIN / "python"), str(EXAMPLES / "python" / "reward_joins.py"), *args]
        else:
            command = [node, str(EXAMPLES / "node" / "reward_joins.js"), *args]
        example = Example(command, env, tmp_path)
        started.append(example)
        return example

    yield start
    for example in started:
        example.kill()


def make_world(e2e, server, database: str) -> World:
    """A bot (made with the CLI) owning "My Game", with a Player role and an invite to #general that grants it."""
    bot = e2e.create_user("Game Bot", database=database, bot=True)
    as_bot = (("authorization", f"Bot {bot['token']}"),)
    with grpc.insecure_channel(server.address) as channel:
        communities = communities_pb2_grpc.CommunitiesStub(channel)
        community = communities.CreateCommunity(
            communities_pb2.CreateCommunity(name="My Game"), metadata=as_bot, timeout=10
        )
        role = roles_pb2_grpc.RolesStub(channel).CreateRole(
            roles_pb2.CreateRole(community_id=community.id, name="Player", priority=1), metadata=as_bot, timeout=10
        )
        settings = communities.GetSettings(
            communities_pb2.GetSettings(community_id=community.id), metadata=as_bot, timeout=10
        )
        channel_id = settings.system_messages.channel_id
        invite = invites_pb2_grpc.InvitesStub(channel).CreateInvite(
            invites_pb2.CreateInvite(channel_id=channel_id, role_ids=[role.id]), metadata=as_bot, timeout=10
        )
    return World(server.address, database, int(bot["id"]), bot["token"], community.id, role.id, channel_id, invite.code)


class Players:
    """People (made in-process, as the CLI would) who accept invites with their Bearer tokens."""

    def __init__(self, e2e, world: World):
        self.e2e, self.world = e2e, world
        self.made = 0

    def new(self) -> dict:
        self.made += 1
        return self.e2e.user_in_process(f"Player {self.made}", database=self.world.database)

    def use(self, player: dict, code: str) -> None:
        with grpc.insecure_channel(self.world.address) as channel:
            invites_pb2_grpc.InvitesStub(channel).UseInvite(
                invites_pb2.UseInvite(code=code), metadata=(("authorization", f"Bearer {player['token']}"),), timeout=10
            )

    def join(self) -> dict:
        player = self.new()
        self.use(player, self.world.code)
        return player


def joined_line(world: World, player: dict) -> str:
    return (
        f"joined: user {player['id']} with invite {world.code} from {world.bot_id}, "
        f"roles [{world.role_id}] (temporary: no)"
    )


def community_line(world: World) -> str:
    return f"Community: My Game ({world.community_id})"


def next_of(stream: UpdateStream, kind: str, timeout: float = LINE_TIMEOUT):
    """The next update of `kind` on the test's own stream, past any other (join messages, ...)."""
    deadline = time.monotonic() + timeout
    while (update := stream.next(max(0.1, deadline - time.monotonic()))).WhichOneof("event") != kind:
        pass
    return update


def wait_for_file(path: Path, content: str, timeout: float = LINE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text() == content):
        if time.monotonic() > deadline:
            found = path.read_text() if path.exists() else "(no file)"
            raise AssertionError(f"{path} does not hold {content!r} within {timeout}s: {found!r}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def shared(e2e_module):
    """One server for the tests that do not stop it; each test makes its own bot and community on it."""
    database = e2e_module.sqlite_url("reward_joins")
    return e2e_module, e2e_module.server(database=database), database


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_resumes_after_a_restart_without_losing_or_repeating_a_join(shared, start_example, tmp_path, kill):
    e2e, server, database = shared
    world = make_world(e2e, server, database)
    players = Players(e2e, world)
    cursor_file = tmp_path / "reward_joins.cursor"

    # First start: no arguments (the bot's "My Game", ./reward_joins.cursor), no cursor yet: from now.
    first = start_example(world)
    first.expect(community_line(world), "subscribing: no cursor in reward_joins.cursor, starting from now", READY)
    early = [players.join() for _ in range(3)]
    first.expect(*(joined_line(world, player) for player in early))

    # Before stopping it, wait until it has saved the cursor of the last update there is (join messages and the
    # like come too): the marker below, an update the test makes itself and finds on its own stream.
    with grpc.insecure_channel(world.address) as channel, UpdateStream(channel, world.as_bot) as own:
        roles_pb2_grpc.RolesStub(channel).CreateRole(
            roles_pb2.CreateRole(community_id=world.community_id, name="Marker"), metadata=world.as_bot, timeout=10
        )
        marker = next_of(own, "role_created").cursor
    wait_for_file(cursor_file, marker)
    if kill == signal.SIGTERM:
        # A clean stop: the update in hand is finished and its cursor saved.
        first.process.send_signal(signal.SIGTERM)
        assert first.rest() == ["stopped; the next start resumes from reward_joins.cursor"], first.describe()
        assert first.wait() == 0, first.describe()
    else:
        # A crash: only what was saved counts.
        first.process.send_signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL, first.describe()
    assert cursor_file.read_text() == marker
    assert not (tmp_path / "reward_joins.cursor.tmp").exists()
    assert first.stderr() == "", first.describe()

    # Two more join while it is down.
    missed = [players.join() for _ in range(2)]

    # Started again with the same cursor file (and the community id given): exactly the two missed joins, then
    # ready; nothing of the first three again.
    second = start_example(world, str(world.community_id), "--cursor-file", str(cursor_file), "--max-joins", "3")
    second.expect(
        community_line(world),
        f"subscribing: resuming after the cursor saved in {cursor_file}",
        *(joined_line(world, player) for player in missed),
        READY,
    )

    # Live again: an existing member gets a role through another invite, then one more player joins.
    with grpc.insecure_channel(world.address) as channel:
        veteran = roles_pb2_grpc.RolesStub(channel).CreateRole(
            roles_pb2.CreateRole(community_id=world.community_id, name="Veteran", priority=1),
            metadata=world.as_bot,
            timeout=10,
        )
        second_invite = invites_pb2_grpc.InvitesStub(channel).CreateInvite(
            invites_pb2.CreateInvite(channel_id=world.channel_id, role_ids=[veteran.id]),
            metadata=world.as_bot,
            timeout=10,
        )
    players.use(early[0], second_invite.code)
    second.expect(
        f"roles: user {early[0]['id']} got [{veteran.id}] with invite {second_invite.code} from {world.bot_id}"
    )
    last = players.join()
    second.expect(joined_line(world, last), "stopping after 3 join(s)")
    assert second.wait() == 0, second.describe()
    assert second.rest() == [], second.describe()
    assert second.stderr() == "", second.describe()


def sweep_every_event(world: World, tmp_path: Path) -> None:
    """What the server's maintenance does after the retention (7 days by default), now: forget every event, as the
    CLI's own code would, so that older cursors expire."""
    from communities.cli import _with_app
    from communities.config import Settings
    from communities.services import updates as updates_service

    settings = Settings(database=world.database, media_dir=str(tmp_path / "media"))
    asyncio.run(_with_app(settings, lambda app: updates_service.sweep_events(app, retention_ms=-60_000)))


def test_an_expired_cursor_starts_over_from_now(shared, start_example, tmp_path):
    e2e, server, database = shared
    world = make_world(e2e, server, database)
    players = Players(e2e, world)
    cursor_file = tmp_path / "joins.cursor"
    args = (str(world.community_id), "--cursor-file", str(cursor_file), "--max-joins", "1")

    first = start_example(world, *args)
    first.expect(community_line(world), f"subscribing: no cursor in {cursor_file}, starting from now", READY)
    joined = players.join()
    first.expect(joined_line(world, joined))
    assert first.rest() == ["stopping after 1 join(s)"], first.describe()
    assert first.wait() == 0, first.describe()

    with grpc.insecure_channel(world.address) as channel, UpdateStream(channel, world.as_bot) as own:
        players.join()  # missed, and then forgotten by the server
        next_of(own, "member_joined")  # committed and in the stream: the sweep below takes it
    sweep_every_event(world, tmp_path)

    second = start_example(world, *args)
    second.expect(
        community_line(world),
        f"subscribing: resuming after the cursor saved in {cursor_file}",
        f"cursor expired: deleted {cursor_file}; joins while we were away are not replayed",
        f"subscribing: no cursor in {cursor_file}, starting from now",
        READY,
    )
    last = players.join()
    second.expect(joined_line(world, last), "stopping after 1 join(s)")
    assert second.wait() == 0, second.describe()
    assert cursor_file.exists()


def test_rides_out_a_server_restart(e2e, start_example, tmp_path):
    database = e2e.sqlite_url()
    server = e2e.server(database=database)
    world = make_world(e2e, server, database)
    players = Players(e2e, world)
    cursor_file = tmp_path / "joins.cursor"

    example = start_example(world, str(world.community_id), "--cursor-file", str(cursor_file))
    example.expect(community_line(world), f"subscribing: no cursor in {cursor_file}, starting from now", READY)
    before = players.join()
    example.expect(joined_line(world, before))

    # The server stops: the stream ends with UNAVAILABLE and the example keeps trying, from its saved cursor.
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0, server.describe()
    line = example.next_line()
    assert re.fullmatch(r"server unavailable \(.+\); reconnecting in 1s", line), example.describe()

    # Back on the same address and database; a player joins at once, likely before the example is back.
    e2e.server(database=database, listen=world.address)
    after = players.join()
    seen = example.until(joined_line(world, after), timeout=60)
    assert joined_line(world, before) not in seen, example.describe()
    assert f"subscribing: resuming after the cursor saved in {cursor_file}" in seen, example.describe()

    example.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert example.rest()[-1:] == [f"stopped; the next start resumes from {cursor_file}"], example.describe()
    assert example.wait() == 0, example.describe()
    assert example.stderr() == "", example.describe()
