"""The HTTP/1.1 layer under Tornado's Application: an asyncio Protocol over httptools' parser.

Why: Tornado's own HTTP layer (IOStream's buffers and its reads by regular expression,
HTTP1Connection's coroutine and timeout per request, its header parsing and writing in
Python) was about half of the event loop's time on a cheap request (bench/README.md, issue
24). Here each connection is an ``asyncio.Protocol``: requests are parsed by httptools (the
llhttp C parser that uvicorn uses) and answers are written straight to the loop's transport
(uvloop's is C). Everything above the connection is Tornado's, reached only through its
public extension points: the Application is an ``httputil.HTTPServerConnectionDelegate``
(``start_request`` gives each request an ``HTTPMessageDelegate``), and each request's
connection is an ``httputil.HTTPConnection`` (``write_headers``, ``write``, ``finish``,
``set_close_callback``, and the ``context`` that ``HTTPServerRequest`` reads). No private
Tornado name is used (tests/server/test_tornado_adapter.py checks it).

What a connection does, as Tornado's did unless said:

- **Keep-alive and pipelining**: requests are answered one after another, in order; what a
  client sends ahead is parsed and queued, and reading pauses while the queue holds more
  than ``QUEUE_HIGH_WATER`` bytes or ``QUEUE_MAX_EVENTS`` events, and while the client does
  not read its answers (the transport's buffer over its high-water mark): no next request
  starts until it does. HTTP/1.0 keeps the connection only when asked to.
  ``Expect: 100-continue`` gets its interim answer once the handler has seen the headers.
- **Early answers** (given before the request's body was read; handlers answer 400, 401,
  404, 405 and 413 from the headers alone): a body of known, bounded length (a
  ``Content-Length`` no larger than ``max_body_size``) is read and dropped, and the
  connection stays usable (Tornado closed it). Anything else (a longer declared length, a
  chunked body, or framing the parser refuses) gets ``Connection: close`` in the answer and
  then a *lingering close* (RFC 9112 section 9.6, nginx's ``lingering_close``): the write
  side is shut after the answer and what the client still sends is read and dropped for at
  most ``LINGER_SECONDS`` and ``LINGER_MAX_BYTES``, so that a client that writes its whole
  body before reading still reads the answer instead of a reset.
- **Framing the parser refuses**: a ``Content-Length`` that is not one plain number, or one
  beside a ``Transfer-Encoding``, stops llhttp inside the head; that head is parsed again with
  Tornado's public parsers and given to the Application with its body unreadable, so that the
  handler's JSON 400 says what was wrong (a coding other than chunked stops it after the head,
  which the handler has then had already). Other malformed requests, and a refused head not
  yet whole when refused or read right behind another request, get the layer's JSON 400
  (431 for a head over ``max_header_size``) and the connection closes. Each is logged
  ("Malformed HTTP message from ...", with the head, through server/logs.py's redaction).
- **Limits**: at most ``max_connections`` open (past it a connection is accepted and closed at
  once, and counted: server/metrics.py); the head must arrive within ``idle_connection_timeout``
  of the connection becoming idle (a client dribbling its headers is cut off), the body within
  ``body_timeout`` of its head; a body over ``max_body_size`` ends the connection. One loop
  timer per connection serves all three (it is moved, not re-made, per request).
- **A client that leaves** mid-request: the request's delegate (``on_connection_close``) or
  its handler's close callback is told at once, so that everything it holds is released.
- **Shutdown**: ``stop()`` closes the listening sockets; ``close_all_connections()`` closes
  every connection and waits until each is gone (server/__main__.py first waits for the
  requests in flight).
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httptools
from tornado import httputil, iostream
from tornado.ioloop import IOLoop
from tornado.log import app_log, gen_log
from tornado.netutil import add_accept_handler, bind_sockets

from handlers.body import declared_length
from server.metrics import ConnectionCounts

# nginx's lingering_timeout is 5 s (and lingering_time 30 s in all); a client that has sent
# its body gets our answer long before either. The byte bound keeps a fast sender from
# holding the connection for the whole time.
LINGER_SECONDS = 5
LINGER_MAX_BYTES = 16 * 1024 * 1024
# Tornado's defaults: the largest head, the idle time allowed before a head, the largest body.
MAX_HEADER_BYTES = 64 * 1024
IDLE_SECONDS = 3600
MAX_BODY_BYTES = 100 * 1024 * 1024
# Request body queued behind a handler that is not ready for it before reading pauses.
QUEUE_HIGH_WATER = 256 * 1024
# Parsed events (heads, pieces of bodies, ends) queued ahead, as a pipelining client sends them,
# before reading pauses: what one read can hold is parsed, then no more until they are handled.
QUEUE_MAX_EVENTS = 64
DEFAULT_BACKLOG = 128

CONTINUE = b"HTTP/1.1 100 (Continue)\r\n\r\n"

# What the parser's queue holds: a request's head, a piece of its body, its end, and
# errors in a head or in a body, in the order they were read.
HEAD, BODY, END, HEAD_ERROR, BODY_ERROR = range(5)
# Events that wait until the request before them is answered.
NEXT_REQUEST = (HEAD, HEAD_ERROR)


def error_answer(status: int, reason: str, message: str) -> bytes:
    """A complete JSON answer (``{"error": ...}``, as the handlers' errors are) that closes."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


BAD_REQUEST = error_answer(400, "Bad Request", "The request is not valid HTTP/1.1.")
HEAD_TOO_LARGE = error_answer(431, "Request Header Fields Too Large",
                              "The request line and headers are too large.")


class Refusal(Exception):
    """Raised in a parser callback: the request is refused with this answer."""

    def __init__(self, answer: bytes, reason: str):
        super().__init__(reason)
        self.answer = answer


class ConnectionContext:
    """What ``HTTPServerRequest`` reads from its connection's ``context``: the peer."""

    def __init__(self, address: Any, protocol: str = "http"):
        self.address = address
        is_ip = isinstance(address, tuple) and len(address) >= 2
        self.remote_ip = address[0] if is_ip else "0.0.0.0"  # noqa: S104  # a Unix socket: no address
        self.protocol = protocol
        self.trusted_downstream: set[str] = set()

    def __str__(self) -> str:
        return self.remote_ip if isinstance(self.address, tuple) else str(self.address)


class RequestConnection(httputil.HTTPConnection):
    """One request's side of a connection: what Tornado's RequestHandler writes its
    answer to. Made for each request, so a handler that outlives its request never
    writes into the next one's."""

    def __init__(self, protocol: HTTPProtocol, start_line: httputil.RequestStartLine,
                 headers: httputil.HTTPHeaders, body_unreadable: bool = False):
        self.protocol = protocol
        self.context = protocol.context
        self.start_line = start_line
        self.headers = headers
        self.delegate: httputil.HTTPMessageDelegate | None = None
        self.keep_alive = protocol.server.can_keep_alive(start_line, headers) and not body_unreadable
        # The parser refused this request's framing: its body cannot be read.
        self.body_unreadable = body_unreadable
        self.max_body_size = protocol.server.max_body_size
        self.body_timeout = protocol.server.body_timeout
        self.body_received = 0
        self.read_finished = False
        self.write_started = False
        self.write_finished = False
        # An early answer to a body that will not be read: close after it, lingering.
        self.lingering = False
        self.chunking_output = False
        self.expected_remaining: int | None = None
        self.close_callback: Callable[[], None] | None = None

    # ----- httputil.HTTPConnection -----------------------------------------------------

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """Called if the connection closes after the request was read, before its answer ended."""
        self.close_callback = callback

    def set_body_timeout(self, timeout: float) -> None:
        self.body_timeout = timeout

    def set_max_body_size(self, max_body_size: int) -> None:
        self.max_body_size = max_body_size

    def detach(self) -> Any:
        raise NotImplementedError("this HTTP server does not hand its connections over (no websockets)")

    def write_headers(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                      headers: httputil.HTTPHeaders, chunk: bytes | None = None) -> asyncio.Future[None]:
        assert isinstance(start_line, httputil.ResponseStartLine)
        request = self.start_line
        code = start_line.code
        self.write_started = True
        if not self.read_finished and self.body_is_unbounded():
            # An answer before the body was read, to a body we will not read: say the
            # connection closes (the headers are the last chance to say it).
            self.lingering = True
            self.keep_alive = False
        http11 = request.version == "HTTP/1.1"
        self.chunking_output = (
            http11 and request.method != "HEAD" and code not in (204, 304) and not 100 <= code < 200
            and "Content-Length" not in headers)
        if http11 and not self.keep_alive:
            headers["Connection"] = "close"
        if not http11 and self.keep_alive:  # an HTTP/1.0 client that asked for keep-alive
            if "Content-Length" in headers or request.method == "HEAD" or code in (204, 304):
                headers["Connection"] = "Keep-Alive"
            else:
                self.keep_alive = False  # no chunks in HTTP/1.0: the connection's end is the body's
        if self.chunking_output:
            headers["Transfer-Encoding"] = "chunked"
        if request.method == "HEAD" or code == 304:
            self.expected_remaining = 0
        elif "Content-Length" in headers:
            self.expected_remaining = int(headers["Content-Length"])
        else:
            self.expected_remaining = None
        lines = [f"{name}: {value}\r\n" for name, value in headers.get_all()]
        head = f"HTTP/1.1 {code} {start_line.reason}\r\n{''.join(lines)}\r\n"
        # Every line ends in CR LF, and none may hold another CR or LF (header injection).
        if head.count("\r") != len(lines) + 2 or head.count("\n") != len(lines) + 2:
            raise ValueError(f"Illegal characters (CR or LF) in header: {head!r}")
        data = head.encode("latin1")
        if chunk:
            data += self.format_chunk(chunk)
        return self.protocol.write(data)

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self.protocol.write(self.format_chunk(chunk))

    def finish(self) -> None:
        protocol = self.protocol
        if self.expected_remaining and not protocol.closed:
            protocol.close()
            raise httputil.HTTPOutputError(f"Tried to write {self.expected_remaining} bytes less than Content-Length")
        if self.chunking_output:
            protocol.write(b"0\r\n\r\n")
        self.write_finished = True
        self.close_callback = None
        protocol.answered(self)

    # ----- ours -----------------------------------------------------------------------

    def format_chunk(self, chunk: bytes) -> bytes:
        if self.expected_remaining is not None:
            self.expected_remaining -= len(chunk)
            if self.expected_remaining < 0:
                self.protocol.close()  # stop further framing errors
                raise httputil.HTTPOutputError("Tried to write more data than Content-Length")
        if self.chunking_output and chunk:
            return b"%x\r\n%s\r\n" % (len(chunk), chunk)
        return chunk

    def body_is_unbounded(self) -> bool:
        """True if the request's body is of unknown length, unreadable, or longer than we
        would read and drop."""
        headers = self.headers
        if self.body_unreadable or "Transfer-Encoding" in headers:
            return True
        if "Content-Length" not in headers:
            return False
        length = declared_length(headers["Content-Length"])
        return length is None or length > self.max_body_size


class HTTPProtocol(asyncio.Protocol):
    """One client connection: parses its requests, hands each to the Application in turn,
    and writes the answers. httptools calls the ``on_*`` methods as it parses."""

    transport: asyncio.Transport
    context: ConnectionContext
    parser: httptools.HttpRequestParser

    def __init__(self, server: HTTPServer):
        self.server = server
        assert server.loop is not None
        self.loop = server.loop
        self.refused = False
        self.closed = False
        self.lingering = False  # after an early answer: the input is read and dropped
        self.lingered_bytes = 0
        self.parsing = True  # False once the input can no longer be parsed as requests
        self.ending = False  # True once the connection is closing: nothing more is handled
        self.request: RequestConnection | None = None  # the one being read or answered
        self.events: collections.deque = collections.deque()
        self.queued_bytes = 0
        self.waiting = False  # for a delegate's future: events queue meanwhile
        self.reading_paused = False
        self.writing_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.gone: asyncio.Future[None] = self.loop.create_future()
        # The parse in progress.
        self.in_message = False
        self.in_head = False
        self.head_data: bytes | None = None  # this head's bytes, when known (see data_received)
        self.head_size = 0  # of the URL and headers parsed
        self.head_bytes = 0  # received while a head was being read
        self.url = b""
        self.headers = httputil.HTTPHeaders()
        # One timer for the idle, body and linger deadlines; moved lazily (see set_deadline).
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = 0.0

    # ----- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        server = self.server
        counts = server.connections
        if server.max_connections is not None and counts.open >= server.max_connections:
            # Accepted only to be closed: the descriptor is free again at once.
            self.refused = True
            counts.refuse()
            self.transport.abort()
            return
        counts.open += 1
        server.protocols.add(self)
        self.context = ConnectionContext(transport.get_extra_info("peername"), server.protocol)
        self.parser = httptools.HttpRequestParser(self)
        self.done = self.loop.create_future()  # what a write returns while the transport takes more
        self.done.set_result(None)
        self.set_deadline(self.loop.time() + server.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if not self.parsing:
            if self.lingering:
                self.lingered_bytes += len(data)
                if self.lingered_bytes >= LINGER_MAX_BYTES:
                    self.transport.close()
            elif not self.ending and not self.events and not self.waiting and self.request is None:
                self.close()  # after an Upgrade we do not speak
            return
        # The head being read, kept only while it is known where it began: from the start of
        # this data (no message in progress) or of an earlier one (a head in several pieces).
        if not self.in_message:
            self.head_data = data
        elif self.in_head and self.head_data is not None:
            self.head_data += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            refusal = error.__cause__ or error.__context__
            if not isinstance(refusal, Refusal):
                raise
            self.push(HEAD_ERROR, refusal)
            self.parsing = False
        except httptools.HttpParserUpgrade:
            # An Upgrade (h2c, websocket) we do not speak: the request is answered as a
            # plain one, and what follows it cannot be read.
            self.parsing = False
        except httptools.HttpParserError as error:
            self.push(HEAD_ERROR if not self.in_message or self.in_head else BODY_ERROR, error)
            self.parsing = False
        else:
            if self.in_head:  # a head in several pieces; on_headers_complete measures it exactly
                self.head_bytes += len(data)
                if self.head_bytes > 2 * self.server.max_header_size:  # never-ending: no need to be exact
                    self.push(HEAD_ERROR, Refusal(HEAD_TOO_LARGE, "head too large"))
                    self.parsing = False

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost tells the request

    def pause_writing(self) -> None:
        # The client is not reading its answers: take no next request (and read nothing more)
        # until it does, as Tornado read the next request only once an answer was sent.
        self.writing_paused = True
        self.pause_input()

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiters, self.drain_waiters = self.drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self.closed:
            self.drain()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.ending, self.parsing = True, False  # nothing more is read or handled
        # The parser holds this protocol's bound methods and this protocol holds the parser:
        # a cycle that only the garbage collector would free, with everything the connection
        # holds. Broken here, so reference counting frees a closed connection at once (left to
        # the collector, a crowd of short connections piled up into pauses of 20-100 ms).
        self.parser = None  # type: ignore[assignment]
        if self.refused:
            return
        server = self.server
        server.connections.open -= 1
        server.protocols.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.events.clear()
        request, self.request = self.request, None
        if request is not None:
            self.tell_closed(request)
            request.delegate = None
        waiters, self.drain_waiters = self.drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(iostream.StreamClosedError())
                waiter.exception()
        try:
            server.delegate.on_close(self)
        finally:
            if not self.gone.done():
                self.gone.set_result(None)

    # ----- httptools' callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.in_head = True
        self.head_size = 0
        self.head_bytes = 0
        self.url = b""
        self.headers = httputil.HTTPHeaders()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        # llhttp drops the whitespace before a value, not after it; Tornado drops both.
        self.headers.add(name.decode("latin1"), value.decode("latin1").rstrip(" \t"))

    def on_headers_complete(self) -> None:
        self.in_head = False
        if len(self.url) + self.head_size > self.server.max_header_size:
            raise Refusal(HEAD_TOO_LARGE, "head too large")
        version = self.parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise Refusal(BAD_REQUEST, f"Unexpected HTTP version {version!r}")
        start_line = httputil.RequestStartLine(
            self.parser.get_method().decode("latin1"), self.url.decode("latin1"), "HTTP/" + version)
        self.push(HEAD, (start_line, self.headers))

    def on_body(self, body: bytes) -> None:
        self.push(BODY, body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.head_data = None  # where the next head begins in this data is not known
        self.push(END, None)

    # ----- the requests, in order -----------------------------------------------------

    def push(self, kind: int, value: Any) -> None:
        """Handles what was parsed now, or queues it behind what must happen first."""
        if self.waiting or self.events or (kind in NEXT_REQUEST and not self.may_start_next()):
            self.events.append((kind, value))
            if kind == BODY:
                self.queued_bytes += len(value)
            if self.queued_bytes > QUEUE_HIGH_WATER or len(self.events) > QUEUE_MAX_EVENTS:
                self.pause_input()
            return
        self.handle(kind, value)

    def may_start_next(self) -> bool:
        """A next request starts once the one before is answered and its answer taken."""
        return self.request is None and not self.writing_paused

    def pause_input(self) -> None:
        if not self.reading_paused and not self.closed and not self.lingering:
            self.reading_paused = True
            self.transport.pause_reading()

    def drain(self) -> None:
        """Handles the queued events until one must wait."""
        events = self.events
        while events and not self.waiting and not self.ending:
            kind, value = events[0]
            if kind in NEXT_REQUEST and not self.may_start_next():
                break
            events.popleft()
            if kind == BODY:
                self.queued_bytes -= len(value)
            self.handle(kind, value)
        if (self.reading_paused and self.queued_bytes <= QUEUE_HIGH_WATER // 2
                and len(events) <= QUEUE_MAX_EVENTS // 2 and not self.writing_paused and not self.ending):
            self.reading_paused = False
            self.transport.resume_reading()

    def handle(self, kind: int, value: Any) -> None:
        if self.ending:
            return
        if kind == HEAD:
            self.start_request(*value)
        elif kind == BODY:
            self.deliver_body(value)
        elif kind == END:
            self.end_request()
        elif kind == HEAD_ERROR:
            self.head_failed(value)
        else:
            self.body_failed(value)

    def start_request(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders,
                      body_unreadable: bool = False) -> None:
        self.deadline = None  # no timer while the handler reads the head
        request = self.request = RequestConnection(self, start_line, headers, body_unreadable)
        delegate = request.delegate = self.server.delegate.start_request(self, request)
        try:
            received = delegate.headers_received(start_line, headers)
        except Exception:
            self.uncaught()
            return
        if received is None:
            self.head_received()
        else:
            self.wait_for(received, self.head_received)

    def head_received(self) -> None:
        """The handler has seen the head (its prepare() has run, for a streamed body)."""
        request = self.request
        if request is None or self.lingering:
            return
        headers = request.headers
        if request.body_unreadable:
            if not request.write_started:  # nothing said why: Tornado's 400
                self.refuse(BAD_REQUEST, "unreadable body")
            return
        if "Content-Length" in headers:
            length = declared_length(headers["Content-Length"])
            if length is not None and length > request.max_body_size and not request.write_started:
                self.refuse(BAD_REQUEST, "Content-Length too long")
                return
        if not request.read_finished and ("Content-Length" in headers or "Transfer-Encoding" in headers):
            if headers.get("Expect") == "100-continue" and not request.write_finished:
                self.write(CONTINUE)
            if request.body_timeout is not None:
                self.set_deadline(self.loop.time() + request.body_timeout)

    def deliver_body(self, chunk: bytes) -> None:
        request = self.request
        assert request is not None
        request.body_received += len(chunk)
        if request.body_received > request.max_body_size:
            self.refuse(BAD_REQUEST, "body too large")
            return
        if request.write_finished:
            return  # an early answer: the rest is read and dropped
        assert request.delegate is not None
        try:
            received = request.delegate.data_received(chunk)
        except Exception:
            self.uncaught()
            return
        if received is not None:
            self.wait_for(received, None)

    def end_request(self) -> None:
        request = self.request
        assert request is not None and request.delegate is not None
        request.read_finished = True
        self.deadline = None
        if request.write_finished:  # an early answer, its body now read and dropped
            self.answered(request)
            return
        try:
            request.delegate.finish()
        except Exception:
            self.uncaught()

    def answered(self, request: RequestConnection) -> None:
        """The request's answer is written (RequestConnection.finish)."""
        if request is not self.request or self.closed:
            return
        if request.lingering:
            self.linger()
        elif request.read_finished:
            self.request = None
            request.delegate = None  # its handler and this connection no longer hold each other
            if not request.keep_alive:
                self.close()
                return
            self.set_deadline(self.loop.time() + self.server.idle_timeout)
            if self.events:
                self.drain()
        # Otherwise the rest of a bounded body is read and dropped (end_request).

    def head_failed(self, error: Exception) -> None:
        """A head the parser refused. Framing it refused (a Content-Length it cannot read,
        or one beside a Transfer-Encoding) goes to the handler, to be explained there."""
        if isinstance(error, Refusal):
            self.refuse(error.answer, str(error))
            return
        head = self.complete_head()
        # llhttp's words for them: "Invalid character in Content-Length", "Empty Content-Length",
        # "Duplicate Content-Length", "Transfer-Encoding can't be present with Content-Length".
        if head is not None and "Content-Length" in str(error):
            try:
                text = head.decode("latin1").lstrip("\r\n")
                eol = text.find("\n")
                start_line = httputil.parse_request_start_line(text[:eol].rstrip("\r"))
                headers = httputil.HTTPHeaders.parse(text[eol:])
            except httputil.HTTPInputError:
                pass
            else:
                self.log_malformed(f"{error} (answered by the application)")
                self.start_request(start_line, headers, body_unreadable=True)
                return
        self.refuse(BAD_REQUEST, str(error))

    def body_failed(self, error: Exception) -> None:
        """A body the parser refused, after its head went to the handler."""
        request = self.request
        if request is None:
            self.refuse(BAD_REQUEST, str(error))
            return
        request.body_unreadable = True
        if request.write_finished:
            self.log_malformed(str(error))
            self.close()
        elif not self.waiting and not request.write_started:
            self.refuse(BAD_REQUEST, str(error))
        # Otherwise the handler answers (with Connection: close, lingering) or, once its
        # prepare() is over without an answer, head_received refuses it.

    def wait_for(self, awaitable: Awaitable[Any], then: Callable[[], None] | None) -> None:
        future = asyncio.ensure_future(awaitable)
        if future.done() and not future.cancelled() and future.exception() is None:
            if then is not None:
                then()
            return
        self.waiting = True
        future.add_done_callback(lambda done: self.waited(done, then))

    def waited(self, future: asyncio.Future, then: Callable[[], None] | None) -> None:
        self.waiting = False
        if self.closed:
            return
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                app_log.error("Uncaught exception", exc_info=future.exception())
            self.close()
            return
        if then is not None:
            then()
        self.drain()

    # ----- ending ---------------------------------------------------------------------

    def tell_closed(self, request: RequestConnection) -> None:
        """Tells a request the connection went before it was read or answered."""
        try:
            if not request.read_finished:
                if request.delegate is not None:
                    request.delegate.on_connection_close()
            elif not request.write_finished and request.close_callback is not None:
                callback, request.close_callback = request.close_callback, None
                callback()
        except Exception:
            app_log.error("Uncaught exception", exc_info=True)

    def uncaught(self) -> None:
        """A delegate raised: logged, and the connection closes (its request is told)."""
        app_log.error("Uncaught exception", exc_info=True)
        self.close()

    def log_malformed(self, reason: str) -> None:
        head = self.complete_head() or self.head_data
        excerpt = f" in {head[:512].decode('latin1')!r}" if head else ""
        gen_log.info("Malformed HTTP message from %s: %s%s", self.context, reason, excerpt)

    def complete_head(self) -> bytes | None:
        """The head being read, up to its blank line, when it is known and complete."""
        data = self.head_data
        if data is None:
            return None
        start = len(data) - len(data.lstrip(b"\r\n"))
        end = data.find(b"\r\n\r\n", start)
        if end >= 0:
            return data[:end + 4]
        end = data.find(b"\n\n", start)
        return data[:end + 2] if end >= 0 else None

    def refuse(self, answer: bytes, reason: str) -> None:
        """A request we cannot read: a JSON answer that closes (unless one was begun), the
        request told, and a lingering close."""
        self.log_malformed(reason)
        request, self.request = self.request, None
        if request is None or not request.write_started:
            self.write(answer)
        if request is not None:
            self.tell_closed(request)
        self.linger()

    def linger(self) -> None:
        """After the last answer: shut the write side, then read and drop what the client
        still sends, within LINGER_SECONDS and LINGER_MAX_BYTES, and close."""
        if self.ending:
            return
        self.lingering = self.ending = True
        self.parsing = False
        self.events.clear()
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.set_deadline(self.loop.time() + LINGER_SECONDS)

    def close(self) -> None:
        """Closes once what was written has been sent."""
        self.ending = True
        self.parsing = False
        self.events.clear()
        if not self.closed:
            self.transport.close()

    def set_deadline(self, when: float) -> None:
        """One timer per connection: armed at the earliest deadline, and on firing re-armed
        for the deadline then current (most requests only move it later)."""
        self.deadline = when
        if self.timer is None or when < self.timer_when:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_when = when
            self.timer = self.loop.call_at(when, self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        deadline = self.deadline
        if deadline is None or self.closed:
            return
        if self.loop.time() < deadline:
            self.timer_when = deadline
            self.timer = self.loop.call_at(deadline, self.on_timer)
            return
        request = self.request
        if request is not None and not request.read_finished and not self.lingering:
            gen_log.info("Timeout reading body from %s", self.context)
        self.close()

    def write(self, data: bytes) -> asyncio.Future[None]:
        """Writes to the transport; the future is done once the transport takes more."""
        if self.closed or self.lingering or self.transport.is_closing():
            failed = self.loop.create_future()
            failed.set_exception(iostream.StreamClosedError())
            failed.exception()
            return failed
        self.transport.write(data)
        if self.writing_paused:
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            return waiter
        return self.done


class HTTPServer:
    """Serves ``delegate`` (a Tornado Application) on sockets, with these limits; see the
    module docstring. ``listen``/``add_sockets``, ``stop`` and ``close_all_connections``
    are used as Tornado's HTTPServer's are."""

    def __init__(self, delegate: httputil.HTTPServerConnectionDelegate, *, max_connections: int | None = None,
                 connections: ConnectionCounts | None = None, max_body_size: int | None = None,
                 body_timeout: float | None = None, idle_connection_timeout: float | None = None,
                 max_header_size: int | None = None, no_keep_alive: bool = False, protocol: str = "http"):
        self.delegate = delegate
        self.max_connections = max_connections
        self.connections = connections or ConnectionCounts()
        self.max_body_size = max_body_size or MAX_BODY_BYTES
        self.body_timeout = body_timeout
        self.idle_timeout = idle_connection_timeout or IDLE_SECONDS
        self.max_header_size = max_header_size or MAX_HEADER_BYTES
        self.no_keep_alive = no_keep_alive
        self.protocol = protocol
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop of add_sockets
        self.protocols: set[HTTPProtocol] = set()
        self.listening: list[tuple[Callable[[], None], socket.socket]] = []

    def listen(self, port: int, address: str | None = None, backlog: int = DEFAULT_BACKLOG) -> None:
        self.add_sockets(bind_sockets(port, address=address, backlog=backlog))

    def add_sockets(self, sockets: list[socket.socket]) -> None:
        """Serves on sockets already bound and listening. Serving begins as the loop next runs;
        connections wait in the backlog meanwhile.

        Connections are accepted by Tornado's accept handler (as many as are waiting, up to a
        backlog's worth, each time a socket is ready) and handed to the loop as transports
        (``connect_accepted_socket``), not by the loop's own server (``create_server``): under
        uvloop's, a crowd of 2,000 connections at once had its newest connections' first
        requests left unread for seconds while the older ones were served again and again
        (wrk's timeouts in bench/crowd.py; none on asyncio's loop, and none this way)."""
        self.loop = IOLoop.current().asyncio_loop  # type: ignore[attr-defined]
        for sock in sockets:
            self.listening.append((add_accept_handler(sock, self._accepted), sock))

    def _accepted(self, connection: socket.socket, address: Any) -> None:
        assert self.loop is not None
        serving = asyncio.ensure_future(
            self.loop.connect_accepted_socket(lambda: HTTPProtocol(self), sock=connection), loop=self.loop)

        def started(future: asyncio.Future) -> None:
            if future.cancelled() or future.exception() is not None:
                connection.close()  # gone before it could be served: nothing to answer

        serving.add_done_callback(started)

    def stop(self) -> None:
        """No new connections from here on (the listening sockets are closed)."""
        listening, self.listening = self.listening, []
        for stop_accepting, sock in listening:
            stop_accepting()
            sock.close()

    async def close_all_connections(self) -> None:
        """Closes every connection and waits until each is gone."""
        while self.protocols:
            protocol = next(iter(self.protocols))
            protocol.close()
            if protocol.transport.get_write_buffer_size():
                protocol.transport.abort()  # a client that does not read does not hold us up
            await protocol.gone

    def can_keep_alive(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders) -> bool:
        """As Tornado decides: HTTP/1.1 unless ``Connection: close``; HTTP/1.0 with
        ``Connection: keep-alive`` and a body of known length (or none)."""
        if self.no_keep_alive:
            return False
        connection = headers.get("Connection")
        if connection is not None:
            connection = connection.lower()
        if start_line.version == "HTTP/1.1":
            return connection != "close"
        if ("Content-Length" in headers or headers.get("Transfer-Encoding", "").lower() == "chunked"
                or start_line.method in ("HEAD", "GET")):
            return connection == "keep-alive"
        return False
