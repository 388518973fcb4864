"""Prometheus metrics of the API: requests and latency by route template, never by raw path.

Each app has its own registry (two apps in one process -- tests, workers -- never collide). A
request that matched no route counts as ``unmatched``, so scanning random paths cannot grow the
label set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("safeloop_http_requests", "HTTP requests by route template",
                                ("method", "route", "status"), registry=self.registry)
        self.latency = Histogram("safeloop_http_request_duration_seconds",
                                 "HTTP request latency by route template", ("method", "route"),
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
