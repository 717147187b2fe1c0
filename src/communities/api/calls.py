"""The interceptor every call goes through: authentication, the principal for the servicer, the one error
mapping, and one log line per call (method, principal, status, duration). Secrets are never logged."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import time
import urllib.parse
from collections.abc import Callable

import grpc

from communities.api import errors
from communities.domain import validation
from communities.domain.errors import DomainError, InvalidArgument
from communities.services import users as users_service
from communities.services.context import App, Principal
from communities.storage.database import StorageUnavailable
from communities.updates import publish

log = logging.getLogger("communities.calls")

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")

# Methods anyone may call without a token.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# Streams that never end by themselves: a stopping server ends them at once (UNAVAILABLE; clients reconnect, to
# another replica, and resume) instead of waiting for them. Every other call in progress gets the grace period.
ENDLESS_STREAMS = frozenset({"/grpc.health.v1.Health/Watch", "/communities.v1.Updates/Subscribe"})


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


AUDIT_REASON_KEY = "x-audit-log-reason"


def _credentials(context: grpc.aio.ServicerContext) -> tuple[str | None, str | None]:
    """The call's `authorization` and `x-audit-log-reason` metadata."""
    authorization = reason = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value
        elif key == AUDIT_REASON_KEY:
            reason = value
    return authorization, reason


def _audit_reason(value: str) -> str | None:
    """Metadata values are ASCII: a reason in other scripts is sent percent-encoded (as Discord's header is)."""
    text = validation.reason(urllib.parse.unquote(value, errors="strict"), AUDIT_REASON_KEY)
    return text or None


class Draining(Exception):
    """Raised for calls that start after the server began to stop: UNAVAILABLE, so that clients retry elsewhere."""


