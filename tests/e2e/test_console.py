"""The web console in Debian's headless Chromium, driven by Playwright, against a real `communities serve`: sign-in
through a one-time login link or a pasted token, role invites, targeted invites from a CSV, the roles a manager is
offered, the live "who joined" list, and the phone-width layout. The README's screenshots come from here (SCREENSHOTS).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from tests.e2e.helpers import address

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
# README screenshots are written only when asked for (`COMMUNITIES_SCREENSHOTS=docs/console scripts/test
# tests/e2e/test_console.py`), so that a test run leaves the committed ones alone; otherwise to a scratch folder.
SCREENSHOTS = Path(os.environ.get("COMMUNITIES_SCREENSHOTS") or tempfile.mkdtemp(prefix="console-screenshots-"))
WAIT_MS = 15_000

# Permission bits (communities.v1.CommunityPermission).
VIEW_CHANNEL = 2
MODIFY_COMMUNITY = 512
MODIFY_ROLES = 1024
REMOVE_MEMBERS = 2048
CREATE_INVITE = 16384


@pytest.fixture(scope="module")
def console(e2e_module):
    database = e2e_module.sqlite_url("console")
    listen = address()
    server = e2e_module.server("--console-listen", listen, database=database)
    server.wait_for_log("console at")
    return Console(e2e_module, server.address, f"http://{listen}/", database)


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium (Playwright's own browser download cannot work here), once per module; Playwright starts it
    with a new temporary profile directory."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does when run as root)")
    with sync_playwright() as running:
        browser = running.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium):
    """Opens a page in a new browser context: its own cookies, sessionStorage and localStorage, like a new profile."""
    contexts = []

    def open_page(viewport: dict | None = None):
        context = chromium.new_context(viewport=viewport or DESKTOP)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # The server's Content-Security-Policy allows no inline script or style: a violation is a defect.
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        page.script_errors = errors
        return page

    yield open_page
    for context in contexts:
        context.close()


@dataclass
class Console:
    e2e: object
    grpc_address: str
    url: str
    database: str

    def user(self, name: str, *, bot: bool = False) -> dict:
        # In a thread of its own: sync Playwright keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(self.e2e.user_in_process, name, database=self.database, bot=bot).result()

    def login_link(self, user: dict) -> str:
        result = self.e2e.cli("console-link", user["id"], "--console-url", self.url, database=self.database).ok()
        link = result.stdout.strip()
        assert re.fullmatch(re.escape(self.url) + r"#login=[A-Za-z0-9_-]+", link), result.describe()
        return link

    def call(self, user: dict, stub, method: str, request):
        scheme = "Bot" if user["bot"] else "Bearer"
        with grpc.insecure_channel(self.grpc_address) as channel:
            return getattr(stub(channel), method)(
                request, metadata=(("authorization", f"{scheme} {user['token']}"),), timeout=10
            )


@dataclass
class World:
    owner: dict
    community_id: int
    channel_id: int
    player_role: int


def make_world(console: Console, name: str) -> World:
    """A person owning a community `name` with a Player role (priority 1)."""
    owner = console.user(f"{name} Owner")
    community = console.call(
        owner, communities_pb2_grpc.CommunitiesStub, "CreateCommunity", communities_pb2.CreateCommunity(name=name)
    )
    role = console.call(
        owner,
        roles_pb2_grpc.RolesStub,
        "CreateRole",
        roles_pb2.CreateRole(community_id=community.id, name="Player", priority=1, color=0x2E8B57),
    )
    settings = console.call(
        owner,
        communities_pb2_grpc.CommunitiesStub,
        "GetSettings",
        communities_pb2.GetSettings(community_id=community.id),
    )
    return World(owner, community.id, settings.system_messages.channel_id, role.id)


def sign_in_with_link(page, console: Console, user: dict) -> None:
    link = console.login_link(user)
    page.goto(link)
    expect(page.get_by_text(f"Signed in as {user['name']}")).to_be_visible(timeout=WAIT_MS)
    assert "login=" not in page.url, page.url


def wait_live(page) -> None:
    expect(page.get_by_role("status", name="Live updates: Live")).to_be_visible(timeout=WAIT_MS)


def create_invite(page) -> str:
    page.get_by_role("button", name="Create invite").click()
    code = page.locator("#created-code")
    expect(code).to_have_value(re.compile(r"\S{8,}"), timeout=WAIT_MS)
    return code.input_value()


def offered_roles(page) -> list[str]:
    group = page.get_by_role("group", name="Roles (Optional)")
    expect(group).to_be_visible(timeout=WAIT_MS)
    assert group.locator("input").count() == group.locator("label").count()
    return [label.strip() for label in group.locator("label").all_inner_texts()]


def screenshot(page, name: str) -> None:
    """A README screenshot, palette-reduced so that it stays small in the repository."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(SCREENSHOTS / name, optimize=True)


