"""Helpers for the end-to-end tests: the real `communities` console script and grpcurl as subprocesses.

Every process started here runs in its own session (process group) so that a timeout can kill it together with
anything it started; the `e2e` fixture (conftest.py) stops whatever is still running at the end of a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from communities.cli import CLI_WORKER_IDS
from communities.domain import snowflake
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
COMMUNITIES = str(BIN / "communities")
GRPCURL = str(BIN / "grpcurl")

# What the server and CLI read from the environment; cleared so a developer's shell does not leak into tests.
SETTINGS_ENV = (
    "COMMUNITIES_LISTEN",
    "COMMUNITIES_DATABASE",
    "COMMUNITIES_WORKER_ID",
    "COMMUNITIES_GRACE_SECONDS",
    "COMMUNITIES_LOG_LEVEL",
    "COMMUNITIES_MAX_RECEIVE_BYTES",
    "COMMUNITIES_MAX_SEND_BYTES",
    "COMMUNITIES_DB_POOL_SIZE",
    "COMMUNITIES_MEDIA_DIR",
    "COMMUNITIES_EVENT_RETENTION_SECONDS",
    "COMMUNITIES_TEMPORARY_GRACE_SECONDS",
    "COMMUNITIES_JWT_KEYS",
    "COMMUNITIES_JWT_LEEWAY_SECONDS",
    "COMMUNITIES_JWT_AUDIENCE",
    "COMMUNITIES_TLS_CERT",
    "COMMUNITIES_TLS_KEY",
    "COMMUNITIES_TLS_CLIENT_CA",
    "COMMUNITIES_METRICS_LISTEN",
    "COMMUNITIES_CONSOLE",
    "COMMUNITIES_CONSOLE_LISTEN",
)
# What tests run with unless they say otherwise: every server serves its web console on a free port, so that
# servers started together (or a developer's own on 8080) never collide.
TEST_ENV = {"COMMUNITIES_CONSOLE_LISTEN": "127.0.0.1:0"}

# grpcurl exits with 64 + the gRPC status code when the call fails.
GRPCURL_STATUS_OFFSET = 64
UNAUTHENTICATED_EXIT = GRPCURL_STATUS_OFFSET + grpc.StatusCode.UNAUTHENTICATED.value[0]

# The worker ids the operator CLI leases for the snowflakes it mints (servers use the ones below).
CLI_WORKERS = CLI_WORKER_IDS

TOKEN_RE = re.compile(r"cmt_[A-Za-z0-9_-]{20,}")
SNOWFLAKE_RE = re.compile(r"[1-9][0-9]{14,19}")


def clean_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_ENV}
    env.update(TEST_ENV)
    env.update(overrides)
    return env


def address() -> str:
    return f"127.0.0.1:{free_port()}"


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def ok(self) -> Result:
        assert self.returncode == 0, self.describe()
        return self

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as error:
            raise AssertionError(f"stdout is not JSON ({error}):\n{self.describe()}") from None


def run(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 30, cwd: Path = ROOT, stdin: str = ""
) -> Result:
    """Run a command to completion; on timeout kill its whole process group and fail."""
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"timed out after {timeout}s: {' '.join(args)}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ) from None
    return Result(list(args), process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@dataclass
class ServerProcess:
    """`communities serve ...` as a subprocess, its stdout/stderr going to files (no pipe to fill up)."""

    args: list[str]
    env: dict[str, str]
    address: str
    log_dir: Path
    process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stdout = open(self.log_dir / "stdout", "w+b")
        self._stderr = open(self.log_dir / "stderr", "w+b")
        self.process = subprocess.Popen(
            [COMMUNITIES, "serve", *self.args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stdout(self) -> str:
        return (self.log_dir / "stdout").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.log_dir / "stderr").read_text(errors="replace")

    def output(self) -> str:
        return self.stdout() + self.stderr()

    def describe(self) -> str:
        code = self.process.poll() if self.process else None
        return f"server {' '.join(self.args)} (exit {code})\n--- stdout\n{self.stdout()}\n--- stderr\n{self.stderr()}"

    def poll(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def wait(self, timeout: float) -> int:
        """The exit code; fails (and kills the server) when it does not exit in time."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.process)
            raise AssertionError(f"server did not exit within {timeout}s\n{self.describe()}") from None

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_ready(self, timeout: float = 30, *, logged: bool = True) -> ServerProcess:
        """Until the health check answers SERVING and (`logged`) the server logged that it serves: its signal
        handlers are installed right after that line, not yet when health first answers."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                raise AssertionError(f"server exited with {code} before it was ready\n{self.describe()}")
            if health_status(self.address, timeout=0.5) == health_pb2.HealthCheckResponse.SERVING and (
                not logged or "serving communities.v1 on" in self.stderr()
            ):
                if not logged:
                    time.sleep(0.3)  # no log line to wait for: give the signal handlers time to be installed
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready within {timeout}s\n{self.describe()}")
            time.sleep(0.05)

    def wait_for_log(self, text: str, timeout: float = 10) -> float:
        """Until `text` is in the server's stderr; returns when (time.monotonic()) it was seen."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout}s\n{self.describe()}")
            time.sleep(0.02)
        return time.monotonic()

    def stop(self) -> None:
        """Finalizer: SIGTERM, then SIGKILL (the whole group) when it does not go within 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                _kill_group(self.process)
        for handle in (getattr(self, "_stdout", None), getattr(self, "_stderr", None)):
            if handle is not None:
                handle.close()

    def call_log_lines(self, method: str) -> list[str]:
        return [line for line in self.stderr().splitlines() if f" {method} " in line]


def health_status(address: str, timeout: float = 1) -> int | None:
    """The overall health status, or None when the server does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
        return answer.status


def grpcurl(
    address: str,
    method: str | None = None,
    *,
    data: dict | str | None = None,
    authorization: str | None = None,
    extra: list[str] | None = None,
    timeout: float = 20,
) -> Result:
    args = [GRPCURL, "-plaintext", *(extra or [])]
    if authorization is not None:
        args += ["-H", f"authorization: {authorization}"]
    if data is not None:
        args += ["-d", data if isinstance(data, str) else json.dumps(data)]
    args.append(address)
    args += [method] if method else ["list"]
    return run(args, timeout=timeout)


def check_snowflake(value: str, *, since_ms: int | None = None) -> int:
    """A decimal-string snowflake made (by the wall clock) after `since_ms` and not in the future."""
    assert isinstance(value, str) and SNOWFLAKE_RE.fullmatch(value), f"not a snowflake id: {value!r}"
    number = int(value)
    assert number < 1 << 64, value
    created_ms = snowflake.decode(number).timestamp_ms + snowflake.EPOCH_MS
    now_ms = time.time_ns() // 1_000_000
    assert created_ms <= now_ms + 5_000, f"snowflake {value} is from the future"
    if since_ms is not None:
        assert created_ms >= since_ms - 5_000, f"snowflake {value} is older than the test"
    return number


def worker_of(value: str) -> int:
    return snowflake.decode(int(value)).worker


def create_user_in_process(database: str, name: str, *, bot: bool) -> dict:
    """What `communities users create NAME [--bot] --json` prints, made in this process by the CLI's own code
    (its `_with_app`: same database preparation, worker id and services) without a process start."""
    from communities.cli import _with_app
    from communities.config import Settings
    from communities.services import users

    credentials = asyncio.run(_with_app(Settings(database=database), lambda app: users.create_user(app, name, bot=bot)))
    user = credentials.user
    return {"id": str(user.id), "name": user.name, "bot": user.bot, "token": credentials.token}
