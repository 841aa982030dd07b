"""Prometheus metrics of one Application, served at GET /metrics.

Each Application has its own CollectorRegistry (tests build many apps; the global
registry would make the second one fail on duplicate names). Requests are labelled by
route PATTERN (``/video/{video_id}/play``), never by raw path, so ids cannot grow the
label set; a path no route matches is ``unmatched``.

**One process** (the default): the per-request figures are plain counters in dicts,
added to on the event loop (the only thread that finishes requests, so no lock is
needed), and turned into Prometheus metric families only when /metrics is scraped
(``RequestCollector``). prometheus_client's own Counter and Histogram take a lock and walk
the buckets on every observation; this way it costs a few dict operations (the saving:
bench/README.md). Gauges read their function at each scrape.

**Several workers** (``WEB_CONCURRENCY`` above 1): a scrape reaches one worker, so every
figure goes to prometheus_client's multiprocess files instead (``share_between_processes``,
called by the parent before it forks) and /metrics answers with the sum over every
worker's files (``MultiProcessCollector``). Requests are still counted in the same dicts
(a file write takes a lock and costs far more than a dict update); every
``SHARE_SECONDS``, and in the worker that answers a scrape just before it does, what
was counted since goes into the worker's files (``SharedRequestFiles``) and the gauges are
sampled from their functions. Each gauge says how workers combine (``combine``: ``livesum``
adds the living workers, ``max`` takes the largest, ``sum`` keeps dead workers' last values).

Adding a metric is one line in ``Metrics.__init__`` with ``self.counter``, ``self.gauge`` or
``self.histogram``: the same line works in both modes.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from tornado.ioloop import PeriodicCallback

UNMATCHED_ROUTE = "unmatched"
# From a fast health check to a slow bcrypt login under load (seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# With several workers: how often each worker writes its counts and gauges to its files (seconds).
SHARE_SECONDS = 1.0
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How a gauge's values of several workers make one (prometheus_client's multiprocess_mode;
# live*: only the workers still running).
Combine = Literal["livesum", "livemax", "livemin", "liveall", "livemostrecent", "sum", "max", "min", "all",
                  "mostrecent"]
SCRAPE_ATTEMPTS = 3


def route_label(pattern: str) -> str:
    """`/video/(?P<video_id>[^/]+)/stream` -> `/video/{video_id}/stream`, `/openapi\\.json` -> `/openapi.json`."""
    label = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
    label = re.sub(r"\([^)]*\)", "{file}", label)
    return re.sub(r"\\(.)", r"\1", label)


def share_between_processes(directory: str) -> None:
    """Every metric made from now on, in this process and in the ones it forks, is kept in
    ``directory`` (one file per process and kind). prometheus_client picks its value class
    when it is first imported, from PROMETHEUS_MULTIPROC_DIR; this process imported it long
    before, so the class is set here too. Call it before forking the workers."""
    os.environ[MULTIPROC_DIR_VARIABLE] = directory
    values.ValueClass = values.MultiProcessValue()


def keep_in_process() -> None:
    """One process: its metrics stay in memory even if PROMETHEUS_MULTIPROC_DIR is set
    (prometheus_client would otherwise write every value to a file)."""
    values.ValueClass = values.MutexValue


def mark_process_dead(pid: int, directory: str) -> None:
    """A worker has exited: its ``live*`` gauges stop counting (its counters stay)."""
    multiprocess.mark_process_dead(pid, directory)


@dataclasses.dataclass
class ConnectionCounts:
    """The HTTP server's connections (server/connection.py keeps them)."""

    open: int = 0
    refused: int = 0  # closed at once, past MAX_CONNECTIONS
    on_refused: Callable[[], object] | None = None  # the metric's counter, when there is one

    def refuse(self) -> None:
        self.refused += 1
        if self.on_refused is not None:
            self.on_refused()


