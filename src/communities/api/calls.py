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


class _Call:
    """One call, from authentication to its log line; errors raised inside become the call's status."""

    __slots__ = ("_app", "_context", "_method", "_principal", "_public", "_started")

    def __init__(self, app: App, method: str, public: bool, context):
        self._app = app
        self._method = method
        self._public = public
        self._context = context
        self._principal: Principal | None = None

    async def __aenter__(self) -> _Call:
        self._started = time.perf_counter()
        return self

    async def authenticate(self) -> None:
        """Inside the `async with`, so that a refused token is answered like any other error."""
        if not self._public:
            self._principal = await users_service.authenticate(self._app, _authorization(self._context))
            _principal.set(self._principal)

    async def __aexit__(self, exc_type, error, traceback) -> None:
        try:
            if error is None or isinstance(error, grpc.aio.AbortError):
                return
            if isinstance(error, DomainError):
                _, status = errors.from_domain(error)
            elif isinstance(error, StorageUnavailable):
                status = errors.unavailable("The database is busy or unreachable; retry")
            elif isinstance(error, Exception):
                log.error("unhandled error in %s", self._method, exc_info=error)
                status = errors.internal()
            else:  # cancellation and the like: not ours to answer
                return
            await self._context.abort_with_status(status)  # raises AbortError in place of `error`
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s principal=%s status=%s duration_ms=%.2f",
                    self._method,
                    self._principal.describe() if self._principal else "-",
                    self._outcome(error),
                    (time.perf_counter() - self._started) * 1000,
                )

    def _outcome(self, error: BaseException | None) -> str:
        if error is None:
            return "OK"
        if isinstance(error, DomainError):
            return errors.code_of(error).name
        if isinstance(error, StorageUnavailable):
            return "UNAVAILABLE"
        if isinstance(error, grpc.aio.AbortError):
            code = self._context.code()
            return code.name if isinstance(code, grpc.StatusCode) else "ABORTED"
        if isinstance(error, Exception):
            return "INTERNAL"
        return type(error).__name__


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

        if handler.unary_unary:
            behavior = handler.unary_unary

            async def unary_unary(request, context):
                async with _Call(app, method, public, context) as call:
                    await call.authenticate()
                    if isinstance(request, _Undecodable):
                        raise InvalidArgument.field("request", "the request message could not be parsed")
                    return await behavior(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, _tolerant(handler.request_deserializer), handler.response_serializer
            )

        if handler.unary_stream or handler.stream_stream:
            behavior = handler.unary_stream or handler.stream_stream

            async def streaming(request_or_iterator, context):
                async with _Call(app, method, public, context) as call:
                    await call.authenticate()
                    async for response in behavior(request_or_iterator, context):
                        yield response

            factory: Callable = (
                grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
            )
            return factory(streaming, handler.request_deserializer, handler.response_serializer)

        # No client-streaming method exists; refuse to serve one that would skip authentication.
        raise RuntimeError(f"unsupported method shape for {method}")