def list_invites(console: Console, user: dict, community_id: int):
    return console.call(
        user,
        invites_pb2_grpc.InvitesStub,
        "ListInvites",
        invites_pb2.ListInvites(community_id=community_id, include_inactive=True),
    ).invites


def test_role_invite_and_live_join(console, browser):
    """The owner signs in with a login link, creates a Player invite; a player accepts it over gRPC; the page shows
    the join without a reload."""
    world = make_world(console, "Live Game")
    page = browser()
    sign_in_with_link(page, console, world.owner)
    wait_live(page)
    expect(page.locator("#community")).to_have_value(str(world.community_id))

    page.get_by_role("checkbox", name="Player").check()
    page.get_by_label("Max number of uses").select_option(label="10 uses")
    code = create_invite(page)
    (invite,) = list_invites(console, world.owner, world.community_id)
    assert invite.code == code
    assert [role.id for role in invite.roles] == [world.player_role]
    assert invite.max_uses == 10
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url.rstrip("/"))
    page.get_by_role("button", name=f"Invite code: copy {code}").click()
    expect(page.locator(".copy-status")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == code

    page.evaluate("window.notReloaded = true")
    who_joined = page.locator("#who-joined")
    expect(who_joined).to_contain_text("Nobody has joined", timeout=WAIT_MS)
    player = console.user("Ada Player")
    console.call(player, invites_pb2_grpc.InvitesStub, "UseInvite", invites_pb2.UseInvite(code=code))

    group = who_joined.locator(f'[data-code="{code}"]')
    expect(group).to_contain_text("Ada Player", timeout=WAIT_MS)
    expect(group).to_contain_text("(1 joined)")
    expect(page.get_by_text("Ada Player joined with invite")).to_be_attached()  # the aria-live announcement
    row = page.locator(f'li.invite[data-code="{code}"]')
    expect(row.locator(".uses")).to_have_text("1 / 10", timeout=WAIT_MS)
    assert page.evaluate("window.notReloaded") is True

    member = console.call(
        world.owner,
        members_pb2_grpc.MembersStub,
        "GetMembers",
        members_pb2.GetMembers(community_id=world.community_id, member_ids=[int(player["id"])]),
    ).members[0]
    assert list(member.role_ids) == [world.player_role] and member.invite_code == code
    screenshot(page, "desktop.png")

    # Delete, with a confirmation; cancelling first keeps it.
    row.get_by_role("button", name=f"Delete invite {code}").click()
    row.get_by_role("button", name="Cancel").click()
    assert [i.code for i in list_invites(console, world.owner, world.community_id)] == [code]
    row.get_by_role("button", name=f"Delete invite {code}").click()
    row.get_by_role("button", name=f"Yes, delete {code}").click()
    expect(page.locator(f'li.invite[data-code="{code}"]')).to_have_count(0, timeout=WAIT_MS)
    assert list_invites(console, world.owner, world.community_id) == []
    assert page.script_errors == []


def test_targeted_invite_reports_bad_lines(console, browser):
    world = make_world(console, "Targeted Game")
    listed = console.user("Listed Player")
    page = browser()
    sign_in_with_link(page, console, world.owner)

    # Line 1 header, 2 an id, 3 blank, 4 bad: the server numbers the lines of the file as written.
    bad = f"user_id\n{listed['id']}\n\n12ab\n".encode()
    page.get_by_label("Only these users").set_input_files(
        files=[{"name": "players.csv", "mimeType": "text/csv", "buffer": bad}]
    )
    page.get_by_role("button", name="Create invite").click()
    problem = page.locator("#create-problem")
    expect(problem).to_contain_text("Line 4: invalid user ID", timeout=WAIT_MS)
    expect(problem).to_contain_text("Some of what you entered is not valid")
    assert problem.get_by_role("listitem").all_inner_texts() == ["Line 4: invalid user ID"]
    assert list_invites(console, world.owner, world.community_id) == []
    screenshot(page, "targeted-error.png")

    good = f"user_id\n{listed['id']}\n".encode()
    page.get_by_label("Only these users").set_input_files(
        files=[{"name": "players.csv", "mimeType": "text/csv", "buffer": good}]
    )
    code = create_invite(page)
    expect(page.locator("#create-problem")).to_have_count(0)
    expect(page.get_by_text("User list stored: 1 user can accept this invite.")).to_be_visible(timeout=WAIT_MS)
    (invite,) = list_invites(console, world.owner, world.community_id)
    assert invite.code == code and invite.targeted

    # Past 10,000 ids the server stores the list in the background: the page polls the job until it is done.
    many = "user_id\n" + "".join(f"{1_000_000_000_000_000 + n}\n" for n in range(20_000))
    page.get_by_label("Only these users").set_input_files(
        files=[{"name": "many.csv", "mimeType": "text/csv", "buffer": many.encode()}]
    )
    page.get_by_label("Always a new code (unique)").check()
    second = create_invite(page)
    assert second != code
    expect(page.get_by_text("User list stored: 20000 users can accept this invite.")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("20000 of them are not registered yet")).to_be_visible()
    assert page.script_errors == []


def test_roles_offered_follow_the_managers_rank(console, browser):
    """Only roles strictly below the manager's rank, with no bit the manager lacks; none without MODIFY_ROLES."""
    world = make_world(console, "Ranked Game")
    owner, community = world.owner, world.community_id

    def role(name: str, priority: int, permissions: int) -> int:
        return console.call(
            owner,
            roles_pb2_grpc.RolesStub,
            "CreateRole",
            roles_pb2.CreateRole(community_id=community, name=name, priority=priority, permissions=permissions),
        ).id

    inviter = role("Inviter", 3, MODIFY_COMMUNITY | CREATE_INVITE)
    lead = role("Lead", 10, MODIFY_ROLES | MODIFY_COMMUNITY | CREATE_INVITE | VIEW_CHANNEL)
    role("Moderator", 5, REMOVE_MEMBERS)  # below Lead, but with a bit Lead lacks
    role("Staff", 20, 0)  # above Lead

    code = console.call(
        owner, invites_pb2_grpc.InvitesStub, "CreateInvite", invites_pb2.CreateInvite(channel_id=world.channel_id)
    ).code

    def member(name: str, role_id: int) -> dict:
        user = console.user(name)
        console.call(user, invites_pb2_grpc.InvitesStub, "UseInvite", invites_pb2.UseInvite(code=code))
        console.call(
            owner,
            members_pb2_grpc.MembersStub,
            "EditMember",
            members_pb2.EditMember(
                community_id=community, member_id=int(user["id"]), role_ids=members_pb2.RoleIds(ids=[role_id])
            ),
        )
        return user

    without = member("Ivy Inviter", inviter)
    page = browser()
    sign_in_with_link(page, console, without)
    assert offered_roles(page) == []
    expect(page.get_by_role("group", name="Roles (Optional)")).to_contain_text("needs the “Modify roles” permission")

    # Without MODIFY_COMMUNITY the invite list is refused: the API's reason, in words.
    plain = console.user("Pat Plain")
    console.call(plain, invites_pb2_grpc.InvitesStub, "UseInvite", invites_pb2.UseInvite(code=code))
    page = browser()
    sign_in_with_link(page, console, plain)
    expect(page.get_by_role("region", name="Invites").get_by_role("alert")).to_have_text(
        "You need the “Modify community” permission for this.", timeout=WAIT_MS
    )

    with_roles = member("Leo Lead", lead)
    page = browser()
    sign_in_with_link(page, console, with_roles)
    assert sorted(offered_roles(page)) == ["Inviter", "Player"]
    # The server agrees: the offered role can be granted.
    page.get_by_role("checkbox", name="Player").check()
    created = create_invite(page)
    granted = [i for i in list_invites(console, owner, community) if i.code == created]
    assert [r.id for r in granted[0].roles] == [world.player_role]
    assert page.script_errors == []


def test_pasted_token_lives_in_session_storage_and_links_are_single_use(console, browser):
    world = make_world(console, "Token Game")
    bot = console.user("Console Bot", bot=True)
    page = browser()
    page.goto(console.url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=WAIT_MS)

    # The wrong kind is refused in words, then the right one signs in.
    page.get_by_label("Token", exact=True).fill(bot["token"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("did not accept that token", timeout=WAIT_MS)
    page.get_by_label("Bot (sent as Bot token)").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as Console Bot (bot)")).to_be_visible(timeout=WAIT_MS)
    stored = page.evaluate(
        "() => ({session: JSON.stringify(sessionStorage), local: JSON.stringify(localStorage), url: location.href})"
    )
    assert bot["token"] in stored["session"]
    assert bot["token"] not in stored["local"] and bot["token"] not in stored["url"]
    page.reload()
    expect(page.get_by_text("Signed in as Console Bot (bot)")).to_be_visible(timeout=WAIT_MS)

    # A login link works once; the second visit is refused with a clear message and leaves nobody signed in.
    link = console.login_link(world.owner)
    first = browser()
    first.goto(link)
    expect(first.get_by_text(f"Signed in as {world.owner['name']}")).to_be_visible(timeout=WAIT_MS)
    assert first.url == console.url
    token = first.evaluate("() => JSON.parse(sessionStorage.getItem('communities.console.session')).authorization")
    assert token.startswith("Bearer cmt_") and token.split()[1] not in first.url
    assert first.evaluate("() => localStorage.length") == 0

    second = browser()
    second.goto(link)
    alert = second.get_by_role("alert")
    expect(alert).to_contain_text("This login link was already used or has expired", timeout=WAIT_MS)
    assert second.url == console.url
    assert second.evaluate("() => sessionStorage.length") == 0
    expect(second.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(second, "sign-in.png")

    # Signing out forgets the token.
    first.get_by_role("button", name="Sign out").click()
    expect(first.get_by_role("heading", name="Sign in")).to_be_visible()
    assert first.evaluate("() => sessionStorage.length") == 0
    assert page.script_errors == first.script_errors == second.script_errors == []


def test_phone_width(console, browser):
    """At 375 px the create-invite form fits (no horizontal scroll) and works with the keyboard."""
    world = make_world(console, "Phone Game")
    page = browser(PHONE)
    sign_in_with_link(page, console, world.owner)
    form = page.locator("form").first
    expect(form.get_by_role("checkbox", name="Player")).to_be_visible(timeout=WAIT_MS)

    def assert_fits():
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1] == PHONE["width"], widths
        for control in form.locator("input, select, button").all():
            box = control.bounding_box()
            if box is not None:
                assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box

    assert_fits()
    # Keyboard only: tick the role with Space, submit with Enter.
    form.get_by_role("checkbox", name="Player").focus()
    page.keyboard.press("Space")
    expect(form.get_by_role("checkbox", name="Player")).to_be_checked()
    form.get_by_role("button", name="Create invite").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#created-code")).to_have_value(re.compile(r"\S{8,}"), timeout=WAIT_MS)
    assert_fits()
    (invite,) = list_invites(console, world.owner, world.community_id)
    assert [r.id for r in invite.roles] == [world.player_role]
    screenshot(page, "phone.png")
    assert page.script_errors == []


@dataclass
class Restartable:
    """A server of the test's own (so that the test may stop and restart it), its console and a world in it."""

    server: object
    console: Console
    world: World
    listen: str
    console_listen: str
    database: str

    def restart(self) -> None:
        self.server.stop()
        self.server = self.console.e2e.server(
            "--console-listen", self.console_listen, listen=self.listen, database=self.database
        )


def restartable(e2e, name: str) -> Restartable:
    database = e2e.sqlite_url(name.lower().replace(" ", "-"))
    grpc_listen, console_listen = address(), address()
    server = e2e.server(
        "--console-listen", console_listen, "--grace-seconds", "1", listen=grpc_listen, database=database
    )
    server.wait_for_log("console at")
    console = Console(e2e, grpc_listen, f"http://{console_listen}/", database)
    return Restartable(server, console, make_world(console, name), grpc_listen, console_listen, database)


def test_live_list_resumes_with_its_cursor_after_the_stream_drops(e2e, browser):
    """The server restarts; while the page cannot reach it a player joins; when it can, the page resubscribes with
    its last cursor and shows that join (missed, not live)."""
    setup = restartable(e2e, "Restart Game")
    console, world = setup.console, setup.world
    code = console.call(
        world.owner,
        invites_pb2_grpc.InvitesStub,
        "CreateInvite",
        invites_pb2.CreateInvite(channel_id=world.channel_id, role_ids=[world.player_role]),
    ).code
    page = browser()
    sign_in_with_link(page, console, world.owner)
    wait_live(page)
    expect(page.locator("#who-joined")).to_be_visible(timeout=WAIT_MS)  # the page has loaded

    subscribe_bodies: list[bytes] = []
    blocked = [True]

    def subscribe(route):
        if blocked[0]:
            route.abort()
        else:
            subscribe_bodies.append(route.request.post_data_buffer or b"")
            route.continue_()

    page.route("**/communities.v1.Updates/Subscribe", subscribe)
    setup.restart()
    expect(page.get_by_role("status", name="Live updates: Reconnecting…")).to_be_visible(timeout=WAIT_MS)
    player = console.user("Cy Player")
    console.call(player, invites_pb2_grpc.InvitesStub, "UseInvite", invites_pb2.UseInvite(code=code))
    page.wait_for_timeout(1000)
    expect(page.locator("#who-joined")).not_to_contain_text("Cy Player")

    blocked[0] = False
    expect(page.locator("#who-joined")).to_contain_text("Cy Player", timeout=30_000)
    wait_live(page)
    # Connect's envelope (5 bytes) around Subscribe: a non-empty cursor is field 1, tag 0x0a.
    assert subscribe_bodies and subscribe_bodies[0][5:6] == b"\x0a", subscribe_bodies
    assert page.script_errors == []


def test_what_failed_to_load_during_an_outage_loads_again_when_live(e2e, browser):
    """A load that fails while the server is away (here: a channel change's reload, its GetChannels cut) shows the
    error; once the stream is live again after the server restarts, the page loads it again by itself."""
    setup = restartable(e2e, "Outage Game")
    console, world = setup.console, setup.world
    page = browser()
    sign_in_with_link(page, console, world.owner)
    wait_live(page)
    expect(page.locator("#who-joined")).to_be_visible(timeout=WAIT_MS)

    page.route("**/communities.v1.Channels/GetChannels", lambda route: route.abort())
    console.call(
        world.owner,
        channels_pb2_grpc.ChannelsStub,
        "CreateChannel",
        channels_pb2.CreateChannel(community_id=world.community_id, name="after-the-storm"),
    )
    expect(page.get_by_role("alert")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#who-joined")).to_have_count(0)

    page.unroute("**/communities.v1.Channels/GetChannels")
    setup.restart()
    expect(page.locator("#who-joined")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Channel")).to_contain_text("after-the-storm", timeout=WAIT_MS)
    expect(page.get_by_role("alert")).to_have_count(0)
    wait_live(page)
