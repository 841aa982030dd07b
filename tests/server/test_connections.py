"""What a client sees on its connection: early answers, keep-alive, lingering close, aborted uploads."""

import asyncio
import gc
import json

import pytest

from handlers.base import BaseHandler
from tests.support import PASSWORD, open_raw_connection, wait_until


async def _read_response(reader) -> tuple[int, dict, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 10)
    return status, headers, body


def _request(method, path, body=b"", headers=()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


SIGNUP = json.dumps({"name": "Ann", "email": "ann@example.com", "password": PASSWORD}).encode()


@pytest.mark.parametrize("first, status", [
    (_request("POST", "/auth/signup", b"x" * 100_000), 413),  # declared length over the limit
    (_request("GET", "/dashboard"), 401),
    (_request("POST", "/auth/logout", SIGNUP), 401),
    (_request("POST", "/nowhere", SIGNUP), 404),
    (_request("PUT", "/auth/signup", SIGNUP), 405),
    (_request("DELETE", "/dashboard"), 405),
    # A GET's body means nothing: read and dropped, or refused from its headers over the limit.
    (_request("GET", "/healthz", headers=["Content-Length: 0"]), 200),
    (_request("GET", "/healthz", b'{"ignored": true}'), 200),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200),
    (_request("GET", "/dashboard", b"x" * 100_000), 413),
])
@pytest.mark.gen_test(timeout=30)
async def test_the_connection_stays_usable_after_an_answer_to_a_bounded_body(http_server, base_url, first, status):
    """Early answers (from the headers, before the body is read) included."""
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(first)
        answered, headers, body = await _read_response(reader)
        assert answered == status
        assert ("error" in json.loads(body)) == (status >= 400)
        assert headers.get("connection", "").lower() != "close"
        writer.write(_request("POST", "/auth/signup", SIGNUP))  # the next request, same connection
        assert (await _read_response(reader))[0] == 201
    finally:
        writer.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_early_answer_to_a_chunked_body_says_the_connection_closes(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"POST /auth/logout HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        status, headers, _ = await _read_response(reader)
        assert status == 401 and headers["connection"].lower() == "close"
        writer.write(b"0\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed in order, no reset
    finally:
        writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_writes_8_mb_before_reading_gets_a_readable_413(http_server, base_url, database):
    reader, writer = await open_raw_connection(base_url)
    try:
        body = b"x" * (8 * 1024 * 1024)
        writer.write(_request("POST", "/auth/signup", body))
        await asyncio.wait_for(writer.drain(), 30)  # all of it sent before reading anything
        status, headers, answer = await _read_response(reader)
        assert status == 413
        assert "too large" in json.loads(answer)["error"]
        assert headers["connection"].lower() == "close"
    finally:
        writer.close()
    assert await database["users"].count_documents({}) == 0


def _live_handlers() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, BaseHandler))


@pytest.mark.gen_test(timeout=120)
async def test_uploads_cut_off_midway_leave_nothing_behind(http_server, base_url, app):
    async def aborted_upload():
        _, writer = await open_raw_connection(base_url)
        writer.write(_request("POST", "/auth/signup", b"{" + b" " * 999)[:-500])  # half the body
        await writer.drain()
        writer.transport.abort()

    before = _live_handlers()
    for _ in range(10):
        await asyncio.gather(*(aborted_upload() for _ in range(100)))
    # Until the server has noticed the closed connections (a moment, longer on a loaded machine).
    await wait_until(lambda: _live_handlers() - before < 5 and app.inflight.count == 0, within=60, interval=0.05)
    assert _live_handlers() - before < 5
    assert app.inflight.count == 0


# ----- bodies whose length cannot be known ---------------------------------------------

@pytest.mark.parametrize("framing, message", [
    *((b"Content-Length: " + value, "The Content-Length header must be one whole number")
      for value in (b"\xb2", b"5, 5", b"+5", b"-1", b"0x10", b" ")),
    (b"Content-Length: 5\r\nTransfer-Encoding: chunked", "both a Content-Length and a Transfer-Encoding"),
    (b"Transfer-Encoding: gzip", "only use the chunked transfer coding"),
])
@pytest.mark.gen_test(timeout=30)
async def test_a_body_whose_length_cannot_be_known_is_a_json_400(http_server, base_url, framing, message):
    """RFC 9112 section 6.3: the connection closes after the answer, its body unread."""
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"POST /auth/signup HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        status, headers, body = await _read_response(reader)
        assert status == 400
        assert message in json.loads(body)["error"]
        assert headers["connection"].lower() == "close"
    finally:
        writer.close()
