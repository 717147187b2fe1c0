"""The interceptor every call goes through: authentication, the principal for the servicer, the one error
mapping, and one log line per call (method, principal, status, duration). Secrets are never logged."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable

import grpc

from communities.api import errors
from communities.domain.errors import DomainError, InvalidArgument
from communities.services import users as users_service
from communities.services.context import App, Principal
from communities.storage.database import StorageUnavailable

log = logging.getLogger("communities.calls")

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")

# Methods anyone may call without a token.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def current_principal() -> Principal:
    """The authenticated caller of the current RPC."""
    return _principal.get()


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so that the call is authenticated first and then
    answered INVALID_ARGUMENT with ErrorInfo (grpc itself would answer UNKNOWN with the parser's words)."""

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserializer):
    if deserializer is None:
        return None

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception as error:  # DecodeError, or invalid UTF-8 in a string field
            return _Undecodable(error)

    return deserialize


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value
    return None


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, app: App):
        self._app = app
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrap(method, handler)
            self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        public = method.startswith(PUBLIC_PREFIXES)
        app = self._app

        async def begin(context) -> Principal | None:
            if public:
                return None
            principal = await users_service.authenticate(app, _authorization(context))
            _principal.set(principal)
            return principal

        async def fail(context, error: BaseException) -> None:
            """Abort the call with the status for `error` (raises grpc.aio.AbortError)."""
            if isinstance(error, DomainError):
                _, status = errors.from_domain(error)
            elif isinstance(error, StorageUnavailable):
                status = errors.unavailable("The database is busy or unreachable; retry")
            else:
                log.error("unhandled error in %s", method, exc_info=error)
                status = errors.internal()
            await context.abort_with_status(status)

        def done(started: float, principal: Principal | None, code: grpc.StatusCode | str) -> None:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s principal=%s status=%s duration_ms=%.2f",
                    method,
                    principal.describe() if principal else "-",
                    code.name if isinstance(code, grpc.StatusCode) else code,
                    (time.perf_counter() - started) * 1000,
                )

        def outcome(context, error: BaseException | None) -> grpc.StatusCode | str:
            if error is None:
                return grpc.StatusCode.OK
            if isinstance(error, DomainError):
                return errors.code_of(error)
            if isinstance(error, StorageUnavailable):
                return grpc.StatusCode.UNAVAILABLE
            code = context.code() if hasattr(context, "code") else None
            return code if isinstance(code, grpc.StatusCode) else type(error).__name__

        if handler.unary_unary:
            behavior = handler.unary_unary

            async def unary_unary(request, context):
                started, principal, error = time.perf_counter(), None, None
                try:
                    principal = await begin(context)
                    if isinstance(request, _Undecodable):
                        raise InvalidArgument.field("request", "the request message could not be parsed")
                    return await behavior(request, context)
                except (DomainError, StorageUnavailable) as exc:
                    error = exc
                    await fail(context, exc)
                except grpc.aio.AbortError as exc:
                    error = exc
                    raise
                except Exception as exc:
                    error = exc
                    await fail(context, exc)
                finally:
                    done(started, principal, outcome(context, error))

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, _tolerant(handler.request_deserializer), handler.response_serializer
            )

        if handler.unary_stream or handler.stream_stream:
            behavior = handler.unary_stream or handler.stream_stream

            async def streaming(request_or_iterator, context):
                started, principal, error = time.perf_counter(), None, None
                try:
                    principal = await begin(context)
                    async for response in behavior(request_or_iterator, context):
                        yield response
                except (DomainError, StorageUnavailable) as exc:
                    error = exc
                    await fail(context, exc)
                except grpc.aio.AbortError as exc:
                    error = exc
                    raise
                except Exception as exc:
                    error = exc
                    await fail(context, exc)
                finally:
                    done(started, principal, outcome(context, error))

            factory: Callable = (
                grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
            )
            return factory(streaming, handler.request_deserializer, handler.response_serializer)

        # No client-streaming method exists; refuse to serve one that would skip authentication.
        raise RuntimeError(f"unsupported method shape for {method}")
