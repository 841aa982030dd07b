"""The HTTP/1.1 layer itself (server/connection.py): pipelining, HTTP/1.0, malformed and
oversized heads, 100-continue, timeouts, clients that leave, and the answers' framing
(chunked, HEAD, 304) for any Tornado handler."""

import asyncio
import gc
import json
import weakref

import pytest
import tornado.web
from tornado.netutil import bind_sockets

from handlers.openapi import openapi_json
from server.connection import HTTPServer
from tests.support import HOST, PASSWORD, open_raw_connection, wait_until


async def _read_response(reader) -> tuple[int, dict, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10), 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), 10)
            if size == 0:
                return status, headers, body
            body += chunk[:-2]
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 10)
    return status, headers, body


async def _closed(reader, within: float = 10) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True


@pytest.mark.gen_test
async def test_pipelined_requests_are_answered_in_order(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        signup = json.dumps({"name": "Pip", "email": "pip@example.com", "password": PASSWORD}).encode()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /auth/signup HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" % (len(signup), signup))
        answers = [await _read_response(reader) for _ in range(4)]
        assert [status for status, _, _ in answers] == [200, 404, 201, 200]
        assert json.loads(answers[0][2]) == {"status": "ok"}
        assert json.loads(answers[3][2])["status"] == "running"
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_http_1_0_closes_unless_asked_to_keep_alive(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        status, headers, _ = await _read_response(reader)
        assert status == 200 and "connection" not in headers
        assert await _closed(reader)
    finally:
        writer.close()
    reader, writer = await open_raw_connection(base_url)
    try:
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = await _read_response(reader)
            assert status == 200 and headers["connection"] == "Keep-Alive"
    finally:
        writer.close()


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded: line\r\n\r\n",
])
@pytest.mark.gen_test
async def test_a_malformed_request_is_a_json_400_and_the_connection_closes(http_server, base_url, raw):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(raw)
        status, headers, body = await _read_response(reader)
        assert status == 400
        assert headers["connection"] == "close"
        assert "error" in json.loads(body)
        assert await _closed(reader)
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_a_malformed_request_after_a_good_one_is_refused_after_its_answer(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n")
        assert (await _read_response(reader))[0] == 200
        assert (await _read_response(reader))[0] == 400
        assert await _closed(reader)
    finally:
        writer.close()


@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(700))
    + b"\r\n",
    b"GET /" + b"p" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
])
@pytest.mark.gen_test
async def test_a_head_over_64_kib_is_a_431(http_server, base_url, head):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(head)
        status, headers, body = await _read_response(reader)
        assert status == 431 and headers["connection"] == "close"
        assert "too large" in json.loads(body)["error"]
        assert await _closed(reader)
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_a_head_that_never_ends_is_cut_off_at_twice_the_limit(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        for _ in range(20):
            writer.write(b"a" * 16_384)
            await writer.drain()
        status, _, _ = await _read_response(reader)
        assert status == 431
    finally:
        writer.close()


@pytest.mark.parametrize("config_overrides", [{"idle_connection_timeout_seconds": 0.5}])
@pytest.mark.gen_test(timeout=20)
async def test_a_client_dribbling_its_head_is_cut_off_after_the_idle_timeout(http_server, base_url, config_overrides):
    reader, writer = await open_raw_connection(base_url)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(40):  # a header line every 0.1 s: each byte in time, the head never done
            if reader.at_eof():
                break
            writer.write(b"X-Slow: 1\r\n")
            await asyncio.sleep(0.1)
        assert await _closed(reader, within=5)
        assert loop.time() - started < 3
    finally:
        writer.close()


@pytest.mark.parametrize("config_overrides", [{"idle_connection_timeout_seconds": 0.5}])
@pytest.mark.gen_test(timeout=20)
async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(http_server, base_url, config_overrides):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _read_response(reader))[0] == 200
        assert await _closed(reader, within=5)
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_expect_100_continue_gets_its_interim_answer_before_the_body_is_sent(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        body = json.dumps({"name": "Cont", "email": "cont@example.com", "password": PASSWORD}).encode()
        writer.write(b"POST /auth/signup HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(body)
        assert (await _read_response(reader))[0] == 201
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_expect_100_continue_to_an_early_answer_gets_the_answer_only(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"POST /auth/logout HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        status, _, _ = await _read_response(reader)
        assert status == 401
        writer.write(b"0123456789GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the body, dropped; then the next
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_client_leaving_while_its_request_is_handled_releases_it_at_once(http_server, base_url, app,
                                                                                   services, monkeypatch):
    answering = asyncio.Event()
    release = asyncio.Event()

    async def slow():
        answering.set()
        await release.wait()
        return True

    monkeypatch.setattr(services.health, "database_answers", slow)
    _, writer = await open_raw_connection(base_url)
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(answering.wait(), 10)
    assert app.inflight.count == 1
    writer.transport.abort()
    for _ in range(100):
        if app.inflight.count == 0:
            break
        await asyncio.sleep(0.05)
    assert app.inflight.count == 0
    release.set()


# ----- framing of any Tornado handler's answer ------------------------------------------

class Streamed(tornado.web.RequestHandler):
    async def get(self):
        self.write("first,")
        await self.flush()
        self.write("second")


class Cached(tornado.web.RequestHandler):
    def get(self):
        self.write("the same")  # Tornado's Etag: a 304 to If-None-Match

    head = get


@pytest.fixture
def plain_server(io_loop):
    server = HTTPServer(tornado.web.Application([("/streamed", Streamed), ("/cached", Cached)]))
    sockets = bind_sockets(0, HOST)
    server.add_sockets(sockets)
    yield f"http://{HOST}:{sockets[0].getsockname()[1]}"
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


@pytest.mark.gen_test
async def test_an_answer_flushed_in_parts_is_chunked_and_the_connection_stays(plain_server):
    reader, writer = await open_raw_connection(plain_server)
    try:
        for _ in range(2):
            writer.write(b"GET /streamed HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = await _read_response(reader)
            assert status == 200 and headers["transfer-encoding"] == "chunked"
            assert body == b"first,second"
        writer.write(b"GET /streamed HTTP/1.0\r\n\r\n")  # HTTP/1.0: not chunked, ends with the connection
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b"chunked" not in head.lower()
        assert await asyncio.wait_for(reader.read(), 10) == b"first,second"
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_head_and_304_answers_have_no_body(plain_server):
    reader, writer = await open_raw_connection(plain_server)
    try:
        writer.write(b"GET /cached HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await _read_response(reader)
        assert status == 200 and body == b"the same"
        writer.write(b"HEAD /cached HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /cached HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n" % headers["etag"].encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # HEAD: a length, no body
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 8" in head
        not_modified = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert not_modified.startswith(b"HTTP/1.1 304") and b"Transfer-Encoding" not in not_modified
        writer.write(b"GET /cached HTTP/1.1\r\nHost: x\r\n\r\n")  # nothing was left between them
        assert (await _read_response(reader))[2] == b"the same"
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_a_head_within_the_limit_may_arrive_in_pieces(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        for piece in (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 40_000, b"\r\nX-B: " + b"b" * 20_000,
                      b"\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_large_answer_to_a_slow_reader_arrives_whole_and_the_connection_stays(http_server, base_url):
    """The writes wait for the transport to take more (pause_writing / resume_writing)."""
    reader, writer = await open_raw_connection(base_url)
    try:
        for _ in range(2):
            writer.write(b"GET /docs/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.5)  # the answer piles up behind a reader that does not read
            status, headers, body = await _read_response(reader)
            assert status == 200 and len(body) == int(headers["content-length"]) > 1_000_000
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_an_answer_of_unknown_length_to_http_1_0_ends_with_the_connection_even_if_kept_alive(plain_server):
    reader, writer = await open_raw_connection(plain_server)
    try:
        writer.write(b"GET /streamed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b"Keep-Alive" not in head
        assert await asyncio.wait_for(reader.read(), 10) == b"first,second"
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_two_content_lengths_are_explained_by_the_handler_and_the_connection_closes(http_server, base_url):
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"POST /auth/signup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        status, headers, body = await _read_response(reader)
        assert status == 400 and headers["connection"] == "close"
        assert "one whole number" in json.loads(body)["error"]
        assert await _closed(reader)
    finally:
        writer.close()


@pytest.mark.gen_test
async def test_a_closed_connection_is_freed_at_once_without_the_garbage_collector(http_server, base_url):
    # A crowd of short connections, each left to the collector as a cycle (the parser holds
    # the protocol's bound methods), made pauses of 20-100 ms under load.
    gc.collect()
    gc.disable()
    try:
        reader, writer = await open_raw_connection(base_url)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _read_response(reader))[0] == 200
        (protocol,) = http_server.protocols
        freed = weakref.ref(protocol)
        del protocol
        writer.close()
        await wait_until(lambda: not http_server.protocols)
        await asyncio.sleep(0)  # the transport lets go of its protocol after connection_lost
        assert freed() is None
    finally:
        gc.enable()


@pytest.mark.gen_test
async def test_a_client_that_does_not_read_its_answers_has_no_more_of_them_made_until_it_does(http_server, base_url):
    # Tornado read a next request only once the answer before was sent; here too, or a client
    # pipelining requests it never reads would have the server buffer every answer.
    count = 200  # some 13 MB of answers, far past what the sockets' buffers hold
    reader, writer = await open_raw_connection(base_url)
    try:
        writer.write(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        (protocol,) = http_server.protocols
        await wait_until(lambda: protocol.writing_paused)
        await asyncio.sleep(0.3)  # time for every queued request to be answered, were they taken
        answer_bytes = len(openapi_json().encode())
        assert protocol.transport.get_write_buffer_size() < 64 * 1024 + 2 * answer_bytes
        answers = [await _read_response(reader) for _ in range(count)]  # reading lets it go on
        assert [status for status, _, _ in answers] == [200] * count
        assert all(len(body) == answer_bytes for _, _, body in answers)
    finally:
        writer.close()
