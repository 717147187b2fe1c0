"""The one place where errors become google.rpc.Status: a code, a message, ErrorInfo, and BadRequest for fields."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from communities.domain.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    LimitReached,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

DOMAIN = "communities.v1"

_CODES: dict[type[DomainError], grpc.StatusCode] = {
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    LimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def code_of(error: DomainError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _CODES:
            return _CODES[kind]
    return grpc.StatusCode.INTERNAL


def _packed(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: dict[str, str] | None = None,
    violations: list[tuple[str, str]] | None = None,
) -> grpc.Status:
    details = [_packed(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))]
    if violations:
        details.append(
            _packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
                        for field, description in violations
                    ]
                )
            )
        )
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=details))


def from_domain(error: DomainError) -> tuple[grpc.StatusCode, grpc.Status]:
    code = code_of(error)
    violations = None
    if isinstance(error, InvalidArgument):
        violations = [(v.field, v.description) for v in error.violations]
    return code, status(code, error.message, error.reason, error.metadata, violations)


def unavailable(message: str) -> grpc.Status:
    return status(grpc.StatusCode.UNAVAILABLE, message, "UNAVAILABLE")


def internal() -> grpc.Status:
    return status(grpc.StatusCode.INTERNAL, "Internal error; it has been logged", "INTERNAL")


assert code_pb2.OK == 0  # google.rpc codes and grpc.StatusCode share numbers
