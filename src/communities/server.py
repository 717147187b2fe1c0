"""Builds and runs the grpc.aio server: interceptor, services, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import secrets
import signal
import socket
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from communities.api.calls import CallInterceptor
from communities.api.channels import ChannelsServicer
from communities.api.communities import CommunitiesServicer
from communities.api.invites import InvitesServicer
from communities.api.media import MediaServicer
from communities.api.members import MembersServicer
from communities.api.messages import MessagesServicer
from communities.api.metrics import Metrics
from communities.api.reflection import add_reflection
from communities.api.roles import RolesServicer
from communities.api.updates import UpdatesServicer
from communities.api.users import UsersServicer
from communities.config import Settings
from communities.domain.snowflake import SnowflakeGenerator
from communities.media.blobstore import Blobs, DatabaseBlobStore, LocalBlobStore, ThreadedBlobStore
from communities.services import invites as invites_service
from communities.services import media as media_service
from communities.services import members as members_service
from communities.services import updates as updates_service
from communities.services.context import App
from communities.services.credentials import CredentialCache, forget_old_revocations
from communities.services.identities import JwtConfigError, JwtVerifier, parse_keys
from communities.storage import migrate, workers
from communities.storage.database import Database, is_sqlite
from communities.updates.hub import Hub
from communities.updates.streams import StreamRegistry
from communities.updates.wakeup import PostgresWakeup
from communities.v1 import (
    channels_pb2,
    channels_pb2_grpc,
    communities_pb2,
    communities_pb2_grpc,
    invites_pb2,
    invites_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
    updates_pb2,
    updates_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)
from communities.web import login as console_login

log = logging.getLogger("communities.server")

MAINTENANCE_SECONDS = 60
TEMPORARY_CHECK_SECONDS = 5
KEEPALIVE_MS = 30_000
GC_GEN0_THRESHOLD = 20_000
# Worker id leases: renewed every few seconds; a lease not renewed for WORKER_LEASE_MS is free to take.
WORKER_LEASE_MS = 15_000
WORKER_RENEW_SECONDS = 5

# Our services (each also reported SERVING by the health service), then the standard ones.
OUR_SERVICE_DESCRIPTORS = tuple(
    module.DESCRIPTOR.services_by_name[name]
    for module, name in (
        (communities_pb2, "Communities"),
        (users_pb2, "Users"),
        (roles_pb2, "Roles"),
        (channels_pb2, "Channels"),
        (members_pb2, "Members"),
        (invites_pb2, "Invites"),
        (media_pb2, "Media"),
        (updates_pb2, "Updates"),
        (messages_pb2, "Messages"),
    )
)
OUR_SERVICES = tuple(service.full_name for service in OUR_SERVICE_DESCRIPTORS)
SERVICE_NAMES = (*OUR_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)


class StartupError(Exception):
    """The server cannot start; the text says what failed and how to fix it, in one line."""


class SchemaOutOfDate(StartupError):
    pass


class WorkerIdTaken(StartupError):
    pass


def parse_listen(listen: str, setting: str = "--listen (COMMUNITIES_LISTEN)") -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) -> (host, port); anything else is a StartupError that shows the form."""
    host, separator, port = listen.rpartition(":")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise StartupError(
            f"{setting} must be HOST:PORT, e.g. 127.0.0.1:50051, 0.0.0.0:50051 or [::]:50051; got {listen!r}"
        )
    return host, int(port)


def check_listen(listen: str) -> None:
    """Bind the address once ourselves, so that a port in use or a foreign address is one clear line (gRPC's
    own bind failure is a log line from its core and a bare RuntimeError)."""
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise StartupError(f"cannot listen on {listen}: unknown host {host!r} ({error.strerror})") from error
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                fix = (
                    "stop the program using that port or choose another"
                    if error.errno == errno.EADDRINUSE
                    else "choose an address of this machine (127.0.0.1, 0.0.0.0, [::]) or a port you may use"
                )
                raise StartupError(
                    f"cannot listen on {listen}: {error.strerror}; {fix} (--listen / COMMUNITIES_LISTEN)"
                ) from error


def bind_console(settings: Settings) -> socket.socket:
    """The console's listening socket; a StartupError in one line when it cannot be had."""
    from communities.web.console import ConsoleBindError, bind

    host, port = parse_listen(settings.console_listen, "--console-listen (COMMUNITIES_CONSOLE_LISTEN)")
    try:
        return bind(host, port, "--console-listen / COMMUNITIES_CONSOLE_LISTEN")
    except ConsoleBindError as error:
        raise StartupError(str(error)) from None


