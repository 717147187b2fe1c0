"""Reading rich errors the way a client does (grpc_status.rpc_status.from_call)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def details(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo | None, error_details_pb2.BadRequest | None]:
    status = rpc_status.from_call(error)
    info = bad_request = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
    return info, bad_request


def assert_error(
    error: grpc.RpcError,
    code: grpc.StatusCode,
    reason: str,
    *,
    field: str | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    assert error.code() == code, f"expected {code}, got {error.code()}: {error.details()}"
    info, bad_request = details(error)
    assert info is not None, "every error carries google.rpc.ErrorInfo"
    assert info.domain == "communities.v1"
    assert info.reason == reason, f"expected reason {reason}, got {info.reason}: {error.details()}"
    if metadata:
        for key, value in metadata.items():
            assert info.metadata.get(key) == value, dict(info.metadata)
    if field is not None:
        assert bad_request is not None, "field errors carry google.rpc.BadRequest"
        assert field in [violation.field for violation in bad_request.field_violations]
