"""The access log on its own: the lines it writes, when it writes them, and what it leaves out."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging

import pytest
from tornado.httputil import HTTPHeaders

from server.logs import PATH_CHARS, USER_AGENT_CHARS, AccessLog, access_log
from tests.support import open_raw_connection


class FakeRequest:
    def __init__(self, method: str, path: str, headers: dict | None = None, remote_ip: str = "203.0.113.7"):
        self.method = method
        self.path = path
        self.headers = HTTPHeaders(headers or {})
        self.remote_ip = remote_ip

    def request_time(self) -> float:
        return 0.012345


class FakeHandler:
    def __init__(self, status: int, path: str = "/dashboard", method: str = "GET", request_id: str = "rid-1",
                 headers: dict | None = None):
        self.request = FakeRequest(method, path, headers)
        self.request_id = request_id
        self._status = status

    def get_status(self) -> int:
        return self._status


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture(autouse=True)
def access_lines_enabled():
    """As configure_logging() leaves it in the server: INFO and up."""
    before = access_log.level
    access_log.setLevel(logging.INFO)
    yield
    access_log.setLevel(before)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_line_a_request_written_together_after_the_loop_turns():
    stream = CountingStream()
    access = AccessLog(stream)

    async def three_requests():
        for status in (200, 404, 503):
            access(FakeHandler(status, request_id=f"rid-{status}"))
        assert stream.getvalue() == ""  # not yet: the lines of this turn go out together
        await asyncio.sleep(0)

    before = dt.datetime.now(dt.UTC)
    asyncio.run(three_requests())
    assert stream.writes == 1
    entries = lines(stream)
    assert [(e["request_id"], e["status"], e["level"]) for e in entries] == [
        ("rid-200", 200, "info"), ("rid-404", 404, "info"), ("rid-503", 503, "error")]
    for entry in entries:
        assert entry["logger"] == "app.access" and entry["message"] == "request"
        assert entry["method"] == "GET" and entry["path"] == "/dashboard" and entry["duration_ms"] == 12.35
        logged_at = dt.datetime.fromisoformat(entry["time"])
        assert logged_at.tzinfo is not None
        assert before - dt.timedelta(seconds=1) <= logged_at <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize("path", ['/video/"quoted"\\/stream', "/vidéo/\u2028/x", "/\x00\x1f\x7f"])
def test_any_path_comes_out_as_valid_json_with_the_same_text(path):
    stream = io.StringIO()
    access = AccessLog(stream)

    async def one_request():
        access(FakeHandler(200, path=path, method='G"T'))

    asyncio.run(one_request())
    access.flush()
    [entry] = lines(stream)
    assert entry["path"] == path and entry["method"] == 'G"T'
    assert stream.getvalue().isascii()


def logged_once(access: AccessLog, stream: io.StringIO, handler: FakeHandler) -> dict:
    async def one_request():
        access(handler)

    asyncio.run(one_request())
    access.flush()
    [entry] = lines(stream)
    return entry


@pytest.mark.parametrize(("trust_proxy", "expected"), [(False, "203.0.113.7"), (True, "198.51.100.9")])
def test_the_client_address_honours_trust_proxy(trust_proxy, expected):
    stream = io.StringIO()
    headers = {"X-Forwarded-For": "10.0.0.1, 198.51.100.9", "User-Agent": "VideoApp/1.4 (iPhone)"}
    entry = logged_once(AccessLog(stream, trust_proxy=trust_proxy), stream, FakeHandler(200, headers=headers))
    assert entry["client"] == expected
    assert entry["user_agent"] == "VideoApp/1.4 (iPhone)"


def test_the_user_agent_is_cut_short_and_stays_valid_json():
    stream = io.StringIO()
    agent = 'evil"\\agent\u2028é' + "x" * 5000
    entry = logged_once(AccessLog(stream), stream, FakeHandler(200, headers={"User-Agent": agent}))
    assert entry["user_agent"] == agent[:USER_AGENT_CHARS]
    assert stream.getvalue().isascii()
    assert len(stream.getvalue()) < 1000


SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9.c2VjcmV0LXNpZ25hdHVyZQ"
OPAQUE_SECRET = "s3cr3t-opaque-value"


@pytest.mark.parametrize(("path", "headers"), [
    (f"/video/x/stream%3Ftoken={OPAQUE_SECRET}", {}),  # a query percent-encoded into the path
    (f"/video/x/stream%3ftoken%3d{OPAQUE_SECRET}", {}),
    (f"/video/x;token={OPAQUE_SECRET}", {}),
    (f"/video/{SECRET}/stream", {}),
    ("/dashboard", {"User-Agent": f"curl Bearer {OPAQUE_SECRET}"}),
    ("/dashboard", {"User-Agent": f"app ?access_token={OPAQUE_SECRET}"}),
    ("/dashboard", {"User-Agent": f"app {SECRET}"}),
])
def test_the_access_line_passes_the_same_redaction_as_every_other_line(path, headers):
    stream = io.StringIO()
    entry = logged_once(AccessLog(stream), stream, FakeHandler(200, path=path, headers=headers))
    assert "[redacted]" in entry["path"] + entry["user_agent"]
    for part in (OPAQUE_SECRET, *SECRET.split(".")):
        assert part not in stream.getvalue()


def test_a_long_path_or_method_is_cut_so_its_redaction_costs_a_bounded_time():
    stream = io.StringIO()
    path = "/" + "token" * 10000
    entry = logged_once(AccessLog(stream), stream, FakeHandler(404, path=path, method="X" * 5000))
    assert entry["path"] == path[:PATH_CHARS]
    assert len(entry["method"]) < 20
    assert len(stream.getvalue()) < 2000


def test_no_user_agent_is_an_empty_string():
    stream = io.StringIO()
    assert logged_once(AccessLog(stream), stream, FakeHandler(200))["user_agent"] == ""


def test_the_access_logger_level_still_decides():
    access_log.setLevel(logging.WARNING)
    stream = io.StringIO()
    access = AccessLog(stream)

    async def requests():
        access(FakeHandler(200))
        access(FakeHandler(500))

    asyncio.run(requests())
    access.flush()
    assert [e["status"] for e in lines(stream)] == [500]


def test_a_broken_log_stream_does_not_fail_the_request():
    stream = io.StringIO()
    access = AccessLog(stream)

    async def request():
        access(FakeHandler(200))

    asyncio.run(request())
    stream.close()
    access.flush()  # no exception
    access.flush()  # and nothing left pending


@pytest.fixture
def json_logging():
    """The server's logging set-up (configure_logging) for one test, written to a buffer."""
    from server.logs import configure_logging
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging()
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:], level = saved
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.gen_test
async def test_no_secret_reaches_any_log_line_even_from_tornado_about_a_malformed_request(
        http_server, base_url, json_logging):
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9.c2VjcmV0LXNpZ25hdHVyZQ"
    for raw in (
        f"GET /auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\r\n\r\n",  # a stray CR
        f"GET /video/x/play?token={secret}\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpodW50ZXIy\x01\r\n\r\n",
    ):
        reader, writer = await open_raw_connection(base_url)
        writer.write(raw.encode("latin-1"))
        await asyncio.wait_for(reader.read(), 10)
        writer.close()
    logged = json_logging()
    text = json.dumps(logged)
    assert any("Malformed" in line["message"] for line in logged), logged  # Tornado's own lines were there
    assert "[redacted]" in text
    for part in [*secret.split("."), "dXNlcjpodW50ZXIy"]:
        assert part not in text


@pytest.mark.gen_test
async def test_a_token_in_a_query_string_or_a_path_never_reaches_the_access_log(app, http_server, base_url):
    stream = io.StringIO()
    app.access_log = AccessLog(stream)
    for raw in (
        f"GET /video/x/play?token={OPAQUE_SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /video/x/play?a=1&token={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /video/x/stream%3Ftoken={OPAQUE_SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET http://x/video/x/stream?token={OPAQUE_SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /auth/me HTTP/1.1\r\nHost: x\r\nUser-Agent: Bearer {OPAQUE_SECRET}\r\n\r\n",
    ):
        reader, writer = await open_raw_connection(base_url)
        writer.write(raw.encode("latin-1"))
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
    app.access_log.flush()
    logged = lines(stream)
    assert len(logged) == 5
    for part in (OPAQUE_SECRET, *SECRET.split(".")):
        assert part not in stream.getvalue()


def test_redaction_leaves_ordinary_words_alone():
    from server.logs import redact
    line = "This playback token has expired; basic checks passed; Bearer <token>"
    assert redact(line) == line
