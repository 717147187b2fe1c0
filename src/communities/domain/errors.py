"""Domain errors: what went wrong, in the words of API.md's error table. api/errors.py turns them into
google.rpc.Status; nothing here knows about gRPC."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base class. `reason` is the ErrorInfo reason, `metadata` its metadata."""

    reason: str = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})


class Unauthenticated(DomainError):
    reason = "UNAUTHENTICATED"


class NotFound(DomainError):
    """Unknown, or invisible to the caller: both look the same from outside."""

    @classmethod
    def of(cls, kind: str, message: str | None = None) -> NotFound:
        # kind: COMMUNITY, CHANNEL, ROLE, MEMBER, INVITE, USER, FILE
        return cls(message or f"Unknown {kind.lower()}", reason=f"UNKNOWN_{kind}")


class PermissionDenied(DomainError):
    reason = "MISSING_PERMISSIONS"

    @classmethod
    def missing(cls, permission_name: str) -> PermissionDenied:
        return cls(
            f"Missing permission {permission_name}",
            reason="MISSING_PERMISSIONS",
            metadata={"permission": permission_name},
        )

    @classmethod
    def hierarchy(cls, message: str) -> PermissionDenied:
        return cls(message, reason="ROLE_HIERARCHY")


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(DomainError):
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str | None = None):
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = violations
        text = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(text)

    @classmethod
    def field(cls, field_name: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field_name, description))


class FailedPrecondition(DomainError):
    """The request is well formed but the state forbids it. Always give a specific reason."""


class LimitReached(DomainError):
    reason = "LIMIT_REACHED"

    def __init__(self, limit: str, maximum: int, message: str | None = None):
        super().__init__(
            message or f"Limit reached: {limit} ({maximum})",
            metadata={"limit": limit, "max": str(maximum)},
        )