class _Call:
    """One call, from authentication to its log line; errors raised inside become the call's status."""

    __slots__ = (
        "_app",
        "_begin",
        "_context",
        "_end",
        "_interceptor",
        "_method",
        "_principal",
        "_public",
        "_refuse",
        "_started",
    )

    def __init__(self, app: App, method: str, public: bool, context, begin, end, refuse, interceptor=None):
        self._app = app
        self._interceptor = interceptor
        self._method = method
        self._public = public
        self._context = context
        self._principal: Principal | None = None
        self._begin = begin
        self._end = end
        self._refuse = refuse

    async def __aenter__(self) -> _Call:
        self._started = time.perf_counter()
        self._begin()
        return self

    async def authenticate(self) -> None:
        """Inside the `async with`, so that a refused token (or a stopping server) is answered like any other
        error."""
        await self._refuse(self)
        if not self._public:
            authorization, reason = _credentials(self._context)
            self._principal = await users_service.authenticate(self._app, authorization)
            _principal.set(self._principal)
            if reason is not None:
                try:
                    publish.audit_reason.set(_audit_reason(reason))
                except UnicodeDecodeError:
                    raise InvalidArgument.field(AUDIT_REASON_KEY, "is not percent-encoded UTF-8") from None

    def uncount(self) -> None:
        self._end()
        self._end = _nothing

    async def __aexit__(self, exc_type, error, traceback) -> None:
        self._end()
        try:
            if error is None or isinstance(error, grpc.aio.AbortError):
                return
            if isinstance(error, DomainError):
                _, status = errors.from_domain(error)
            elif isinstance(error, StorageUnavailable):
                status = errors.unavailable(str(error) or "The database is busy or unreachable; retry")
            elif isinstance(error, Draining):
                status = errors.unavailable("The server is stopping; retry (on another server)")
            elif isinstance(error, Exception):
                log.error("unhandled error in %s", self._method, exc_info=error)
                status = errors.internal()
            else:  # cancellation and the like: not ours to answer
                return
            await self._context.abort_with_status(status)  # raises AbortError in place of `error`
        finally:
            metrics = self._interceptor.metrics if self._interceptor is not None else None
            if metrics is not None or log.isEnabledFor(logging.INFO):
                outcome = self._outcome(error)
                seconds = time.perf_counter() - self._started
                if metrics is not None:
                    metrics.observe(self._method, outcome, seconds)
                log.info(
                    "%s principal=%s status=%s duration_ms=%.2f",
                    self._method,
                    self._principal.describe() if self._principal else "-",
                    outcome,
                    seconds * 1000,
                )

    def _outcome(self, error: BaseException | None) -> str:
        if error is None:
            return "OK"
        if isinstance(error, DomainError):
            return errors.code_of(error).name
        if isinstance(error, StorageUnavailable | Draining):
            return "UNAVAILABLE"
        if isinstance(error, grpc.aio.AbortError):
            code = self._context.code()
            return code.name if isinstance(code, grpc.StatusCode) else "ABORTED"
        if isinstance(error, Exception):
            return "INTERNAL"
        if isinstance(error, asyncio.CancelledError):
            return "CANCELLED"  # the client went away or its deadline passed
        return type(error).__name__


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method (unary and streaming, ours and the standard ones) in one `_Call`.

    It also counts the calls in progress, so that a stopping server can refuse new calls with UNAVAILABLE and
    wait for the running ones before gRPC itself shuts down (gRPC answers CANCELLED for the calls it has queued
    but not yet handed over when its shutdown begins).
    """

    def __init__(self, app: App):
        self._app = app
        # api/metrics.py's Metrics when the server exports metrics: every call is counted there.
        self.metrics = None
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}
        self.draining = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Set when draining starts: endless streams end then (UNAVAILABLE; Subscribe resumes from its cursor).
        self._drain_started = asyncio.Event()
        self._endless: set[_Endless] = set()
        self._released = asyncio.Event()
        self._holding = False
        self._last_refused = 0.0

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

    def _begin(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _end(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def _refuse_if_draining(self, call: _Call) -> None:
        if not self.draining:
            return
        call.uncount()  # a refused call does not hold up the stop
        if self._holding:
            self._last_refused = time.monotonic()
            await self._released.wait()
        raise Draining()

    async def drain(self, deadline: float, quiet: float = 0.05, settle: float = 1.0) -> None:
        """Refuse new calls (UNAVAILABLE) and end the endless streams, then wait until the calls in progress have
        ended (or until `deadline`, a time.monotonic()).

        Then hold new calls instead of refusing them, until none has arrived for `quiet` seconds (at most
        `settle`): gRPC's own stop answers CANCELLED to calls it has received but not yet handed over, and a
        client waiting for its held answer cannot send its next call into that gap. The server releases the
        held calls (UNAVAILABLE) once gRPC's stop has begun."""
        self.draining = True
        self._drain_started.set()
        for stream in self._endless:
            stream.drain()
        remaining = deadline - time.monotonic()
        if self.in_flight and remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), remaining)
        self._holding = True
        self._last_refused = time.monotonic()
        settle_until = min(deadline, time.monotonic() + settle)
        while (now := time.monotonic()) < settle_until and now - self._last_refused < quiet:  # noqa: ASYNC110
            # Polling: an arriving call restarts the quiet period, and arrivals do not signal anyone.
            await asyncio.sleep(min(quiet - (now - self._last_refused), settle_until - now))

    def release_refused(self) -> None:
        """Answer the held calls UNAVAILABLE: called once gRPC's own stop has begun."""
        self._released.set()

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        public = method.startswith(PUBLIC_PREFIXES)
        app = self._app
        begin, end, refuse = self._begin, self._end, self._refuse_if_draining
        drain_started = self._drain_started
        endless_streams = self._endless

        def call(context) -> _Call:
            return _Call(app, method, public, context, begin, end, refuse, self)

        endless = method in ENDLESS_STREAMS

        def stream_call(context) -> _Call:
            if endless:  # not waited for when the server stops: ended when draining starts
                return _Call(app, method, public, context, _nothing, _nothing, refuse, self)
            return _Call(app, method, public, context, begin, end, refuse, self)

        if handler.unary_unary:
            behavior = handler.unary_unary

            async def unary_unary(request, context):
                async with call(context) as current:
                    await current.authenticate()
                    _require_parsed(request)
                    return await behavior(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, _tolerant(handler.request_deserializer), handler.response_serializer
            )

        if handler.unary_stream or handler.stream_stream:
            behavior = handler.unary_stream or handler.stream_stream
            factory: Callable = (
                grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
            )

            def requests(request_or_iterator):
                if handler.unary_stream:
                    return _require_parsed(request_or_iterator)
                return _parsed_requests(request_or_iterator)

            # grpc.aio takes two shapes of streaming handler: an async generator that yields the responses, or a
            # coroutine that writes them with context.write (the health service's Watch). Keep the shape.
            if inspect.isasyncgenfunction(behavior) and endless:

                async def streaming(request_or_iterator, context):
                    async with stream_call(context) as current:
                        await current.authenticate()
                        responses = behavior(requests(request_or_iterator), context)
                        stream = _Endless(asyncio.current_task())
                        endless_streams.add(stream)
                        try:
                            while True:
                                if self.draining:
                                    raise Draining()
                                stream.waiting = True
                                try:
                                    response = await anext(responses)
                                except StopAsyncIteration:
                                    return
                                except asyncio.CancelledError:
                                    if not stream.drained:
                                        raise
                                    stream.task.uncancel()
                                    raise Draining() from None
                                finally:
                                    stream.waiting = False
                                yield response
                        finally:
                            endless_streams.discard(stream)
                            await responses.aclose()

            elif inspect.isasyncgenfunction(behavior):

                async def streaming(request_or_iterator, context):
                    async with stream_call(context) as current:
                        await current.authenticate()
                        async for response in behavior(requests(request_or_iterator), context):
                            yield response

            else:

                async def streaming(request_or_iterator, context):
                    async with stream_call(context) as current:
                        await current.authenticate()
                        work = behavior(requests(request_or_iterator), context)
                        if endless:
                            await _until_drain(asyncio.ensure_future(work), drain_started)
                        else:
                            await work

            return factory(
                streaming, _tolerant(handler.request_deserializer), _bytes_as_is(handler.response_serializer)
            )

        # No client-streaming method exists; refuse to serve one that would skip authentication.
        raise RuntimeError(f"unsupported method shape for {method}")


