"""The floor of a grpc.aio fan-out on this machine: `python -m bench.stream_floor --listen 127.0.0.1:PORT`.

A server that answers the two methods the fan-out bench uses, with nothing of the communities server behind them:
Updates/Subscribe (any caller; yields `ready`, then every broadcast) and Communities/EditCommunity (broadcasts an
Update with community_updated.name = the request's name to every open stream and answers). Every stream waits on
one shared asyncio.Event and yields bytes serialized once, so what a delivery costs here is grpc.aio's own cost of
sending one message on one stream, plus the kernel's: the least the real server could spend. Same event loop
(uvloop), same gc settings and same keepalive options as `communities serve`. bench/updates.py's `floor` part runs
it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from communities.v1 import communities_pb2, updates_pb2

GC_GEN0_THRESHOLD = 20_000  # as the server (communities/server.py)


class Floor:
    def __init__(self) -> None:
        self._next = asyncio.Event()
        self._payload: dict[asyncio.Event, bytes] = {}
        self._ready = updates_pb2.Update(ready=updates_pb2.Ready()).SerializeToString()

    async def subscribe(self, request: bytes, context):
        yield self._ready
        while True:
            broadcast = self._next
            await broadcast.wait()  # one future per waiter (no task); a cancelled stream cancels only its own
            yield self._payload[broadcast]

    async def edit_community(self, request: bytes, context) -> bytes:
        edit = communities_pb2.EditCommunity.FromString(request)
        update = updates_pb2.Update(cursor="floor", community_id=edit.community_id)
        update.community_updated.id = edit.community_id
        update.community_updated.name = edit.name
        broadcast, self._next = self._next, asyncio.Event()
        self._payload = {broadcast: update.SerializeToString()}  # the previous one is no longer waited for
        broadcast.set()
        return communities_pb2.Community(id=edit.community_id, name=edit.name).SerializeToString()


async def serve(listen: str) -> None:
    floor = Floor()
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "communities.v1.Updates", {"Subscribe": grpc.unary_stream_rpc_method_handler(floor.subscribe)}
            ),
            grpc.method_handlers_generic_handler(
                "communities.v1.Communities",
                {"EditCommunity": grpc.unary_unary_rpc_method_handler(floor.edit_community)},
            ),
        )
    )
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    server.add_insecure_port(listen)
    await server.start()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT (127.0.0.1:PORT)")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.listen))


if __name__ == "__main__":
    main()
