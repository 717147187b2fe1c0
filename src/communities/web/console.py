"""The console's HTTP server: uvicorn running ConsoleApp in the server's own event loop, on a socket bound here
(so a port in use is one clear start-up line, and port 0 tells its number), stopped inside the server's graceful
stop: it stops accepting, closes idle connections, and lets requests in progress finish until the deadline.

The bridge reaches the gRPC server over an abstract Unix socket (Linux; nothing on disk to clean up after a
crash), so TLS or mutual TLS on the public gRPC port does not stand in its way. A local process that finds it
reaches the same API, with the same token checks, as through the console's own port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterable

import grpc
import uvicorn
from google.protobuf.descriptor import ServiceDescriptor

from communities.services.context import App
from communities.web.app import ConsoleApp
from communities.web.bridge import Bridge

log = logging.getLogger("communities.web")


class ConsoleBindError(Exception):
    """The console cannot listen where asked; the text is one line with the fix."""


def bind(host: str, port: int, setting: str) -> socket.socket:
    listen = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConsoleBindError(f"cannot serve the console on {listen}: unknown host {host!r} ({setting})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        fix = (
            "stop the program using that port, choose another, or turn the console off with --no-console"
            if error.errno == errno.EADDRINUSE
            else "choose an address of this machine (127.0.0.1, 0.0.0.0, [::]) or a port you may use"
        )
        raise ConsoleBindError(f"cannot serve the console on {listen}: {error.strerror}; {fix} ({setting})") from None
    sock.setblocking(False)
    return sock


class Console:
    """Owns the listening socket, the loopback channel to the gRPC server and the uvicorn server."""

    def __init__(self, sock: socket.socket, *, read_max_bytes: int, send_max_bytes: int):
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        # Elsewhere than Linux: a loopback port of its own (its number is known once gRPC has bound it).
        self.grpc_address = (
            f"unix-abstract:communities-console-{os.getpid()}-{secrets.token_hex(8)}"
            if sys.platform == "linux"
            else "127.0.0.1:0"
        )
        self.read_max_bytes = read_max_bytes
        self.send_max_bytes = send_max_bytes
        self.channel: grpc.aio.Channel | None = None
        self.server: uvicorn.Server | None = None
        self._main: asyncio.Task | None = None

    async def start(self, app: App, services: Iterable[ServiceDescriptor]) -> None:
        self.channel = grpc.aio.insecure_channel(
            self.grpc_address,
            options=[
                ("grpc.max_receive_message_length", self.send_max_bytes),
                ("grpc.max_send_message_length", self.read_max_bytes),
            ],
        )
        bridge = Bridge(self.channel, services, self.read_max_bytes)
        config = uvicorn.Config(
            ConsoleApp(app, bridge),
            lifespan="off",
            http="h11",
            ws="none",
            log_config=None,
            access_log=False,  # our call log has the API calls; nothing here should log a request line
            server_header=False,
            proxy_headers=False,
        )
        config.load()
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        await self.server.startup(sockets=[self.sock])
        # Its loop only refreshes the Date header each second and watches should_exit.
        self._main = asyncio.get_running_loop().create_task(self.server.main_loop())

    async def stop(self, deadline: float) -> None:
        """Stop accepting, close idle connections, give requests in progress until `deadline` (time.monotonic())."""
        if self.server is not None and self.server.started:
            self.server.should_exit = True
            self.server.config.timeout_graceful_shutdown = max(0.1, deadline - time.monotonic())
            await self.server.shutdown()
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        self.sock.close()
        if self.channel is not None:
            await self.channel.close()