class Metrics:
    def __init__(self, routes: Iterable[Sequence[Any]], in_flight: Callable[[], float],
                 password_checks_waiting: Callable[[], float], plays_dropped: Callable[[], float] = lambda: 0,
                 watch_time_dropped: Callable[[], float] = lambda: 0,
                 shared_dir: str | None = None, connections: ConnectionCounts | None = None):
        """``routes``: (pattern, handler class) pairs; ``in_flight``, ``password_checks_waiting``,
        ``plays_dropped`` and ``watch_time_dropped``: functions read at each scrape. ``shared_dir``: the multiprocess
        directory (see ``share_between_processes``), or None for one process; ``connections``:
        the HTTP server's counts."""
        self.shared_dir = shared_dir
        # What /metrics shows: this app's own metrics, or every worker's files (read only at
        # a scrape: no auto_describe, which would read them at registration too).
        self.registry = CollectorRegistry(auto_describe=shared_dir is None)
        # Where the metric objects register: the same registry with one process; with
        # several, none that is shown (their values reach /metrics through the files).
        self._own = self.registry if shared_dir is None else CollectorRegistry(auto_describe=True)
        self._sampled: list[tuple[Gauge, Callable[[], float]]] = []
        self._sampler: PeriodicCallback | None = None
        self._route_of = {handler: route_label(pattern) for pattern, handler, *_ in routes}
        # (handler class, status) -> requests; handler class -> [count per bucket (the last
        # one past every bound), ..., sum of seconds]. With several workers: since the last share.
        self._requests: dict[tuple[type, int], int] = {}
        self._latency: dict[type, list] = {}
        self._shared: SharedRequestFiles | None = None
        if shared_dir is None:
            self.registry.register(RequestCollector(self))
        else:
            multiprocess.MultiProcessCollector(self.registry, path=shared_dir)
            self._shared = SharedRequestFiles()

        # The metrics themselves: one line each.
        self.gauge("http_requests_in_flight", "Requests being handled now.", in_flight, combine="livesum")
        self.gauge("password_checks_waiting", "Password hashes and checks queued or running for a bcrypt "
                   "thread (past PASSWORD_QUEUE_LIMIT new ones answer 503).", password_checks_waiting,
                   combine="livesum")
        self.gauge("plays_dropped", "Plays dropped since start: the play buffer was full, or a batch write "
                   "failed (only ever grows while the process runs).", plays_dropped, combine="sum")
        self.gauge("watch_time_dropped", "Progress reports whose watch time was left out of the stats since start: "
                   "the sums waiting for the plays flush were full (only ever grows while the process runs).",
                   watch_time_dropped, combine="sum")
        self._database_unavailable = self.counter(
            "database_unavailable_responses", "Requests answered 503 because the database did not answer in time.")
        self.connections = counts = connections or ConnectionCounts()
        self.gauge("http_connections_open", "HTTP connections open now (at most MAX_CONNECTIONS).",
                   lambda: counts.open, combine="livesum")
        counts.on_refused = self.counter(
            "http_connections_refused", "New connections closed at once because MAX_CONNECTIONS were already open.").inc

    # ----- declaring metrics (the same in both modes) ---------------------------------------

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, labelnames=labels, registry=self._own)

    def histogram(self, name: str, documentation: str, buckets: Sequence[float],
                  labels: Sequence[str] = ()) -> Histogram:
        return Histogram(name, documentation, labelnames=labels, buckets=buckets, registry=self._own)

    def gauge(self, name: str, documentation: str, read: Callable[[], float], combine: Combine) -> Gauge:
        """A gauge whose value is ``read()``: at each scrape with one process; sampled into
        the worker's file with several, combined across workers as ``combine`` says
        (prometheus_client's multiprocess_mode: livesum, livemax, max, min, sum, ...)."""
        gauge = Gauge(name, documentation, registry=self._own, multiprocess_mode=combine)
        if self.shared_dir is None:
            gauge.set_function(read)
        else:
            self._sampled.append((gauge, read))
        return gauge

    # ----- recording ------------------------------------------------------------------------

    def observe(self, handler: Any) -> None:
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

    # ----- reading --------------------------------------------------------------------------

    def start(self) -> None:
        """With several workers: shares the counts and gauges every SHARE_SECONDS (on the loop)."""
        if self.shared_dir is not None and self._sampler is None:
            self._sampler = PeriodicCallback(self.sample, SHARE_SECONDS * 1000)
            self._sampler.start()

    def stop(self) -> None:
        """Stops sharing, after a last share (call it once the requests are done)."""
        self.sample()
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def sample(self) -> None:
        """Writes this worker's counts since the last time, and its gauges, to its files
        (with several workers; nothing otherwise)."""
        if self._shared is not None:
            requests, self._requests = self._requests, {}
            latency, self._latency = self._latency, {}
            self._shared.add(requests, latency, self.route_of)
        for gauge, read in self._sampled:
            gauge.set(read())

    def render(self) -> bytes:
        """The scrape: Prometheus' text format, for every worker when they share files."""
        self.sample()
        for attempt in range(SCRAPE_ATTEMPTS):
            try:
                return generate_latest(self.registry)
            except struct.error:
                # A file another worker is creating this very moment (prometheus_client
                # opens it empty, then sizes it): read them all again.
                if attempt == SCRAPE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")


class SharedRequestFiles:
    """The request counters of one worker in its multiprocess files: the values
    prometheus_client's own Counter and Histogram would write (same file kinds, names, labels
    and help, so MultiProcessCollector merges them alike), added to a batch at a time."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[str, ...]], Any] = {}

    def _value(self, kind: str, metric: str, sample: str, labelnames: tuple[str, ...],
               labelvalues: tuple[str, ...], documentation: str) -> Any:
        key = (sample, labelvalues)
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = values.ValueClass(kind, metric, sample, labelnames, labelvalues, documentation)
        return value

    def add(self, requests: dict[tuple[type, int], int], latency: dict[type, list],
            route_of: Callable[[type], str]) -> None:
        for (cls, status), count in requests.items():
            self._value("counter", "http_requests", "http_requests_total", ("route", "status"),
                        (route_of(cls), str(status)), _REQUESTS_HELP).inc(count)
        metric = "http_request_duration_seconds"
        for cls, counts in latency.items():
            route = route_of(cls)
            # One value per bucket, not cumulative: the collector accumulates them and counts
            # _count. Every bucket is written, as Histogram does (the collector shows those it finds).
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts[:-1], strict=True):
                self._value("histogram", metric, metric + "_bucket", ("route", "le"),
                            (route, floatToGoString(bound)), _LATENCY_HELP).inc(count)
            self._value("histogram", metric, metric + "_sum", ("route",), (route,), _LATENCY_HELP).inc(counts[-1])


class RequestCollector:
    """The request counters of one Metrics, as Prometheus metric families, at scrape time."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily("http_requests", _REQUESTS_HELP, labels=["route", "status"]),
                HistogramMetricFamily("http_request_duration_seconds", _LATENCY_HELP, labels=["route"])]

    def collect(self) -> list[Metric]:
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


_REQUESTS_HELP = "HTTP requests answered, by route pattern and status."
_LATENCY_HELP = "Time from reading a request to finishing its answer, by route pattern."
