"""Prometheus metrics (`--metrics-listen HOST:PORT`, off by default), served over HTTP by prometheus-client from a
thread of its own: calls by method and status, their latency, calls in flight, open update streams, background
jobs, the authentication cache, and the PostgreSQL pool's connections in use. Each server has its own registry
(tests run several servers in one process)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("communities.metrics")

# Seconds; calls here take tens of microseconds to a few hundred milliseconds (photos, big target lists).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, server):
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "communities_calls",
            "Calls answered, by method and gRPC status",
            ["method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "communities_call_duration_seconds",
            "Time from a call's arrival to its answer (streams: to their end), by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        app = server.app
        calls = server.calls
        Gauge(
            "communities_calls_in_flight", "Calls in progress (update streams not counted)", registry=self.registry
        ).set_function(lambda: calls.in_flight)
        Gauge("communities_update_streams_open", "Open Updates/Subscribe streams", registry=self.registry).set_function(
            lambda: app.streams.count if app.streams is not None else 0
        )
        Gauge(
            "communities_background_jobs",
            "Work running after the call that started it (large target lists)",
            registry=self.registry,
        ).set_function(lambda: len(app.background))
        if app.credentials is not None:
            cache = app.credentials
            Gauge("communities_auth_cache_entries", "Tokens cached", registry=self.registry).set_function(
                lambda: len(cache)
            )
            Gauge(
                "communities_auth_cache_hits",
                "Calls authenticated from the cache (since start)",
                registry=self.registry,
            ).set_function(lambda: cache.hits)
            Gauge(
                "communities_auth_cache_misses",
                "Calls authenticated from the database (since start)",
                registry=self.registry,
            ).set_function(lambda: cache.misses)
        db = app.db
        if hasattr(db, "_pool"):  # PostgreSQL: an asyncpg pool, once connected
            Gauge(
                "communities_db_pool_connections_in_use",
                "PostgreSQL connections of this server's pool in use",
                registry=self.registry,
            ).set_function(lambda: _pool_in_use(db))
            Gauge(
                "communities_db_pool_size", "PostgreSQL connections this server may open", registry=self.registry
            ).set_function(lambda: getattr(db, "pool_size", 0))
        self._http = None

    def observe(self, method: str, status: str, seconds: float) -> None:
        self.calls.labels(method, status).inc()
        self.latency.labels(method).observe(seconds)

    def serve(self, listen: str) -> int:
        """Start the HTTP endpoint at HOST:PORT; returns the bound port."""
        host, _, port = listen.rpartition(":")
        self._http, _ = start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=self.registry)
        return self._http.server_port

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


def _pool_in_use(db) -> int:
    pool = getattr(db, "_pool", None)
    if pool is None or not hasattr(pool, "get_size"):
        return 0
    return pool.get_size() - pool.get_idle_size()
