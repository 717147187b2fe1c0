"""`communities serve` as a process: graceful stop on SIGTERM/SIGINT, the call log, settings from the environment."""

from __future__ import annotations

import queue
import re
import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from communities.v1 import communities_pb2, communities_pb2_grpc, users_pb2, users_pb2_grpc
from tests.e2e.helpers import address, grpcurl, health_status, worker_of

pytestmark = pytest.mark.e2e

GRACE = 5
STOPPED = "INFO communities.server stopped"
# After its last log line the process still has to exit: interpreter teardown (mostly the final garbage
# collection) takes ~1 s on a loaded 2-core machine. Timing claims are checked against the log line instead.
EXIT_TIMEOUT = 30


class ReflectionStream:
    """A bidirectional reflection stream kept open: a call in flight for as long as the test wants."""

    def __init__(self, channel: grpc.Channel):
        self._requests: queue.Queue = queue.Queue()
        self._responses = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter(self._requests.get, None), timeout=30
        )

    def ask(self, **request) -> reflection_pb2.ServerReflectionResponse:
        self._requests.put(reflection_pb2.ServerReflectionRequest(**request))
        return next(self._responses)

    def finish(self) -> list:
        """Half-close; the rest of the answers (raises the call's error if it failed)."""
        self._requests.put(None)
        return list(self._responses)

    def cancel(self) -> None:
        self._requests.put(None)
        self._responses.cancel()


def new_call_refused(server_address: str) -> bool:
    return health_status(server_address, timeout=1) is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_finishes_in_flight_calls(e2e, signum):
    database = e2e.sqlite_url()
    bot = e2e.user_in_process("Stopper", database=database, bot=True)
    server = e2e.server("--grace-seconds", str(GRACE), database=database)
    metadata = (("authorization", f"Bot {bot['token']}"),)

    with grpc.insecure_channel(server.address) as channel:
        users = users_pb2_grpc.UsersStub(channel)
        communities = communities_pb2_grpc.CommunitiesStub(channel)
        assert users.GetSelf(users_pb2.GetSelf(), metadata=metadata, timeout=10).id == int(bot["id"])
        with pytest.raises(grpc.RpcError) as bad_name:
            communities.CreateCommunity(communities_pb2.CreateCommunity(name=" "), metadata=metadata, timeout=10)
        assert bad_name.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        stream = ReflectionStream(channel)
        services = stream.ask(list_services="").list_services_response.service
        assert "communities.v1.Communities" in [service.name for service in services]

        signalled = time.monotonic()
        server.signal(signum)
        server.wait_for_log("stopping: finishing in-flight calls", timeout=GRACE)

        # New calls are refused while the in-flight one goes on.
        deadline = time.monotonic() + 5
        while not new_call_refused(server.address):
            assert time.monotonic() < deadline, f"still accepting new calls after the signal\n{server.describe()}"
            time.sleep(0.05)
        assert grpcurl(server.address).returncode != 0
        assert server.poll() is None, f"exited with a call in flight\n{server.describe()}"

        # The in-flight call keeps being served, and ends normally.
        answer = stream.ask(file_containing_symbol="communities.v1.Users")
        assert answer.file_descriptor_response.file_descriptor_proto, answer
        assert stream.finish() == []

        elapsed = server.wait_for_log(STOPPED, timeout=GRACE + 5) - signalled
        code = server.wait(timeout=EXIT_TIMEOUT)
    assert code == 0, server.describe()
    assert elapsed < GRACE, f"took {elapsed:.1f}s to stop although the in-flight call ended at once"

    # One line per call: method, principal, status (or the error code's name), duration; the token never.
    get_self = server.call_log_lines("/communities.v1.Users/GetSelf")
    assert len(get_self) == 1, get_self
    assert re.search(rf"principal=bot:{bot['id']} status=OK duration_ms=\d+(\.\d+)?$", get_self[0]), get_self
    create = server.call_log_lines("/communities.v1.Communities/CreateCommunity")
    assert len(create) == 1, create
    assert re.search(rf"principal=bot:{bot['id']} status=INVALID_ARGUMENT duration_ms=\d", create[0]), create
    reflection = server.call_log_lines("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert any("principal=- status=OK duration_ms=" in line for line in reflection), reflection
    assert bot["token"] not in server.output()


def test_graceful_stop_with_many_calls_in_flight(e2e):
    """300 calls sent at once, then SIGTERM. Every call the server started finishes (OK and logged); calls it had
    not started yet are refused with UNAVAILABLE (retryable), never CANCELLED: the server drains its own queue of
    received calls before gRPC's shutdown, which would cancel them."""
    database = e2e.sqlite_url()
    bot = e2e.user_in_process("Busy Bot", database=database, bot=True)
    server = e2e.server("--grace-seconds", str(GRACE), database=database)
    metadata = (("authorization", f"Bot {bot['token']}"),)

    with grpc.insecure_channel(server.address) as channel:
        users = users_pb2_grpc.UsersStub(channel)
        users.GetSelf(users_pb2.GetSelf(), metadata=metadata, timeout=10)  # connected
        calls = [users.GetSelf.future(users_pb2.GetSelf(), metadata=metadata, timeout=20) for _ in range(300)]
        server.signal(signal.SIGTERM)
        codes = [call.code() for call in calls]  # each waits for its call (20 s deadline)
        code = server.wait(timeout=EXIT_TIMEOUT)
    assert code == 0, server.describe()
    unexpected = {c for c in codes if c not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)}
    assert not unexpected, (unexpected, codes.count(grpc.StatusCode.CANCELLED), server.describe())
    ok = codes.count(grpc.StatusCode.OK)  # how many depends on the machine's load; 0 is possible
    # Every call the server started was logged and ended OK, and every refusal was logged as UNAVAILABLE.
    logged = server.call_log_lines("/communities.v1.Users/GetSelf")
    assert len([line for line in logged if " status=OK " in line]) == ok + 1, server.describe()
    refused = [line for line in logged if " status=OK " not in line]
    assert all(" status=UNAVAILABLE " in line for line in refused), refused
    assert bot["token"] not in server.output()


