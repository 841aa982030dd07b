"""Traces (server/tracing.py): off unless the standard OTEL_* variables ask for them, and
then one server span per request, named by its route, with its database commands under it.

The spans go to the SDK's in-memory exporter. The database is MongoDB's wire-protocol mock
(mockupdb) behind a real client made as the server makes it (``connect``), for each driver:
the embedded store does not speak the wire protocol, so only a client does monitored commands.
The server runs on a loop of its own (``loop_in_thread``) and is called with blocking
requests, so that no client span of the test's own mixes in.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from mockupdb import MockupDB
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from server import tracing
from server.app import VideoApp, build_services
from server.config import ConfigError, load_config
from server.database import close, connect
from tests.support import REPO_ROOT, TEST_SECRET, ServerProcess, close_server, listen, loop_in_thread, request
from tests.support.wire import answer_housekeeping

PLAYBACK_TOKEN = "playback-token-that-must-not-leak"
VIDEO_ID = "a" * 24
REQUEST_ID = "trace-request-0001"
SPAN_WAIT_SECONDS = 10


# ----- off unless asked for -------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "video-app"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_traces_are_recorded_only_when_the_standard_variables_ask(environ, expected):
    assert tracing.requested(environ) is expected


def test_without_the_variables_nothing_of_opentelemetry_is_even_imported():
    script = (
        "import sys\n"
        "import server.__main__\n"
        "from server import tracing\n"
        "assert tracing.start({}) is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,  # noqa: S603
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("environ", "message"), [
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER must name exporters among otlp, console"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf"),
])
def test_an_exporter_this_server_cannot_use_is_a_configuration_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        tracing.start(environ)


def test_the_server_refuses_to_start_with_an_unusable_exporter_and_says_why():
    with ServerProcess({"OTEL_TRACES_EXPORTER": "jaeger"}) as server:
        server.spawn()
        assert server.wait(timeout=30) == 2, server.stderr
    assert "OTEL_TRACES_EXPORTER must name exporters" in server.stderr
    assert "Traceback" not in server.stderr


# ----- one request, its spans -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans():
    exporter = InMemorySpanExporter()
    traces = tracing.start({}, exporter=exporter)
    yield exporter
    traces.close()


def answer(request) -> bool:
    # Anything else unanswered: the driver times out, and the request answers 503.
    return answer_housekeeping(request) or False


@pytest.fixture
def wire_uri():
    mock = MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0, "maxWireVersion": 21})
    mock.autoresponds(answer)
    port = mock.run()
    yield f"mongodb://127.0.0.1:{port}/video_app_traces"
    mock.stop()


def server_span_finished(exporter: InMemorySpanExporter) -> tuple:
    """The spans once the server span has ended: it ends just after the answer is sent,
    so the client may have the answer a moment before."""
    deadline = time.monotonic() + SPAN_WAIT_SECONDS
    while True:
        finished = exporter.get_finished_spans()
        if any(s.kind == SpanKind.SERVER for s in finished) or time.monotonic() > deadline:
            return finished
        time.sleep(0.01)


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
def test_one_request_is_one_server_span_with_its_database_commands_under_it(spans, wire_uri, driver):
    config = load_config(env={}, mongodb_uri=wire_uri, mongodb_driver=driver, mongodb_timeout_ms=5000,
                         jwt_secrets=(TEST_SECRET,))
    with loop_in_thread("traced-server") as thread, ThreadPoolExecutor(max_workers=1) as executor:
        async def start():
            client, db = connect(config)
            app = VideoApp(config, build_services(config, db, executor))
            server, port = listen(app)
            return client, server, port

        client, server, port = thread.run(start())
        try:
            spans.clear()
            reply = request(port, "GET", f"/readyz?token={PLAYBACK_TOKEN}", headers={"X-Request-ID": REQUEST_ID})
            assert reply.status == 200, reply.body
            finished = server_span_finished(spans)
            [server_span] = [s for s in finished if s.kind == SpanKind.SERVER]
            assert server_span.name == "GET /readyz"
            assert server_span.attributes["http.route"] == "/readyz"
            assert server_span.attributes["request_id"] == REQUEST_ID
            database_spans = [s for s in finished if s.kind == SpanKind.CLIENT]
            assert [s.name for s in database_spans] == ["video_app_traces.ping"]
            for span in database_spans:
                assert span.parent is not None and span.parent.span_id == server_span.context.span_id
                assert span.context.trace_id == server_span.context.trace_id
            assert len(finished) == 1 + len(database_spans)

            # A route with an id and a playback token in the query: the pattern names the
            # span, and neither the token nor the query is in any attribute.
            spans.clear()
            path = f"/video/{VIDEO_ID}/stream?token={PLAYBACK_TOKEN}&expires=1"
            reply = request(port, "GET", path, headers={"Authorization": f"Bearer {PLAYBACK_TOKEN}"})
            assert 400 <= reply.status < 500
            [server_span] = [s for s in server_span_finished(spans) if s.kind == SpanKind.SERVER]
            assert server_span.name == "GET /video/{video_id}/stream"
            assert server_span.attributes["http.route"] == "/video/{video_id}/stream"
            for key, value in server_span.attributes.items():
                assert PLAYBACK_TOKEN not in str(value), key
                assert "expires=" not in str(value), key
            assert PLAYBACK_TOKEN not in server_span.name
            assert len(server_span.attributes["request_id"]) == 32  # one of our own

            # No route: the method alone names it (unbounded paths never become span names).
            spans.clear()
            assert request(port, "GET", f"/no/such/{PLAYBACK_TOKEN}").status == 404
            [server_span] = [s for s in server_span_finished(spans) if s.kind == SpanKind.SERVER]
            assert server_span.name == "GET"
        finally:
            thread.run(close_server(server))
            thread.run(close(client))


def test_the_server_process_traces_when_the_environment_asks_and_flushes_at_shutdown():
    # The console exporter writes each span as JSON on stdout, which ServerProcess keeps with stderr.
    with ServerProcess({"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "video-app-test"}) as server:
        server.start()
        reply = server.request("GET", f"/healthz?token={PLAYBACK_TOKEN}", headers={"X-Request-ID": REQUEST_ID})
        assert reply.status == 200
        assert server.stop() == 0, server.stderr
        output = server.stderr
    assert '"name": "GET /healthz"' in output
    assert f'"request_id": "{REQUEST_ID}"' in output
    assert '"service.name": "video-app-test"' in output
    assert PLAYBACK_TOKEN not in output