def _nothing() -> None:
    pass


class _Endless:
    """An endless async-generator stream in progress. Draining cancels its task only while the task is inside the
    generator (waiting for its next update); one sending an update stops before asking for the next. No task or
    timer per update or per stream."""

    __slots__ = ("drained", "task", "waiting")

    def __init__(self, task: asyncio.Task):
        self.task = task
        self.waiting = False
        self.drained = False

    def drain(self) -> None:
        self.drained = True
        if self.waiting:
            self.task.cancel()


async def _until_drain(work: asyncio.Future, drain_started: asyncio.Event) -> None:
    """Wait for `work`; if the server starts draining first, cancel it and raise Draining. Re-raises what `work`
    raised (StopAsyncIteration included). `work` never outlives this call."""
    drained = asyncio.ensure_future(drain_started.wait())
    try:
        await asyncio.wait((work, drained), return_when=asyncio.FIRST_COMPLETED)
    finally:
        drained.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
    if work.cancelled():
        raise Draining()
    work.result()


def _bytes_as_is(serializer):
    """A stream may yield a response already serialized (one encoding shared by many streams, api/updates.py)."""
    if serializer is None:
        return None

    def serialize(response) -> bytes:
        return response if type(response) is bytes else serializer(response)

    return serialize


def _require_parsed(request):
    if isinstance(request, _Undecodable):
        raise InvalidArgument.field("request", "the request message could not be parsed")
    return request


async def _parsed_requests(request_iterator):
    async for request in request_iterator:
        yield _require_parsed(request)