def test_calls_racing_the_stop_are_answered_ok_or_unavailable(e2e):
    """Clients that keep calling across the signal (4 threads, each call after the previous answer, as a game
    server does) see OK until the stop and UNAVAILABLE after it: never CANCELLED, whatever the timing."""
    database = e2e.sqlite_url()
    bot = e2e.user_in_process("Racer", database=database, bot=True)
    server = e2e.server("--grace-seconds", str(GRACE), database=database)
    metadata = (("authorization", f"Bot {bot['token']}"),)
    codes: list[grpc.StatusCode] = []
    stop_calling = threading.Event()

    def keep_calling(channel: grpc.Channel) -> None:
        users = users_pb2_grpc.UsersStub(channel)
        deadline = time.monotonic() + 20
        while not stop_calling.is_set() and time.monotonic() < deadline:
            try:
                users.GetSelf(users_pb2.GetSelf(), metadata=metadata, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
                if error.code() == grpc.StatusCode.UNAVAILABLE and server.poll() is not None:
                    return

    with grpc.insecure_channel(server.address) as channel:
        users_pb2_grpc.UsersStub(channel).GetSelf(users_pb2.GetSelf(), metadata=metadata, timeout=10)
        threads = [threading.Thread(target=keep_calling, args=(channel,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        server.signal(signal.SIGTERM)
        code = server.wait(timeout=EXIT_TIMEOUT)
        stop_calling.set()
        for thread in threads:
            thread.join(timeout=30)
    assert code == 0, server.describe()
    assert grpc.StatusCode.OK in codes and grpc.StatusCode.UNAVAILABLE in codes, set(codes)
    unexpected = [c for c in codes if c not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)]
    assert not unexpected, (f"{len(unexpected)} of {len(codes)} calls", set(unexpected), server.describe())


def test_open_watch_streams_end_unavailable_at_once_on_stop(e2e):
    """A health Watch never ends by itself: a stopping server ends it with UNAVAILABLE right away instead of
    holding the stop for the whole grace period."""
    server = e2e.server("--grace-seconds", "20", database=e2e.sqlite_url())
    with grpc.insecure_channel(server.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as ended:
            for _ in watch:  # NOT_SERVING may come first
                pass
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
        elapsed = server.wait_for_log(STOPPED, timeout=15) - signalled
        code = server.wait(timeout=EXIT_TIMEOUT)
    assert code == 0, server.describe()
    assert elapsed < 10, f"took {elapsed:.1f}s to stop with only a Watch stream open"


def test_grace_period_ends_calls_that_take_too_long(e2e):
    server = e2e.server("--grace-seconds", "1", database=e2e.sqlite_url())
    with grpc.insecure_channel(server.address) as channel:
        stream = ReflectionStream(channel)
        stream.ask(list_services="")
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        elapsed = server.wait_for_log(STOPPED, timeout=10) - signalled
        code = server.wait(timeout=EXIT_TIMEOUT)
        with pytest.raises(grpc.RpcError):
            stream.finish()
    assert code == 0, server.describe()
    assert elapsed < 4, f"took {elapsed:.1f}s with a 1s grace period\n{server.describe()}"


def test_settings_from_the_environment(e2e):
    database = e2e.sqlite_url()
    bot = e2e.user_in_process("Env Bot", database=database, bot=True)
    listen = address()
    server = e2e.server(
        database=database,
        env={
            "COMMUNITIES_LISTEN": listen,
            "COMMUNITIES_WORKER_ID": "7",
            "COMMUNITIES_GRACE_SECONDS": "3",
        },
    )
    assert "--listen" not in server.args
    assert server.address == listen
    assert f"serving communities.v1 on {listen} " in server.stderr(), server.describe()
    created = grpcurl(
        listen, "communities.v1.Communities/CreateCommunity", data={"name": "Env"}, authorization=f"Bot {bot['token']}"
    ).ok()
    assert worker_of(created.json()["id"]) == 7, created.stdout
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=EXIT_TIMEOUT) == 0
    assert "(grace 3.0s)" in server.stderr(), server.describe()


def test_flags_override_the_environment_and_log_level(e2e):
    flag_listen, env_listen = address(), address()
    server = e2e.server(
        "--log-level",
        "WARNING",
        database=e2e.sqlite_url(),
        listen=flag_listen,
        env={"COMMUNITIES_LISTEN": env_listen, "COMMUNITIES_LOG_LEVEL": "DEBUG"},
        ready=False,
    )
    server.wait_ready(logged=False)
    assert grpcurl(flag_listen, "grpc.health.v1.Health/Check").ok().json() == {"status": "SERVING"}
    assert health_status(env_listen) is None, "--listen must win over COMMUNITIES_LISTEN"
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=EXIT_TIMEOUT) == 0
    assert "communities.calls" not in server.stderr(), server.describe()
