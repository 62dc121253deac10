"""Prometheus metrics: request counts and latencies, search and encoder time, index size.

Each app has its own registry (several apps can live in one process, as in
tests). Request metrics are labelled by route template (``/api/items/{item_id}``),
never by raw path, so a scan of random URLs cannot blow up the series count.
Library gauges (items, vectors per index, jobs) are read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Stats = Callable[[], dict[str, Any]]


class Metrics:
    """The app's metric objects and their registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mmsearch_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = _latency(
            r, "mmsearch_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"],
        )  # fmt: skip
        self.searches = _latency(
            r, "mmsearch_search_duration_seconds", "Time to run one search (encoding included)",
            ["kind"],
        )  # fmt: skip
        self.encoder = _latency(
            r, "mmsearch_encoder_duration_seconds", "Time spent in an encoder call",
            ["space", "call"],
        )  # fmt: skip
        ProcessCollector(registry=r)

    def watch_library(self, stats: Stats) -> None:
        """Report the gauges ``stats()`` returns at every scrape."""
        self.registry.register(_LibraryCollector(stats))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _latency(
    registry: CollectorRegistry, name: str, documentation: str, labels: list[str]
) -> Histogram:
    """A histogram of seconds in ``LATENCY_BUCKETS``."""
    return Histogram(name, documentation, labels, buckets=LATENCY_BUCKETS, registry=registry)


class _LibraryCollector(Collector):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def describe(self) -> Iterable[Metric]:
        return []  # values come from the library at scrape time

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        items = GaugeMetricFamily("mmsearch_items", "Items in the library", labels=["modality"])
        for modality, n in sorted(s.get("items_by_modality", {}).items()):
            items.add_metric([modality], n)
        yield items
        yield GaugeMetricFamily("mmsearch_vectors", "Vectors in the catalog", value=s["vectors"])
        index = GaugeMetricFamily(
            "mmsearch_index_vectors", "Vectors in each FAISS index", labels=["space", "modality"]
        )
        for (space, modality), n in sorted(s.get("indexes", {}).items()):
            index.add_metric([space, modality], n)
        yield index
        jobs = GaugeMetricFamily("mmsearch_jobs", "Jobs known to the server", labels=["state"])
        for state, n in sorted(s.get("jobs", {}).items()):
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "mmsearch_readers_busy", "Library readers serving a request", value=s["readers_busy"]
        )


class TimedEncoder:
    """An encoder that reports the time of each ``encode_*`` call; everything else
    (``info``, ``dim``, preprocessors) passes through."""

    def __init__(self, inner: Any, observe: Callable[[str, float], None]) -> None:
        self._inner = inner
        self._observe = observe

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not (name.startswith("encode_") and callable(attr)):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._observe(name, time.perf_counter() - t0)

        return timed


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - t0)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "other"
