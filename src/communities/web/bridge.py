"""The browser bridge: the Connect protocol (unary and server-streaming, JSON and proto, over HTTP/1.1) for every
method of our services, each call forwarded to this server's own gRPC port.

Design: `connectrpc`'s ASGI application (it speaks the protocol: envelopes, codecs, compression, timeouts, the
end-of-stream message, error JSON with details) with one generic endpoint per method, built from the service
descriptors. Each endpoint sends the decoded request over a grpc.aio channel to this server (a local socket of its
own, web/console.py), with the `authorization` and
`x-audit-log-reason` headers as metadata, and turns the gRPC status, message and `grpc-status-details-bin`
(google.rpc.ErrorInfo, BadRequest, ...) into a Connect error with the same details.

Why forward rather than call the servicers in-process through an adapter context: the call then takes exactly
the path a game server's call takes (the interceptor's authentication, refusal while stopping, call log,
metrics, limits, error translation, stream bookkeeping), with nothing to keep in step with grpc.aio's context.
What it costs (one loopback hop and a re-encode per message) is nothing at a console's call rates.
connectrpc's own code generator is not needed: it builds typed stubs over its own protobuf runtime, whereas the
generic endpoints here use the google.protobuf classes we already generate (connectrpc.compat's codecs).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable

import grpc
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_codecs
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import error_details_pb2, status_pb2
from protobuf.wkt import Any

log = logging.getLogger("communities.web")

# Request headers passed on to the gRPC call as metadata (what the interceptor reads).
FORWARDED_HEADERS = ("authorization", "x-audit-log-reason")
STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "communities.v1"

_CODES = {status: Code[status.name] for status in grpc.StatusCode if status.name in Code.__members__}
_CODES[grpc.StatusCode.CANCELLED] = Code.CANCELED


def _detail(message) -> ErrorDetail:
    return ErrorDetail(
        Any(type_url=f"type.googleapis.com/{message.DESCRIPTOR.full_name}", value=message.SerializeToString())
    )


def connect_error(error: grpc.aio.AioRpcError) -> ConnectError:
    """The gRPC status as a Connect error: same code, message and details."""
    details: list[ErrorDetail] = []
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            details = [ErrorDetail(Any(type_url=any.type_url, value=any.value)) for any in status.details]
    return ConnectError(_CODES.get(error.code(), Code.UNKNOWN), error.details() or "", details)


def with_error_info(error: Exception) -> Exception:
    """connectrpc's own refusals (a body that does not parse, a bad protocol header) carry no details; every error
    of ours does. Such an error gets the ErrorInfo our API always sends, and a request that did not parse the
    BadRequest violation the gRPC port sends for it."""
    if not isinstance(error, ConnectError) or error.details:
        return error
    details = [_detail(error_details_pb2.ErrorInfo(reason=error.code.name, domain=ERROR_DOMAIN))]
    if error.code is Code.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(field="request", description=error.message)
        details.append(_detail(error_details_pb2.BadRequest(field_violations=[violation])))
    completed = ConnectError(error.code, error.message, details)
    completed.__cause__ = error.__cause__
    return completed


class _CompleteErrors:
    """A connectrpc metadata interceptor: on_end may replace the call's error (a request that did not decode,
    unary or streaming) with one that carries ErrorInfo."""

    async def on_start(self, ctx: RequestContext) -> None:
        return None

    async def on_end(self, token: None, ctx: RequestContext, error: Exception | None) -> None:
        if error is not None and (completed := with_error_info(error)) is not error:
            raise completed


def _metadata(ctx: RequestContext) -> list[tuple[str, str]]:
    metadata = []
    for name in FORWARDED_HEADERS:
        value = ctx.request_headers.get(name)
        if value is None:
            continue
        if not value.isascii() or not value.isprintable():
            # gRPC metadata cannot carry it; said the way the API says a bad field.
            info = error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain=ERROR_DOMAIN)
            violation = error_details_pb2.BadRequest.FieldViolation(field=name, description="must be printable ASCII")
            raise ConnectError(
                Code.INVALID_ARGUMENT,
                f"{name}: must be printable ASCII",
                [_detail(info), _detail(error_details_pb2.BadRequest(field_violations=[violation]))],
            )
        metadata.append((name, value))
    return metadata


def _timeout(ctx: RequestContext) -> float | None:
    return None if ctx.timeout_ms is None else ctx.timeout_ms / 1000


class Bridge(ConnectASGIApplication):
    """POST /<package>.<Service>/<Method> for every method of `services`, forwarded over `channel`."""

    def __init__(self, channel: grpc.aio.Channel, services: Iterable[ServiceDescriptor], read_max_bytes: int):
        self.channel = channel
        endpoints = {}
        for service in services:
            for method in service.methods:
                endpoint = self._endpoint(service, method)
                if endpoint is not None:
                    endpoints[f"/{service.full_name}/{method.name}"] = endpoint
        self.paths = frozenset(endpoints)
        super().__init__(
            service=self,
            endpoints=lambda _: endpoints,
            read_max_bytes=read_max_bytes,
            codecs=google_protobuf_codecs(),
            interceptors=(_CompleteErrors(),),
        )

    async def _handle_error(self, exc, ctx, protocol, send) -> bool:
        # Refusals before the interceptors run (a bad timeout or protocol-version header) come only through here.
        return await super()._handle_error(with_error_info(exc), ctx, protocol, send)

    @property
    def path(self) -> str:
        return "/"

    def _endpoint(self, service: ServiceDescriptor, method) -> Endpoint | None:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        if method.client_streaming:
            return None  # a browser cannot stream a request body (and our API has no such method)
        stream_type = StreamType.SERVER_STREAM if method.server_streaming else StreamType.UNARY
        info = MethodInfo(
            name=method.name,
            service_name=service.full_name,
            input=request_class,
            output=response_class,
            idempotency_level=IdempotencyLevel.UNKNOWN,
            stream_type=stream_type,
        )
        path = f"/{service.full_name}/{method.name}"
        serialize, deserialize = request_class.SerializeToString, response_class.FromString
        if method.server_streaming:
            call_stream = self.channel.unary_stream(path, serialize, deserialize)

            async def stream(request, ctx: RequestContext) -> AsyncIterator:
                call = call_stream(request, metadata=_metadata(ctx), timeout=_timeout(ctx))
                try:
                    async for response in call:
                        yield response
                except grpc.aio.AioRpcError as error:
                    raise connect_error(error) from None
                finally:
                    call.cancel()  # the browser went away (or the stream ended): end the gRPC stream too

            return Endpoint.server_stream(info, stream)

        call_unary = self.channel.unary_unary(path, serialize, deserialize)

        async def unary(request, ctx: RequestContext):
            try:
                return await call_unary(request, metadata=_metadata(ctx), timeout=_timeout(ctx))
            except grpc.aio.AioRpcError as error:
                raise connect_error(error) from None

        return Endpoint.unary(info, unary)
