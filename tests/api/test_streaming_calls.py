"""Streaming methods go through the same interceptor as unary ones: they work (health Watch writes its answers
with context.write, reflection yields them), and bytes that do not parse answer INVALID_ARGUMENT with ErrorInfo,
never INTERNAL or UNKNOWN."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from tests.support.errors import assert_error

# HealthCheckRequest{service = ...} (field 1) with bytes that are not UTF-8: a stray 0xff, and a lone surrogate
# (U+D800 as CESU-8 bytes, which UTF-8 forbids).
BAD_UTF8 = b"\x0a\x02\xff\xfe"
LONE_SURROGATE = b"\x0a\x03\xed\xa0\x80"
# A length prefix running past the end, and a field numbered 0.
TRUNCATED = b"\x0a\x10abc"
CORRUPT = b"\x00\x01"
UNDECODABLE = [BAD_UTF8, LONE_SURROGATE, TRUNCATED, CORRUPT]
UNDECODABLE_IDS = ["bad utf-8", "lone surrogate", "truncated", "field 0"]

REFLECTION_METHODS = [
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
]


def _identity(body: bytes) -> bytes:
    return body


def test_health_watch_streams_the_status(grpc_channel):
    """Watch answers with the current status and keeps the stream open (it used to fail with INTERNAL)."""
    watch = health_pb2_grpc.HealthStub(grpc_channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=2)
    first = next(watch)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    named = health_pb2_grpc.HealthStub(grpc_channel).Watch(
        health_pb2.HealthCheckRequest(service="communities.v1.Communities"), timeout=2
    )
    assert next(named).status == health_pb2.HealthCheckResponse.SERVING
    unknown = health_pb2_grpc.HealthStub(grpc_channel).Watch(
        health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=2
    )
    assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    for stream in (watch, named, unknown):
        stream.cancel()


@pytest.mark.parametrize("body", UNDECODABLE, ids=UNDECODABLE_IDS)
def test_health_watch_with_undecodable_bytes(grpc_channel, body):
    watch = grpc_channel.unary_stream(
        "/grpc.health.v1.Health/Watch", request_serializer=_identity, response_deserializer=_identity
    )
    with pytest.raises(grpc.RpcError) as raised:
        list(watch(body, timeout=5))
    assert_error(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="request")


@pytest.mark.parametrize("body", UNDECODABLE, ids=UNDECODABLE_IDS)
def test_health_check_with_undecodable_bytes(grpc_channel, body):
    check = grpc_channel.unary_unary(
        "/grpc.health.v1.Health/Check", request_serializer=_identity, response_deserializer=_identity
    )
    with pytest.raises(grpc.RpcError) as raised:
        check(body, timeout=5)
    assert_error(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="request")


@pytest.mark.parametrize("method", REFLECTION_METHODS, ids=["v1alpha", "v1"])
@pytest.mark.parametrize("body", UNDECODABLE, ids=UNDECODABLE_IDS)
def test_reflection_with_undecodable_bytes(grpc_channel, method, body):
    """A good request first (answered), then bytes that do not parse: the stream ends INVALID_ARGUMENT."""
    info = grpc_channel.stream_stream(method, request_serializer=_identity, response_deserializer=_identity)
    good = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    answers = info(iter([good, body]), timeout=5)
    first = reflection_pb2.ServerReflectionResponse.FromString(next(answers))
    assert "communities.v1.Communities" in [service.name for service in first.list_services_response.service]
    with pytest.raises(grpc.RpcError) as raised:
        list(answers)
    assert_error(raised.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field="request")


@pytest.mark.parametrize("method", REFLECTION_METHODS, ids=["v1alpha", "v1"])
def test_reflection_answers_odd_but_valid_requests(grpc_channel, method):
    """Valid UTF-8 names that resolve to nothing get reflection's own NOT_FOUND answer inside the stream."""
    info = grpc_channel.stream_stream(method, request_serializer=_identity, response_deserializer=_identity)
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="\u00e9\U0001f600.."),
        reflection_pb2.ServerReflectionRequest(file_by_filename="../../etc/passwd"),
        reflection_pb2.ServerReflectionRequest(),
    ]
    answers = [
        reflection_pb2.ServerReflectionResponse.FromString(raw)
        for raw in info(iter([r.SerializeToString() for r in requests]), timeout=5)
    ]
    assert len(answers) == 3
    assert all(answer.HasField("error_response") for answer in answers), answers
