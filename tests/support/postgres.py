"""A throwaway PostgreSQL server for the test session.

Uses COMMUNITIES_TEST_POSTGRES_URL (a server URL whose user may CREATE DATABASE) when set; otherwise runs initdb
into a temporary directory and starts postgres on a free loopback port (as the `postgres` user when running as
root, since PostgreSQL refuses to run as root), and stops it at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager

import asyncpg


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bindir() -> str:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL (Debian: apt-get install "
        "postgresql) or set COMMUNITIES_TEST_POSTGRES_URL to a server the tests may create databases on"
    )


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server():
    """Yields a server URL like postgresql://postgres@127.0.0.1:PORT (no database part)."""
    url = os.environ.get("COMMUNITIES_TEST_POSTGRES_URL")
    if url:
        yield url.rstrip("/")
        return
    bindir = _bindir()
    workdir = tempfile.mkdtemp(prefix="communities-pg-")
    datadir = os.path.join(workdir, "data")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_owner([f"{bindir}/initdb", "-D", datadir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = (
        f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_owner([f"{bindir}/pg_ctl", "-D", datadir, "-o", options, "-l", f"{workdir}/log", "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_owner([f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)


async def create_database(server_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    connection = await asyncpg.connect(server_url + "/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{server_url}/{name}"
