"""OpenTelemetry traces of requests and database operations, when the operator asks for them.

Asked for: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` is set (and ``OTEL_SDK_DISABLED`` is not true, and the exporter
is not ``none``). Otherwise ``start`` returns None having imported nothing of OpenTelemetry,
so requests cost what they cost without it.

When asked for, the standard ``OTEL_*`` variables configure everything: the exporters
(``OTEL_TRACES_EXPORTER``: ``otlp`` over HTTP/protobuf, the default, and ``console``), where
and how OTLP goes (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``…_HEADERS``, ``…_TIMEOUT``), the
service (``OTEL_SERVICE_NAME``, default ``video-app``; ``OTEL_RESOURCE_ATTRIBUTES``), sampling
(``OTEL_TRACES_SAMPLER``) and the batch queue (``OTEL_BSP_*``: bounded, 2048 spans by
default, exported from the SDK's own thread, never on the event loop).

Each request is one server span named by its route pattern (``GET /video/{video_id}/play``,
as /metrics labels it), with ``http.route`` and ``request_id`` (the ``X-Request-ID`` of its
answer and log lines) as attributes; the query string, where playback tokens travel, is
taken out of every URL attribute. Each MongoDB command (PyMongo's command monitoring, which
Motor and PyMongo's own async client both go through) is a client span under it, named
``<database>.<command>``, without the statement. The embedded store (no MONGODB_URI) does
not speak the wire protocol, so it gives no database spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from server.config import ConfigError
from server.metrics import UNMATCHED_ROUTE

if TYPE_CHECKING:  # only for the annotations: nothing is imported at run time unless asked for
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_SERVICE_NAME = "video-app"
EXPORTERS = ("otlp", "console")
SUPPORTED_OTLP_PROTOCOL = "http/protobuf"
# The request's id, as in its log lines and its X-Request-ID header.
REQUEST_ID_ATTRIBUTE = "request_id"
# Attributes that hold the request's URL: each keeps it without its query string.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)


def requested(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces (the standard OpenTelemetry variables)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(environ)
    if exporters == ["none"]:
        return False
    return bool(environ.get("OTEL_TRACES_EXPORTER", "").strip()
                or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
                or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip())


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    return names or ["otlp"]


class Tracing:
    """Traces being recorded: the provider and the instrumentations to stop at shutdown."""

    def __init__(self, provider: TracerProvider, instrumentors: list[Any]):
        self.provider = provider
        self._instrumentors = instrumentors

    def close(self) -> None:
        """Stops recording and sends what is queued (blocking: at most the exporter's timeout)."""
        for instrumentor in self._instrumentors:
            instrumentor.uninstrument()
        self.provider.shutdown()

    async def stop(self, timeout_seconds: float) -> None:
        """``close`` in a daemon thread, waited for at most ``timeout_seconds``: neither the
        loop nor the process' exit waits longer for a collector that does not answer."""
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()

        def tell() -> None:
            if not closed.done():
                closed.set_result(None)

        def close_then_tell() -> None:
            try:
                self.close()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(tell)

        threading.Thread(target=close_then_tell, name="traces-flush", daemon=True).start()
        with contextlib.suppress(TimeoutError):  # the spans still queued are given up
            await asyncio.wait_for(closed, timeout_seconds)


def start(environ: Mapping[str, str] | None = None, *, exporter: SpanExporter | None = None) -> Tracing | None:
    """Starts tracing when ``environ`` (default: the process') asks for it; None otherwise.
    Call it before the database client is made (PyMongo's monitoring applies to clients made
    afterwards). ``exporter``: spans go there, one by one as they end, whatever the
    environment says (the tests' in-memory exporter). Raises ConfigError for an exporter or
    an OTLP protocol this server cannot use."""
    environ = os.environ if environ is None else environ
    if exporter is None and not requested(environ):
        return None

    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.tornado import TornadoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    processors: list[SpanProcessor] = [SimpleSpanProcessor(exporter)] if exporter is not None \
        else _processors(environ)
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": DEFAULT_SERVICE_NAME}
    # Shut down by Tracing.close (at SIGTERM), not at interpreter exit, which workers skip.
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    tornado = TornadoInstrumentor()
    tornado.instrument(tracer_provider=provider, server_request_hook=_describe_request)
    pymongo = PymongoInstrumentor()
    pymongo.instrument(tracer_provider=provider)
    return Tracing(provider, [tornado, pymongo])


def _processors(environ: Mapping[str, str]) -> list[SpanProcessor]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    names = _exporter_names(environ)
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ConfigError(f"OTEL_TRACES_EXPORTER must name exporters among {', '.join(EXPORTERS)} (or be none), "
                          f"not {', '.join(unknown)}")
    processors: list[SpanProcessor] = []
    if "otlp" in names:
        protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or SUPPORTED_OTLP_PROTOCOL).strip()
        if protocol != SUPPORTED_OTLP_PROTOCOL:
            raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be {SUPPORTED_OTLP_PROTOCOL} "
                              f"(the exporter installed), not {protocol!r}")
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in names:
        processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    return processors


def _describe_request(span: Any, handler: Any) -> None:
    """The Tornado instrumentation's hook, as the request's span starts: its name and route
    as /metrics has them, its request id, and no query string anywhere."""
    if not span.is_recording():
        return
    request = handler.request
    metrics = getattr(handler.application, "metrics", None)
    route = metrics.route_of(type(handler)) if metrics is not None else None
    if route is not None and route != UNMATCHED_ROUTE:
        span.update_name(f"{request.method} {route}")
        span.set_attribute("http.route", route)
    else:
        span.update_name(request.method or "HTTP")
    request_id = getattr(handler, "request_id", None)
    if isinstance(request_id, str):
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    for key in _QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")