async def check_database(settings: Settings) -> None:
    """Fail with one clear line when the database cannot be opened (before anything else needs it)."""
    try:
        await migrate.current_revision(settings.database)
    except StartupError:
        raise
    except Exception as error:
        cause = getattr(error, "orig", None) or error
        detail = " ".join(str(cause).split())[:300]
        hint = (
            "is PostgreSQL running there, and are the host, port, user, password and database right?"
            if not is_sqlite(settings.database)
            else "can this user create and write that file and its folder?"
        )
        raise StartupError(
            f"cannot open the database {settings.safe_database} ({type(cause).__name__}: {detail}); {hint} "
            "(--database / COMMUNITIES_DATABASE)"
        ) from error


async def prepare_database(settings: Settings) -> None:
    """An empty SQLite file is migrated on the spot; any other database must already be at the newest schema."""
    await check_database(settings)
    current = await migrate.current_revision(settings.database)
    head = migrate.head_revision()
    if current == head:
        return
    if current is None and is_sqlite(settings.database):
        log.info("empty SQLite database: creating the schema")
        await migrate.upgrade(settings.database)
        log.info("schema %s created", head)
        return
    raise SchemaOutOfDate(
        f"database schema is at {current or 'nothing'}, this server needs {head}: "
        f"run `communities migrate --database ...` first"
    )


def _jwt_verifier(settings: Settings) -> JwtVerifier | None:
    if not settings.jwt_keys:
        return None
    try:
        keys = parse_keys(settings.jwt_keys)
    except JwtConfigError as error:
        raise StartupError(str(error)) from None
    verifier = JwtVerifier(keys, leeway_seconds=settings.jwt_leeway_seconds, audience=settings.jwt_audience)
    log.info("accepting JSON Web Tokens of issuers %s", ", ".join(repr(issuer) for issuer in verifier.issuers))
    return verifier


