"""Fixtures for the console tests: the real server with its console on a free loopback port, once on SQLite and
once on PostgreSQL, and a small Connect client over httpx (the protocol as connect-web speaks it)."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from tests.api.conftest import Db
from tests.e2e.conftest import _harness
from tests.support.postgres import free_port
from tests.support.server import AioServerFacade

END_STREAM = 0x02


@pytest.fixture(scope="module")
def _grpc_server(database_url):
    """The module's server, with the console on."""
    return AioServerFacade(database_url, console=True)


@pytest.fixture
def e2e(tmp_path):
    """tests/e2e's harness: `communities serve` and the CLI as processes (for test_serve.py)."""
    yield from _harness(tmp_path)


@pytest.fixture(scope="module")
def db(server) -> Db:
    return Db(server)


@pytest.fixture(scope="module")
def console(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.console_url, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def console_replica(server, database_url) -> Iterator[AioServerFacade]:
    """A second server (worker id 1) with its own console, on the module's database."""
    second = AioServerFacade(database_url, worker_id=1, listen=f"127.0.0.1:{free_port()}", console=True)
    second.start()
    yield second
    second.stop()


def authorization(account) -> dict[str, str]:
    return {"authorization": f"{'Bot' if account.bot else 'Bearer'} {account.token}"}


def call_json(client: httpx.Client, method: str, body: dict, headers: dict | None = None) -> httpx.Response:
    """A Connect unary call with the JSON codec: POST /communities.v1.<Service>/<Method>."""
    return client.post(
        f"/communities.v1.{method}",
        content=json.dumps(body),
        headers={"content-type": "application/json", **(headers or {})},
    )


def call_proto(client: httpx.Client, method: str, request, response_class, headers: dict | None = None):
    """A Connect unary call with the proto codec; the decoded answer (fails on an error answer)."""
    answer = client.post(
        f"/communities.v1.{method}",
        content=request.SerializeToString(),
        headers={"content-type": "application/proto", **(headers or {})},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/proto"
    return response_class.FromString(answer.content)


def unpadded_b64decode(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4))


def error_details(body: dict) -> tuple[error_details_pb2.ErrorInfo | None, error_details_pb2.BadRequest | None]:
    """ErrorInfo and BadRequest from a Connect error's details (type + unpadded base64 value)."""
    info = bad_request = None
    for detail in body.get("details", []):
        if detail["type"] == "google.rpc.ErrorInfo":
            info = error_details_pb2.ErrorInfo.FromString(unpadded_b64decode(detail["value"]))
        elif detail["type"] == "google.rpc.BadRequest":
            bad_request = error_details_pb2.BadRequest.FromString(unpadded_b64decode(detail["value"]))
    return info, bad_request


def assert_connect_error(
    answer: httpx.Response, http_status: int, code: str, reason: str, *, field: str | None = None
) -> dict:
    assert answer.status_code == http_status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["code"] == code, body
    assert body["message"], body
    info, bad_request = error_details(body)
    assert info is not None and info.domain == "communities.v1" and info.reason == reason, body
    if field is not None:
        assert bad_request is not None and field in [v.field for v in bad_request.field_violations], body
    return body


def envelope(payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


class ConnectStream:
    """A server-streaming Connect call (application/connect+json), read envelope by envelope."""

    def __init__(self, client: httpx.Client, method: str, body: dict, headers: dict, message_class):
        self._context = client.stream(
            "POST",
            f"/communities.v1.{method}",
            content=envelope(json.dumps(body).encode()),
            headers={"content-type": "application/connect+json", **headers},
        )
        self.response = self._context.__enter__()
        self._chunks = self.response.iter_raw()
        self._buffer = b""
        self.message_class = message_class
        self.end: dict | None = None  # the end-of-stream message, once read

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += next(self._chunks)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def next(self):
        """The next message, or None when the stream ended (self.end then holds the end-of-stream JSON)."""
        flags, length = struct.unpack(">BI", self._read(5))
        payload = self._read(length)
        if flags & END_STREAM:
            self.end = json.loads(payload)
            return None
        return json_format.Parse(payload, self.message_class())

    def close(self) -> None:
        self._context.__exit__(None, None, None)

    def __enter__(self) -> ConnectStream:
        assert self.response.status_code == 200, self.response.read()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
