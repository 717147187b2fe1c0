"""`serve --metrics-listen`: a Prometheus endpoint with calls by method and status, latency histograms, open
update streams and background jobs; off by default."""

from __future__ import annotations

import re
import time
import urllib.request

import grpc
import pytest

from communities.v1 import users_pb2, users_pb2_grpc
from tests.e2e.helpers import address
from tests.support.updates import UpdateStream

pytestmark = pytest.mark.e2e


def scrape(listen: str) -> str:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as answer:
        assert answer.status == 200
        return answer.read().decode()


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in the metrics:\n{text}"
    return float(match.group(1))


def test_metrics_after_a_few_calls(e2e):
    database = e2e.sqlite_url()
    bot = e2e.user_in_process("Metered", database=database, bot=True)
    metrics = address()
    server = e2e.server("--metrics-listen", metrics, database=database)
    assert f"metrics at http://{metrics}/metrics" in server.stderr()
    metadata = (("authorization", f"Bot {bot['token']}"),)
    with grpc.insecure_channel(server.address) as channel:
        stub = users_pb2_grpc.UsersStub(channel)
        for _ in range(3):
            stub.GetSelf(users_pb2.GetSelf(), metadata=metadata)
        with pytest.raises(grpc.RpcError):
            stub.GetSelf(users_pb2.GetSelf(), metadata=(("authorization", "Bot cmt_nope"),))
        stream = UpdateStream(channel, metadata)
        text = scrape(metrics)
        method = "/communities.v1.Users/GetSelf"
        assert value(text, f'communities_calls_total{{method="{method}",status="OK"}}') == 3
        assert value(text, f'communities_calls_total{{method="{method}",status="UNAUTHENTICATED"}}') == 1
        assert value(text, f'communities_call_duration_seconds_count{{method="{method}"}}') == 4
        assert value(text, f'communities_call_duration_seconds_bucket{{le="+Inf",method="{method}"}}') == 4
        assert value(text, "communities_update_streams_open") == 1
        assert value(text, "communities_background_jobs") == 0
        assert value(text, "communities_calls_in_flight") == 0
        assert value(text, "communities_auth_cache_hits") >= 2
        stream._call.cancel()
        deadline = time.monotonic() + 10
        while value(scrape(metrics), "communities_update_streams_open") != 0:
            assert time.monotonic() < deadline, "the closed stream is still counted"
            time.sleep(0.1)


def test_metrics_are_off_by_default(e2e):
    server = e2e.server(database=e2e.sqlite_url())
    assert "metrics at" not in server.stderr()
