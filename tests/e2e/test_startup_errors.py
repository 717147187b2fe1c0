"""`communities serve` that cannot start says so in one line (what failed, how to fix it) and exits non-zero:
no Python traceback, no bare errno, no password."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.helpers import address

pytestmark = pytest.mark.e2e


def assert_one_line_error(result, *phrases: str) -> None:
    assert result.returncode != 0, result.describe()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("error: "), result.describe()
    assert "Traceback" not in result.stderr and "Errno" not in lines[0].split("(", 1)[0], result.describe()
    for phrase in phrases:
        assert phrase in lines[0], result.describe()


def test_listen_without_a_host(e2e):
    result = e2e.cli("serve", "--listen", "50051", database=e2e.sqlite_url())
    assert_one_line_error(result, "HOST:PORT", "127.0.0.1:50051", "'50051'")


def test_port_in_use(e2e):
    taken = address()
    host, port = taken.rsplit(":", 1)
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        result = e2e.cli("serve", "--listen", taken, database=e2e.sqlite_url())
    assert_one_line_error(result, f"cannot listen on {taken}", "in use", "--listen")


def test_unreachable_postgresql(e2e):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = f"postgresql://game:s3cret-pw@127.0.0.1:{port}/communities"
    for command in (["serve", "--listen", address()], ["migrate"]):
        result = e2e.cli(*command, database=database)
        assert_one_line_error(result, "cannot open the database", "PostgreSQL running", "--database")
        assert "s3cret-pw" not in result.stderr, result.describe()
