"""The examples/ scripts (the invites tutorial's two walk-throughs, in Python and in Node.js) run as a reader would
run them: as subprocesses against a real `communities serve`, with users made by the operator CLI."""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import pytest

from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from tests.e2e.helpers import BIN, COMMUNITIES, ROOT, TOKEN_RE, Result, ServerProcess, address, clean_env, run

pytestmark = pytest.mark.e2e

EXAMPLES = ROOT / "examples"
LANGUAGES = ["python", "node"]
SCRIPT_TIMEOUT = 60
# A well-formed id no user has: target lists may name people who have not registered yet.
UNREGISTERED_ID = "111111111111111111"


@dataclass
class Account:
    id: int
    name: str
    token: str


@dataclass
class World:
    address: str
    bots: dict[str, Account]  # one bot per language, so each language's run starts from nothing
    player: Account
    supporter: Account
    env: dict[str, str]  # the server's database, for tests that make accounts of their own with the CLI


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` binary, with the project's Node packages installed (`npm install` when they are missing)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the Node.js examples need Node 18+ on PATH")
    if not all((ROOT / "node_modules" / "@grpc" / name).is_dir() for name in ("grpc-js", "proto-loader")):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node_modules/@grpc/grpc-js is missing and npm is not installed to run `npm install`")
        result = run([npm, "install", "--no-audit", "--no-fund"], timeout=600)
        if result.returncode != 0:
            pytest.fail(
                "`npm install` failed; the Node.js examples need @grpc/grpc-js and @grpc/proto-loader "
                f"(try `npm install` at the project root):\n{result.describe()}"
            )
    return node


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """A server on a fresh SQLite database, and the accounts the walk-throughs need, made with the operator CLI."""
    tmp = tmp_path_factory.mktemp("examples")
    env = clean_env(COMMUNITIES_DATABASE=f"sqlite:///{tmp}/db.sqlite", COMMUNITIES_LOG_LEVEL="WARNING")
    listen = address()
    server = ServerProcess(args=["--listen", listen], env=env, address=listen, log_dir=tmp / "server")
    try:
        server.start()
        server.wait_ready(logged=False)  # at WARNING the server does not log that it serves

        def create(name: str, bot: bool = False) -> Account:
            args = [COMMUNITIES, "users", "create", name, *(["--bot"] if bot else []), "--json"]
            made = run(args, env=env).ok().json()
            return Account(int(made["id"]), made["name"], made["token"])

        with ThreadPoolExecutor() as pool:
            python_bot, node_bot, player, supporter = pool.map(
                lambda args: create(*args),
                [("Python Game Bot", True), ("Node Game Bot", True), ("Alice", False), ("Sam", False)],
            )
        yield World(listen, {"python": python_bot, "node": node_bot}, player, supporter, env)

        tokens = {python_bot.token, node_bot.token, player.token, supporter.token}
        assert not tokens & set(TOKEN_RE.findall(server.output())), f"a token was logged\n{server.describe()}"
    finally:
        server.stop()  # SIGTERM, then SIGKILL if it has not stopped within 10 s


def run_example(language: str, name: str, node: str | None = None, **settings: str) -> Result:
    """examples/<language>/<name> with only the given COMMUNITIES_* variables (none from the caller's shell)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMMUNITIES_")}
    env.update(settings)
    if language == "python":
        args = [str(BIN / "python"), str(EXAMPLES / "python" / f"{name}.py")]
    else:
        assert node is not None
        args = [node, str(EXAMPLES / "node" / f"{name}.js")]
    return run(args, env=env, timeout=SCRIPT_TIMEOUT)


def line_value(result: Result, prefix: str) -> str:
    """What follows `prefix` on the one stdout line that starts with it."""
    values = [line[len(prefix) :] for line in result.stdout.splitlines() if line.startswith(prefix)]
    assert len(values) == 1, f"expected one line starting with {prefix!r}\n{result.describe()}"
    return values[0]


def community_id(result: Result) -> int:
    match = re.fullmatch(r"My Game \((\d+)\)", line_value(result, "Community: "))
    assert match, result.describe()
    return int(match.group(1))


def as_user(account: Account):
    return (("authorization", f"Bearer {account.token}"),)


@pytest.fixture(params=LANGUAGES)
def language(request) -> str:
    return request.param


@pytest.fixture
def node_if_needed(request, language) -> str | None:
    return request.getfixturevalue("node") if language == "node" else None


def test_player_invite(world, language, node_if_needed):
    bot, player = world.bots[language], world.player
    settings = {"COMMUNITIES_ADDRESS": world.address, "COMMUNITIES_BOT_TOKEN": bot.token}

    # The bot alone: community, Player role and invite are made, and the code is printed for sharing.
    first = run_example(language, "player_invite", node_if_needed, **settings).ok()
    code = line_value(first, "Share this code: ")
    assert re.fullmatch(r"[2-9a-zA-Z]{8,32}", code), first.describe()
    assert line_value(first, "Invite code: ").startswith(f"{code} (grants Player; expires ")
    assert "Set COMMUNITIES_PLAYER_TOKEN" in first.stdout
    community = community_id(first)

    # Again, with a player: the same community and (not unique) the same invite; the player gets the role.
    second = run_example(
        language, "player_invite", node_if_needed, **settings, COMMUNITIES_PLAYER_TOKEN=player.token
    ).ok()
    assert community_id(second) == community
    assert line_value(second, "Share this code: ") == code
    assert line_value(second, f"{player.name} ({player.id}) accepted the invite and is in ") == "My Game"
    assert line_value(second, f"{player.name}'s roles: ") == "Player"
    assert f"Player role granted to {player.name}" in second.stdout.splitlines()

    # Checked independently: the player is a member holding the Player role, attributed to the invite.
    with grpc.insecure_channel(world.address) as channel:
        member = (
            members_pb2_grpc.MembersStub(channel)
            .GetMembers(
                members_pb2.GetMembers(community_id=community, member_ids=[player.id]),
                metadata=as_user(player),
                timeout=10,
            )
            .members[0]
        )
        roles = roles_pb2_grpc.RolesStub(channel).GetRoles(
            roles_pb2.GetRoles(community_id=community), metadata=as_user(player), timeout=10
        )
    assert [role.name for role in roles.roles if role.id in member.role_ids] == ["Player"]
    assert member.invite_code == code


def test_supporter_invite(world, language, node_if_needed):
    bot, supporter, outsider = world.bots[language], world.supporter, world.player
    result = run_example(
        language,
        "supporter_invite",
        node_if_needed,
        COMMUNITIES_ADDRESS=world.address,
        COMMUNITIES_BOT_TOKEN=bot.token,
        COMMUNITIES_SUPPORTER_IDS=f"{supporter.id}, {UNREGISTERED_ID}",
        COMMUNITIES_SUPPORTER_TOKEN=supporter.token,
        COMMUNITIES_OUTSIDER_TOKEN=outsider.token,
    ).ok()
    lines = result.stdout.splitlines()
    code = line_value(result, "Share this code with your supporters: ")
    assert line_value(result, "Target users stored: ") == "2 of 2, 1 not registered yet"
    assert line_value(result, "Invite code: ") == f"{code} (targeted; grants Supporter)"
    assert f"{supporter.name} sees the invite to My Game #supporter-chat" in lines
    visible = line_value(result, f"Channels {supporter.name} can see: ").split(", ")
    assert "#supporter-chat" in visible and "#general" in visible
    not_found = lines.index(
        f"{outsider.name} is not on the list; looking the invite up gives NOT_FOUND: Unknown invite"
    )
    assert lines[not_found + 1] == "  reason: UNKNOWN_INVITE"
    community = community_id(result)

    # Checked independently: the outsider can neither accept the invite nor see the private channel (whether or
    # not the player walk-through already made them a member), and the supporter can.
    with grpc.insecure_channel(world.address) as channel:
        invites = invites_pb2_grpc.InvitesStub(channel)
        channels = channels_pb2_grpc.ChannelsStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            invites.UseInvite(invites_pb2.UseInvite(code=code), metadata=as_user(outsider), timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND

        def channel_names(account: Account) -> set[str]:
            try:
                listed = channels.GetChannels(
                    channels_pb2.GetChannels(community_id=community), metadata=as_user(account), timeout=10
                )
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND, error
                return set()
            return {c.name for c in listed.channels}

        assert "supporter-chat" not in channel_names(outsider)
        assert "supporter-chat" in channel_names(supporter)


@pytest.mark.parametrize("name", ["player_invite", "supporter_invite"])
def test_missing_bot_token(world, language, node_if_needed, name):
    result = run_example(
        language, name, node_if_needed, COMMUNITIES_ADDRESS=world.address, COMMUNITIES_SUPPORTER_IDS="1"
    )
    assert result.returncode != 0, result.describe()
    assert "COMMUNITIES_BOT_TOKEN is not set" in result.stderr, result.describe()
    assert result.stdout == "", result.describe()


def test_missing_supporter_ids(world, language, node_if_needed):
    result = run_example(
        language,
        "supporter_invite",
        node_if_needed,
        COMMUNITIES_ADDRESS=world.address,
        COMMUNITIES_BOT_TOKEN=world.bots[language].token,
    )
    assert result.returncode != 0, result.describe()
    assert "COMMUNITIES_SUPPORTER_IDS is not set" in result.stderr, result.describe()


def test_wrong_token_scheme_shows_the_reason(world, language, node_if_needed):
    # A person's token sent as `Bot <token>` is refused.
    result = run_example(
        language,
        "player_invite",
        node_if_needed,
        COMMUNITIES_ADDRESS=world.address,
        COMMUNITIES_BOT_TOKEN=world.player.token,
    )
    assert result.returncode != 0, result.describe()
    assert "error: UNAUTHENTICATED: " in result.stderr, result.describe()
    assert "  reason: UNAUTHENTICATED" in result.stderr.splitlines(), result.describe()
    assert world.player.token not in result.stdout + result.stderr


def test_bad_supporter_id_shows_the_field_violation(world, language, node_if_needed):
    result = run_example(
        language,
        "supporter_invite",
        node_if_needed,
        COMMUNITIES_ADDRESS=world.address,
        COMMUNITIES_BOT_TOKEN=world.bots[language].token,
        COMMUNITIES_SUPPORTER_IDS=f"{world.supporter.id},not-an-id",
    )
    assert result.returncode != 0, result.describe()
    stderr = result.stderr.splitlines()
    assert "error: INVALID_ARGUMENT: target_users_file has 1 invalid line(s)" in stderr, result.describe()
    assert "  reason: INVALID_ARGUMENT" in stderr, result.describe()
    assert "  target_users_file: Line 2: invalid user ID" in stderr, result.describe()


def test_server_not_running(language, node_if_needed):
    result = run_example(
        language, "player_invite", node_if_needed, COMMUNITIES_ADDRESS=address(), COMMUNITIES_BOT_TOKEN="cmt_x"
    )
    assert result.returncode != 0, result.describe()
    assert "error: UNAVAILABLE: " in result.stderr, result.describe()
    assert "is the server running?" in result.stderr, result.describe()


def test_post_and_read(world):
    """examples/python/post_and_read.py (Python only): a bot posts, a person's unread count goes up and back to
    zero after MarkRead. Accounts of its own, so that the invite walk-throughs' assertions are not disturbed."""

    def create(name: str, bot: bool = False) -> Account:
        args = [COMMUNITIES, "users", "create", name, *(["--bot"] if bot else []), "--json"]
        made = run(args, env=world.env).ok().json()
        return Account(int(made["id"]), made["name"], made["token"])

    bot, reader = create("Post Bot", bot=True), create("Rita")
    settings = {"COMMUNITIES_ADDRESS": world.address, "COMMUNITIES_BOT_TOKEN": bot.token}
    welcome = f"Welcome to My Game, <@{reader.id}>!"
    posted = []
    for attempt in range(2):  # again: the same community and membership, one more message, the same counts
        result = run_example("python", "post_and_read", **settings, COMMUNITIES_PLAYER_TOKEN=reader.token).ok()
        lines = result.stdout.splitlines()
        unread = [line.split(": ", 1)[1] for line in lines if line.startswith("Rita's unread in My Game: ")]
        assert unread == ["0 (mentions: 0)", "1 (mentions: 1)", "0 (mentions: 0)"], result.describe()
        message_id = int(line_value(result, "Post Bot posted message ").split(":")[0])
        posted.append(message_id)
        history = lines[lines.index(f"Rita reads the newest {2 + attempt} messages:") + 1 :][: 2 + attempt]
        assert history[0].endswith(f" Post Bot: {welcome}"), result.describe()
        assert history[-1].endswith(" Rita joined"), result.describe()
        assert f"Rita marked message {message_id} read: 0 unread in the channel (mentions: 0)" in lines
    community = community_id(result)

    # Checked independently: two messages by the bot mentioning the reader, the newest one read, nothing unread.
    with grpc.insecure_channel(world.address) as channel:
        messages = messages_pb2_grpc.MessagesStub(channel)
        states = messages.GetReadStates(
            messages_pb2.GetReadStates(community_id=community), metadata=as_user(reader), timeout=10
        ).states
        [state] = states
        page = messages.GetHistory(
            messages_pb2.GetHistory(channel_id=state.channel_id, limit=10), metadata=as_user(reader), timeout=10
        ).messages
    assert (state.last_read_message_id, state.unread_count, state.unread_mention_count) == (posted[-1], 0, 0)
    assert [m.id for m in page if m.author_id == bot.id] == posted[::-1]
    assert all(list(m.mention_user_ids) == [reader.id] and m.text == welcome for m in page if m.author_id == bot.id)
    assert [m.type for m in page if m.author_id == reader.id] == [messages_pb2.MESSAGE_TYPE_JOIN]


def test_post_and_read_needs_the_reader_token(world):
    result = run_example(
        "python", "post_and_read", COMMUNITIES_ADDRESS=world.address, COMMUNITIES_BOT_TOKEN=world.bots["python"].token
    )
    assert result.returncode != 0, result.describe()
    assert "COMMUNITIES_PLAYER_TOKEN is not set" in result.stderr, result.describe()
    assert result.stdout == "", result.describe()
