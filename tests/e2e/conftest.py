"""The `e2e` fixture: starts real `communities serve` processes and runs the real CLI and grpcurl.

Every server started through it is stopped at the end of the test (SIGTERM, then SIGKILL), and its whole output
is checked for every token the test saw: no secret is ever logged.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    COMMUNITIES,
    TOKEN_RE,
    Result,
    ServerProcess,
    address,
    clean_env,
    create_user_in_process,
    run,
)


class E2E:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.servers: list[ServerProcess] = []
        self.secrets: set[str] = set()
        self.started_ms = time.time_ns() // 1_000_000
        self._databases = 0

    def sqlite_url(self, name: str | None = None) -> str:
        self._databases += 1
        return f"sqlite:///{self.tmp_path}/{name or f'db{self._databases}'}.sqlite"

    def server(
        self,
        *args: str,
        database: str | None,
        listen: str | None = None,
        env: dict[str, str] | None = None,
        ready: bool = True,
    ) -> ServerProcess:
        """`communities serve [--listen listen] args...` with COMMUNITIES_DATABASE=database (when given)."""
        overrides = dict(env or {})
        if database is not None:
            overrides["COMMUNITIES_DATABASE"] = database
        if listen is None and "COMMUNITIES_LISTEN" in overrides:
            listen, full_args = overrides["COMMUNITIES_LISTEN"], list(args)  # the environment says where
        else:
            listen = listen or address()
            full_args = ["--listen", listen, *args]
        server = ServerProcess(
            args=full_args,
            env=clean_env(**overrides),
            address=listen,
            log_dir=self.tmp_path / f"server{len(self.servers)}",
        )
        self.servers.append(server)
        server.start()
        if ready:
            server.wait_ready()
        return server

    def cli(self, *args: str, database: str | None, env: dict[str, str] | None = None, timeout: float = 30) -> Result:
        """The operator CLI; every token it prints is remembered as a secret."""
        overrides = dict(env or {})
        if database is not None:
            overrides["COMMUNITIES_DATABASE"] = database
        result = run([COMMUNITIES, *args], env=clean_env(**overrides), timeout=timeout)
        self.secrets.update(TOKEN_RE.findall(result.stdout))
        for secret in self.secrets:
            assert secret not in result.stderr, f"a token was printed on stderr:\n{result.describe()}"
        return result

    def create_user(self, name: str, *, database: str, bot: bool = False) -> dict:
        result = self.cli("users", "create", name, *(["--bot"] if bot else []), "--json", database=database).ok()
        return result.json()

    def user_in_process(self, name: str, *, database: str, bot: bool = False) -> dict:
        """Like `create_user`, through the same service code as the CLI but without a ~1 s process start: for
        tests about something else than the CLI."""
        user = create_user_in_process(database, name, bot=bot)
        self.secrets.add(user["token"])
        return user

    def assert_no_secret_logged(self) -> None:
        for server in self.servers:
            output = server.output()
            for secret in self.secrets:
                assert secret not in output, f"a token appears in the server's output:\n{server.describe()}"

    def close(self) -> None:
        for server in self.servers:
            server.stop()


def _harness(path: Path):
    harness = E2E(path)
    try:
        yield harness
    finally:
        harness.close()
    harness.assert_no_secret_logged()


@pytest.fixture
def e2e(tmp_path):
    yield from _harness(tmp_path)


@pytest.fixture(scope="module")
def e2e_module(tmp_path_factory):
    """One harness (and whatever servers it starts) for a whole module."""
    yield from _harness(tmp_path_factory.mktemp("e2e"))
