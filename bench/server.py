"""The server under test: `communities serve` as a subprocess on 127.0.0.1, principals made with the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

HOST = "127.0.0.1"
PROJECT_DIR = Path(__file__).resolve().parent.parent
PROBLEM_MARKERS = (" ERROR ", " CRITICAL ", "Traceback (most recent call last)")


class ServerFailed(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    bot: bool
    token: str

    @property
    def authorization(self) -> str:
        return f"{'Bot' if self.bot else 'Bearer'} {self.token}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", self.authorization),)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class BenchServer:
    """Start with `await start()`, always `await stop()` (also after a failed start)."""

    def __init__(
        self,
        database: str,
        workdir: Path,
        *,
        log_level: str = "WARNING",
        grace_seconds: float = 5.0,
        source: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        """`source`: run server and CLI from this source tree (its src/ and generated/) instead of the installed
        package, e.g. an exported revision. `extra_env`: more environment for the server and the CLI (a
        PYTHONPATH there goes in front of the source tree's)."""
        self.database = database
        self.source = source
        self.extra_env = dict(extra_env or {})
        self.workdir = workdir
        self.log_level = log_level
        self.grace_seconds = grace_seconds
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.log_path = workdir / "server.log"
        self.exit_code: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._ps: psutil.Process | None = None

    # ------------------------------------------------------------------------------------------- commands

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("COMMUNITIES_")}
        env["COMMUNITIES_LOG_LEVEL"] = self.log_level
        env["COMMUNITIES_CONSOLE"] = "off"  # the web console is not measured, and its fixed port may be taken
        paths = [self.extra_env["PYTHONPATH"]] if self.extra_env.get("PYTHONPATH") else []
        if self.source is not None:
            paths += [str(self.source / part) for part in ("src", "generated")]
        env.update(self.extra_env)
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    @staticmethod
    def _command(*args: str) -> list[str]:
        """The venv's `communities` command (same interpreter as the bench, no wrapper process)."""
        return [sys.executable, "-m", "communities.cli", *args]

    async def _cli(self, *args: str) -> str:
        env = self._env()
        env["COMMUNITIES_LOG_LEVEL"] = "WARNING"
        process = await asyncio.create_subprocess_exec(
            *self._command(*args, "--database", self.database),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=self.workdir,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise ServerFailed(f"`communities {' '.join(args)}` exited {process.returncode}: {err.decode().strip()}")
        return out.decode()

    async def create_principal(self, name: str, *, bot: bool) -> Principal:
        args = ["users", "create", name, "--json"] + (["--bot"] if bot else [])
        made = json.loads((await self._cli(*args)).strip().splitlines()[-1])
        return Principal(id=made["id"], name=made["name"], bot=made["bot"], token=made["token"])

    async def create_people(self, count: int, out: Path, prefix: str = "bench user") -> list[str]:
        """`count` new people made in one process (bench/bulk_users.py); their `authorization` values."""
        env = self._env()
        env["COMMUNITIES_LOG_LEVEL"] = "WARNING"
        # `bench` itself comes from this checkout, after the server's source tree (which may be a revision's).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(PROJECT_DIR)]))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bulk_users", self.database, str(count), str(out), prefix,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=self.workdir,
        )  # fmt: skip
        _, err = await process.communicate()
        if process.returncode != 0:
            raise ServerFailed(f"bench.bulk_users exited {process.returncode}: {err.decode().strip()}")
        made = (await asyncio.to_thread(out.read_text)).split("\n")
        return [line for line in made if line]

    # -------------------------------------------------------------------------------------------- lifecycle

    async def start(self, ready_timeout: float = 60.0) -> None:
        if not is_sqlite(self.database):
            await self._cli("migrate")  # a fresh SQLite file is migrated by `serve` itself
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self._process = await asyncio.create_subprocess_exec(
                *self._command(
                    "serve",
                    "--listen",
                    self.address,
                    "--database",
                    self.database,
                    "--grace-seconds",
                    str(self.grace_seconds),
                ),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
            )
        self._ps = psutil.Process(self._process.pid)
        await self._wait_serving(ready_timeout)

    async def _wait_serving(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise ServerFailed(f"server exited {self._process.returncode} on start:\n{self.log_tail()}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                if time.monotonic() > deadline:
                    raise ServerFailed(f"server not serving after {within_s:.0f}s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def stop(self) -> int | None:
        """SIGTERM, then wait for the graceful stop; SIGKILL if it does not come. Returns the exit code."""
        process = self._process
        if process is None or process.returncode is not None:
            self.exit_code = process.returncode if process else None
            return self.exit_code
        process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = await asyncio.wait_for(process.wait(), self.grace_seconds + 10)
        except TimeoutError:
            process.kill()
            await process.wait()
            self.exit_code = None  # did not stop on SIGTERM
        return self.exit_code

    # --------------------------------------------------------------------------------------------- readings

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads) so far."""
        assert self._ps is not None
        try:
            times = self._ps.cpu_times()
        except psutil.NoSuchProcess:
            raise ServerFailed(f"the server exited during the measurement:\n{self.log_tail()}") from None
        return times.user + times.system

    def rss_bytes(self) -> int:
        assert self._ps is not None
        return self._ps.memory_info().rss

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_problems(self, keep: int = 20) -> tuple[int, list[str]]:
        """How many log lines look like errors, and the first few of them."""
        count, first = 0, []
        try:
            with self.log_path.open(errors="replace") as log:
                for line in log:
                    if any(marker in line for marker in PROBLEM_MARKERS):
                        count += 1
                        if len(first) < keep:
                            first.append(line.rstrip())
        except OSError:
            pass
        return count, first
