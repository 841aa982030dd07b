"""Prometheus metrics of one Application, served at GET /metrics.

Each Application has its own CollectorRegistry (tests build many apps; the global
registry would make the second one fail on duplicate names). Requests are labelled by
route PATTERN (``/video/{video_id}/play``), never by raw path, so ids cannot grow the
label set; a path no route matches is ``unmatched``.

The cost per request is one dict lookup, one counter increment and one histogram
observation: the labelled children are resolved once per (handler class, status) and
kept, rather than looked up by label values on every request.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

UNMATCHED_ROUTE = "unmatched"
# From a fast health check to a slow bcrypt login under load (seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route_label(pattern: str) -> str:
    """`/video/(?P<video_id>[^/]+)/stream` -> `/video/{video_id}/stream`, `/openapi\\.json` -> `/openapi.json`."""
    label = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    label = re.sub(r"\([^)]*\)", "{file}", label)
    return re.sub(r"\\(.)", r"\1", label)


class Metrics:
    def __init__(self, routes, in_flight, password_checks_waiting, app_label: str = "video_app"):
        """``routes``: (pattern, handler class) pairs; ``in_flight`` and
        ``password_checks_waiting``: functions read at each scrape."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._route_of = {handler: route_label(pattern) for pattern, handler, *_ in routes}
        self._requests = Counter(
            "http_requests", "HTTP requests answered, by route pattern and status.",
            ["route", "status"], registry=self.registry)
        self._latency = Histogram(
            "http_request_duration_seconds", "Time from reading a request to finishing its answer, by route pattern.",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        Gauge("http_requests_in_flight", "Requests being handled now.",
              registry=self.registry).set_function(in_flight)
        Gauge("password_checks_waiting", "Password hashes and checks queued for a bcrypt thread.",
              registry=self.registry).set_function(password_checks_waiting)
        self._database_unavailable = Counter(
            "database_unavailable_responses",
            "Requests answered 503 because the database did not answer in time.", registry=self.registry)
        self._request_children: dict = {}
        self._latency_children: dict = {}

    def observe(self, handler) -> None:
        """Records one finished request (called from the Application's log_function)."""
        status = handler.get_status()
        cls = type(handler)
        counter = self._request_children.get((cls, status))
        if counter is None:
            counter = self._requests.labels(self._route_of.get(cls, UNMATCHED_ROUTE), str(status))
            self._request_children[(cls, status)] = counter
        counter.inc()
        latency = self._latency_children.get(cls)
        if latency is None:
            latency = self._latency.labels(self._route_of.get(cls, UNMATCHED_ROUTE))
            self._latency_children[cls] = latency
        latency.observe(handler.request.request_time())

    def database_unavailable(self) -> None:
        self._database_unavailable.inc()
