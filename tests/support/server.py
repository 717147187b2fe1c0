"""The real server for API tests, in the shape pytest-grpc expects of a grpc.Server.

pytest-grpc builds a synchronous grpc.server and registers one servicer on it. Our server is grpc.aio with an
interceptor, several services, health and reflection, so the `_grpc_server` fixture is overridden with this
facade: it runs communities.server.Server (exactly what `communities serve` runs) on an event loop in a
background thread; pytest-grpc's channel and synchronous stubs then call it over a loopback port.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Coroutine
from typing import Any

from communities.config import Settings
from communities.server import Server
from communities.storage import migrate


class AioServerFacade:
    def __init__(self, database_url: str, *, worker_id: int = 0, listen: str | None = None, console: bool = False):
        """`console`: also serve the web console (on a free port: `console_url`); off by default."""
        self.database_url = database_url
        self.worker_id = worker_id
        self.listen: str | None = listen
        self.console = console
        self.server: Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aio-server", daemon=True)

    # --- what pytest-grpc calls
    def add_generic_rpc_handlers(self, handlers) -> None:  # services are registered by Server itself
        pass

    def add_insecure_port(self, address: str) -> int:
        self.listen = address
        return int(address.rsplit(":", 1)[1])

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    def stop(self, grace=None) -> None:
        if self.server is not None:
            self.run(self.server.stop(grace or 0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # --- for tests
    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        """Run a coroutine on the server's loop (e.g. a service call to set up data) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def app(self):
        assert self.server is not None
        return self.server.app

    @property
    def console_url(self) -> str:
        """http://127.0.0.1:PORT (no trailing slash) of the web console."""
        assert self.server is not None and self.server.console_url is not None, "started without console=True"
        return self.server.console_url.rstrip("/")

    async def _start(self) -> None:
        await migrate.upgrade(self.database_url)
        settings = Settings(
            listen=self.listen or "127.0.0.1:0",
            database=self.database_url,
            worker_id=self.worker_id,
            grace_seconds=0,
            media_dir=tempfile.mkdtemp(prefix="communities-media-"),
            console=self.console,
            console_listen="127.0.0.1:0",
        )
        self.server = Server(settings)
        await self.server.start()
