"""`communities serve` with its console, as a process: the console's URL in the log, `--no-console` and
COMMUNITIES_CONSOLE=off serving no HTTP, start-up errors in one line, `console-link` end to end, and a graceful
stop that ends the streams open through the console."""

from __future__ import annotations

import re
import signal
import socket

import httpx
import pytest

from communities.v1 import updates_pb2
from tests.e2e.helpers import address
from tests.e2e.test_startup_errors import assert_one_line_error
from tests.web.conftest import ConnectStream

pytestmark = pytest.mark.e2e

CONSOLE_URL = re.compile(r"console at (http://127\.0\.0\.1:\d+/)")


def console_url(server) -> str:
    server.wait_for_log("console at ")
    return CONSOLE_URL.search(server.stderr()).group(1)


def refused(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_console_on_a_free_port_and_console_link(e2e):
    database = e2e.sqlite_url()
    server = e2e.server(database=database)
    url = console_url(server)
    assert httpx.get(url).status_code == 200

    user = e2e.create_user("Manager", database=database)
    result = e2e.cli("console-link", user["id"], "--console-url", url, database=database).ok()
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{url}#login="), result.describe()
    code = lines[0].split("#login=", 1)[1]
    session = httpx.post(f"{url}console/login", json={"code": code})
    assert session.status_code == 200 and session.json()["user_id"] == user["id"], session.text
    e2e.secrets.update([code, session.json()["token"]])
    assert httpx.post(f"{url}console/login", json={"code": code}).status_code == 401
    me = httpx.post(
        f"{url}communities.v1.Users/GetSelf",
        content=b"{}",
        headers={"content-type": "application/json", "authorization": f"Bearer {session.json()['token']}"},
    )
    assert me.status_code == 200 and me.json()["name"] == "Manager", me.text


def test_console_link_default_url_and_errors(e2e):
    database = e2e.sqlite_url()
    user = e2e.create_user("Manager", database=database)
    listen = address()
    result = e2e.cli("console-link", user["id"], database=database, env={"COMMUNITIES_CONSOLE_LISTEN": listen}).ok()
    assert re.fullmatch(rf"http://{re.escape(listen)}/#login=[A-Za-z0-9_-]{{40,}}\n", result.stdout), result.describe()
    wildcard = e2e.cli("console-link", user["id"], database=database, env={"COMMUNITIES_CONSOLE_LISTEN": "0.0.0.0:9"})
    assert wildcard.ok().stdout.startswith("http://127.0.0.1:9/#login="), wildcard.describe()
    unknown = e2e.cli("console-link", "12345", "--console-url", "http://127.0.0.1:1/", database=database)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: "), unknown.describe()
    free = e2e.cli("console-link", user["id"], database=database, env={"COMMUNITIES_CONSOLE_LISTEN": "127.0.0.1:0"})
    assert free.returncode == 2 and "--console-url" in free.stderr, free.describe()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_console_serves_no_http(e2e, how):
    listen = address()
    args, env = (["--no-console"], {}) if how == "flag" else ([], {"COMMUNITIES_CONSOLE": "off"})
    server = e2e.server("--console-listen", listen, *args, database=e2e.sqlite_url(), env=env)
    assert "console at" not in server.stderr()
    assert refused(listen)


def test_console_port_in_use_is_one_line(e2e):
    taken = address()
    host, port = taken.rsplit(":", 1)
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        result = e2e.cli("serve", "--listen", address(), "--console-listen", taken, database=e2e.sqlite_url())
    assert_one_line_error(result, f"cannot serve the console on {taken}", "in use", "--no-console", "--console-listen")


@pytest.mark.parametrize("listen", ["8080", "127.0.0.1:http", "127.0.0.1:70000"])
def test_bad_console_listen_is_one_line(e2e, listen):
    result = e2e.cli("serve", "--listen", address(), "--console-listen", listen, database=e2e.sqlite_url())
    assert_one_line_error(result, "--console-listen", "HOST:PORT", repr(listen))


def test_graceful_stop_ends_streams_open_through_the_console(e2e):
    database = e2e.sqlite_url()
    user = e2e.user_in_process("Watcher", database=database)
    server = e2e.server("--grace-seconds", "5", database=database)
    with httpx.Client(base_url=console_url(server).rstrip("/"), timeout=20) as client:
        headers = {"authorization": f"Bearer {user['token']}"}
        with ConnectStream(client, "Updates/Subscribe", {}, headers, updates_pb2.Update) as stream:
            assert stream.next().WhichOneof("event") == "ready"
            server.signal(signal.SIGTERM)
            while stream.next() is not None:
                pass
        assert stream.end["error"]["code"] == "unavailable", stream.end
    assert server.wait(30) == 0, server.describe()
    assert "Traceback" not in server.stderr(), server.describe()


def test_console_switch_must_be_on_or_off(e2e):
    result = e2e.cli("serve", database=e2e.sqlite_url(), env={"COMMUNITIES_CONSOLE": "maybe"})
    assert_one_line_error(result, "COMMUNITIES_CONSOLE must be on or off", "'maybe'")
