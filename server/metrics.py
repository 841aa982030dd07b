"""Prometheus metrics of one Application, served at GET /metrics.

Each Application has its own CollectorRegistry (tests build many apps; the global
registry would make the second one fail on duplicate names). Requests are labelled by
route PATTERN (``/video/{video_id}/play``), never by raw path, so ids cannot grow the
label set; a path no route matches is ``unmatched``.

The per-request figures are plain counters in dicts, added to on the event loop (the
only thread that finishes requests, so no lock is needed), and turned into Prometheus
metric families only when /metrics is scraped (``RequestCollector``). prometheus_client's
own Counter and Histogram take a lock and walk the buckets on every observation; this
way it costs a few dict operations (the saving, by python -m bench.callgrind: bench/README.md).
"""

from __future__ import annotations

import bisect
import dataclasses
import re

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

UNMATCHED_ROUTE = "unmatched"
# From a fast health check to a slow bcrypt login under load (seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route_label(pattern: str) -> str:
    """`/video/(?P<video_id>[^/]+)/stream` -> `/video/{video_id}/stream`, `/openapi\\.json` -> `/openapi.json`."""
    label = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    label = re.sub(r"\([^)]*\)", "{file}", label)
    return re.sub(r"\\(.)", r"\1", label)


@dataclasses.dataclass
class ConnectionCounts:
    """The HTTP server's connections (server/connection.py keeps them; read at each scrape)."""

    open: int = 0
    refused: int = 0  # closed at once, past MAX_CONNECTIONS


class Metrics:
    def __init__(self, routes, in_flight, password_checks_waiting, connections: ConnectionCounts | None = None):
        """``routes``: (pattern, handler class) pairs; ``in_flight`` and
        ``password_checks_waiting``: functions read at each scrape; ``connections``: the
        HTTP server's counts."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._route_of = {handler: route_label(pattern) for pattern, handler, *_ in routes}
        # (handler class, status) -> requests; handler class -> [count per bucket (the
        # last one past every bound), ..., sum of seconds]
        self._requests: dict[tuple[type, int], int] = {}
        self._latency: dict[type, list] = {}
        self.registry.register(RequestCollector(self))
        Gauge("http_requests_in_flight", "Requests being handled now.",
              registry=self.registry).set_function(in_flight)
        Gauge("password_checks_waiting", "Password hashes and checks queued for a bcrypt thread.",
              registry=self.registry).set_function(password_checks_waiting)
        self.connections = connections = connections or ConnectionCounts()
        Gauge("http_connections_open", "HTTP connections open now (at most MAX_CONNECTIONS).",
              registry=self.registry).set_function(lambda: connections.open)
        self.registry.register(RefusedConnectionsCollector(connections))
        self._database_unavailable = Counter(
            "database_unavailable_responses",
            "Requests answered 503 because the database did not answer in time.", registry=self.registry)

    def observe(self, handler) -> None:
        """Records one finished request (called from the Application's log_function)."""
        cls = type(handler)
        key = (cls, handler.get_status())
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        seconds = handler.request.request_time()
        latency = self._latency.get(cls)
        if latency is None:
            latency = self._latency[cls] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]
        # A bucket's bound is inclusive (le): the first bound >= seconds.
        latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency[-1] += seconds

    def route_of(self, cls: type) -> str:
        return self._route_of.get(cls, UNMATCHED_ROUTE)

    def database_unavailable(self) -> None:
        self._database_unavailable.inc()


class RequestCollector:
    """The request counters of one Metrics, as Prometheus metric families, at scrape time."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def describe(self):
        return [CounterMetricFamily("http_requests", _REQUESTS_HELP, labels=["route", "status"]),
                HistogramMetricFamily("http_request_duration_seconds", _LATENCY_HELP, labels=["route"])]

    def collect(self):
        metrics = self._metrics
        requests = CounterMetricFamily("http_requests", _REQUESTS_HELP, labels=["route", "status"])
        by_label: dict[tuple[str, str], int] = {}
        for (cls, status), count in list(metrics._requests.items()):
            label = (metrics.route_of(cls), str(status))
            by_label[label] = by_label.get(label, 0) + count  # unmatched: several classes, one label
        for label, count in by_label.items():
            requests.add_metric(label, count)
        latency = HistogramMetricFamily("http_request_duration_seconds", _LATENCY_HELP, labels=["route"])
        by_route: dict[str, list] = {}
        for cls, counts in list(metrics._latency.items()):
            merged = by_route.setdefault(metrics.route_of(cls), [0] * len(counts[:-1]) + [0.0])
            for index, value in enumerate(counts):
                merged[index] += value
        for route, counts in by_route.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts[:-1], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            latency.add_metric([route], buckets, counts[-1])
        return [requests, latency]


class RefusedConnectionsCollector:
    """The count of connections closed at once past MAX_CONNECTIONS, as a counter."""

    def __init__(self, connections: ConnectionCounts):
        self._counts = connections

    def describe(self):
        return [CounterMetricFamily("http_connections_refused", _REFUSED_HELP)]

    def collect(self):
        return [CounterMetricFamily("http_connections_refused", _REFUSED_HELP, value=self._counts.refused)]


_REFUSED_HELP = "New connections closed at once because MAX_CONNECTIONS were already open."
_REQUESTS_HELP = "HTTP requests answered, by route pattern and status."
_LATENCY_HELP = "Time from reading a request to finishing its answer, by route pattern."