def tls_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS with --tls-cert and --tls-key (PEM); with --tls-client-ca, clients must present a certificate that CA
    signed (mutual TLS). None: plaintext."""
    if not (settings.tls_cert or settings.tls_key or settings.tls_client_ca):
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise StartupError(
            "TLS needs both --tls-cert and --tls-key (COMMUNITIES_TLS_CERT / COMMUNITIES_TLS_KEY), PEM files"
        )

    def read(path: str, flag: str, marker: bytes) -> bytes:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError as error:
            raise StartupError(f"cannot read {flag} {path}: {error.strerror}") from None
        if marker not in data:
            raise StartupError(f"{flag} {path} is not a PEM file with a {marker.decode().strip('-')}")
        return data

    cert = read(settings.tls_cert, "--tls-cert", b"-----BEGIN CERTIFICATE-----")
    key = read(settings.tls_key, "--tls-key", b"PRIVATE KEY-----")
    client_ca = (
        read(settings.tls_client_ca, "--tls-client-ca", b"-----BEGIN CERTIFICATE-----")
        if settings.tls_client_ca
        else None
    )
    log.info("TLS on%s", " with client certificates (mutual TLS)" if client_ca else "")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _blob_store(settings: Settings, db: Database) -> Blobs:
    """Photos as files under --media-dir on SQLite (one machine); in the database on PostgreSQL, so that every
    replica serves what any replica stored."""
    if is_sqlite(settings.database):
        return ThreadedBlobStore(LocalBlobStore(settings.media_dir))
    return DatabaseBlobStore(db)


class Server:
    """A running server. `port` is the bound port (useful with port 0); `console_url` the console's, or None."""

    def __init__(self, settings: Settings):
        self.settings = settings
        jwt = _jwt_verifier(settings)
        tls = tls_credentials(settings)
        self.db = Database.open(settings.database, pool_size=settings.db_pool_size)
        self.app = App(db=self.db, ids=SnowflakeGenerator(settings.worker_id), blobs=_blob_store(settings, self.db))
        self.app.jwt = jwt
        self.app.credentials = CredentialCache(self.db, self.app.clock_ms)
        # The update streams: a hub that follows the events, the open streams' bookkeeping, and on PostgreSQL the
        # sequencer and LISTEN connection; a unit of work that published events wakes them after its commit.
        self.app.hub = Hub(self.db)
        self.app.streams = StreamRegistry(self.db, self.app.clock_ms)
        self.wakeup = None if is_sqlite(settings.database) else PostgresWakeup(self.db, self.app.hub)
        self.db.on_publish = self.app.hub.poke if self.wakeup is None else self.wakeup.committed
        if self.wakeup is not None:
            self.app.sequence_committed = self.wakeup.sequence
        self.health = health.aio.HealthServicer()
        self.calls = CallInterceptor(self.app)
        self.metrics: Metrics | None = None
        self.metrics_port: int | None = None
        if settings.metrics_listen:
            parse_listen(settings.metrics_listen, "--metrics-listen (COMMUNITIES_METRICS_LISTEN)")
            self.metrics = self.calls.metrics = Metrics(self)
        self.grpc = grpc.aio.server(
            interceptors=[self.calls],
            options=[
                ("grpc.max_receive_message_length", settings.max_receive_bytes),
                ("grpc.max_send_message_length", settings.max_send_bytes),
                ("grpc.so_reuseport", 0),
                # HTTP/2 pings keep idle update streams open through proxies and notice vanished clients.
                ("grpc.keepalive_time_ms", KEEPALIVE_MS),
                ("grpc.keepalive_timeout_ms", 20_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        communities_pb2_grpc.add_CommunitiesServicer_to_server(CommunitiesServicer(self.app), self.grpc)
        users_pb2_grpc.add_UsersServicer_to_server(UsersServicer(self.app), self.grpc)
        roles_pb2_grpc.add_RolesServicer_to_server(RolesServicer(self.app), self.grpc)
        channels_pb2_grpc.add_ChannelsServicer_to_server(ChannelsServicer(self.app), self.grpc)
        members_pb2_grpc.add_MembersServicer_to_server(MembersServicer(self.app), self.grpc)
        invites_pb2_grpc.add_InvitesServicer_to_server(InvitesServicer(self.app), self.grpc)
        media_pb2_grpc.add_MediaServicer_to_server(MediaServicer(self.app), self.grpc)
        updates_pb2_grpc.add_UpdatesServicer_to_server(UpdatesServicer(self.app), self.grpc)
        messages_pb2_grpc.add_MessagesServicer_to_server(MessagesServicer(self.app), self.grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        add_reflection(self.grpc, SERVICE_NAMES)
        self.console = self._console(settings)
        self._tasks: list[asyncio.Task] = []
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # Set when this server lost its worker id lease (it stalled for longer than the lease): it must stop.
        self.lease_lost = asyncio.Event()
        parse_listen(settings.listen)
        try:
            if tls is None:
                self.port = self.grpc.add_insecure_port(settings.listen)
            else:
                self.port = self.grpc.add_secure_port(settings.listen, tls)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise StartupError(
                f"cannot listen on {settings.listen}: the port is in use by another program or the address is not "
                "one of this machine's; stop the other program or choose another --listen (COMMUNITIES_LISTEN)"
            )

    def _console(self, settings: Settings):
        """The web console's socket, bound now (a port in use is a start-up error); None when it is off. Its bridge
        reaches this gRPC server over a Unix socket of its own."""
        if not settings.console:
            return None
        from communities.web.console import Console

        sock = bind_console(settings)
        console = Console(sock, read_max_bytes=settings.max_receive_bytes, send_max_bytes=settings.max_send_bytes)
        port = self.grpc.add_insecure_port(console.grpc_address)
        if console.grpc_address.endswith(":0"):
            console.grpc_address = f"127.0.0.1:{port}"
        return console

    @property
    def console_url(self) -> str | None:
        if self.console is None:
            return None
        return f"http://{self.settings.console_listen.rsplit(':', 1)[0]}:{self.console.port}/"

    async def start(self) -> None:
        await self._claim_worker_id()
        await self.app.hub.start()
        self.app.streams.start()
        self.app.credentials.start()
        if self.wakeup is not None:
            await self.wakeup.start()
        await self.grpc.start()
        if self.metrics is not None:
            try:
                self.metrics_port = self.metrics.serve(self.settings.metrics_listen)
            except OSError as error:
                raise StartupError(
                    f"cannot serve metrics on {self.settings.metrics_listen}: {error.strerror} "
                    "(--metrics-listen / COMMUNITIES_METRICS_LISTEN)"
                ) from None
            log.info(
                "metrics at http://%s/metrics", self.settings.metrics_listen.rsplit(":", 1)[0] + f":{self.metrics_port}"
            )
        if self.console is not None:
            await self.console.start(self.app, OUR_SERVICE_DESCRIPTORS)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(MAINTENANCE_SECONDS, self._maintenance)),
            loop.create_task(self._every(TEMPORARY_CHECK_SECONDS, self._expire_temporary_members)),
            loop.create_task(self._renew_worker_id()),
        ]
        for name in OUR_SERVICES:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls (each new one is answered UNAVAILABLE, retryable) and end the endless streams, let
        the calls in progress finish within the grace period, then stop gRPC and close the database.

        gRPC's own stop answers CANCELLED to calls it has received but not yet handed over, so the refusals are
        held until it has begun: a client waiting for its answer cannot send its next call into that gap."""
        deadline = time.monotonic() + (self.settings.grace_seconds if grace is None else grace)
        await self.health.enter_graceful_shutdown()
        # The console stops taking requests at once; those in progress are gRPC calls, which the drain ends.
        console_stopping = None if self.console is None else asyncio.ensure_future(self.console.stop(deadline))
        await self.calls.drain(deadline)
        stopping = asyncio.ensure_future(self.grpc.stop(max(0.0, deadline - time.monotonic())))
        for _ in range(3):  # let gRPC's shutdown begin (it stops taking new streams in its first step)
            await asyncio.sleep(0)
        self.calls.release_refused()
        await stopping
        if console_stopping is not None:
            await console_stopping
        tasks = [*self._tasks, *self.app.background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.app.streams.stop()
        await self.app.credentials.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self.wakeup is not None:
            await self.wakeup.stop()
        await self.app.hub.stop()
        try:
            async with self.db.unit_of_work(write=True) as uow:
                await workers.release(uow, self.settings.worker_id, self.instance)
        finally:
            await self.db.close()

    async def _claim_worker_id(self) -> None:
        """Lease the configured worker id. If another server holds it, wait (a crashed server's lease runs out
        within WORKER_LEASE_MS) and then give up with a clear message."""
        worker_id = self.settings.worker_id
        deadline = self.app.clock_ms() + 2 * WORKER_LEASE_MS
        while True:
            async with self.db.unit_of_work(write=True) as uow:
                if await workers.claim(uow, worker_id, self.instance, self.app.clock_ms(), WORKER_LEASE_MS):
                    return
            if self.app.clock_ms() > deadline:
                raise WorkerIdTaken(
                    f"worker id {worker_id} is in use by another server on this database: give each server its "
                    "own --worker-id (COMMUNITIES_WORKER_ID)"
                )
            log.warning("worker id %d is leased by another server; waiting for the lease to run out", worker_id)
            await asyncio.sleep(1)

    async def _renew_worker_id(self) -> None:
        while True:
            await asyncio.sleep(WORKER_RENEW_SECONDS)
            try:
                async with self.db.unit_of_work(write=True) as uow:
                    renewed = await workers.renew(uow, self.settings.worker_id, self.instance, self.app.clock_ms())
            except Exception:
                log.exception("renewing the worker id lease failed; retrying")
                continue
            if not renewed:
                log.critical("lost the lease on worker id %d to another server: stopping", self.settings.worker_id)
                self.lease_lost.set()
                return

    @staticmethod
    async def _every(seconds: float, job) -> None:
        while True:
            await asyncio.sleep(seconds)
            await job()

    async def _maintenance(self) -> None:
        """Take expired invites off the active lists (they already stop working on expiry), remove upload parts
        nobody used within a day, and events older than the retention (cursors older than that expire)."""
        retention_ms = int(self.settings.event_retention_seconds * 1000)
        for name, sweep in (
            ("expired invites", invites_service.sweep_expired_invites),
            ("stale upload parts", media_service.sweep_stale_uploads),
            ("old events", lambda app: updates_service.sweep_events(app, retention_ms)),
            ("old token revocations", forget_old_revocations),
            ("expired console login links and tokens", console_login.sweep_expired),
        ):
            try:
                swept = await sweep(self.app)
                if swept:
                    log.info("swept %d %s", swept, name)
            except Exception:
                log.exception("sweeping %s failed", name)

    async def _expire_temporary_members(self) -> None:
        try:
            removed = await members_service.expire_temporary_members(
                self.app, int(self.settings.temporary_grace_seconds * 1000)
            )
            if removed:
                log.info("removed %d temporary member(s) offline past the grace period", removed)
        except Exception:
            log.exception("expiring temporary members failed")


async def serve(settings: Settings) -> None:
    # Signals first: one arriving while the server starts still means a graceful stop.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    check_listen(settings.listen)
    if settings.console:
        bind_console(settings).close()  # fail before the database is touched, as for --listen
    await prepare_database(settings)
    server = Server(settings)
    await server.start()
    # Everything loaded so far (modules, SQLAlchemy metadata, grpc, protobuf descriptors) lives as long as the
    # process: keep it out of the cyclic garbage collector's full passes, and let young-generation passes run
    # less often, since each call allocates a few hundred short-lived objects.
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
    host = settings.listen.rsplit(":", 1)[0]
    log.info(
        "serving communities.v1 on %s:%d (database %s, worker %d)",
        host,
        server.port,
        settings.safe_database,
        settings.worker_id,
    )
    if server.console_url is not None:
        log.info("console at %s", server.console_url)
    stopped = loop.create_task(stop.wait())
    lease_lost = loop.create_task(server.lease_lost.wait())
    await asyncio.wait([stopped, lease_lost], return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing in-flight calls (grace %.1fs)", settings.grace_seconds)
    await server.stop()
    log.info("stopped")
    if server.lease_lost.is_set():
        raise WorkerIdTaken(f"lost the lease on worker id {settings.worker_id}")
