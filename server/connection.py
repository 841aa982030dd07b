"""HTTP/1.1 connections that survive an answer given before the request body was read.

Handlers answer some requests from their headers alone (401, 404, 405, 413 on a declared
length). Tornado then closes the connection at once, without saying so in the answer, while
the client may still be sending its body: a pooled client's next request on that connection
fails, and a client that writes its whole body before reading gets a TCP reset that can
destroy the answer it has not read yet. Here, after such an early answer:

- a body of known, bounded length (a ``Content-Length`` no larger than the server's
  ``max_body_size``) is read and dropped, never kept, and the connection stays usable for
  the next request (keep-alive);
- anything else (a longer declared length, or a chunked body of unknown length) gets
  ``Connection: close`` in the answer, and then a *lingering close* (RFC 9112 section 9.6,
  nginx's ``lingering_close``): the write side is shut down after the answer, and what the
  client still sends is read and dropped for at most ``LINGER_SECONDS`` and ``LINGER_MAX_BYTES``
  before the socket is closed, so the client has read the answer before any reset.

This module is the one place that uses Tornado's private names (``git grep`` finds them
nowhere else; tests/server/test_tornado_adapter.py checks it): it subclasses
``HTTP1Connection``, overrides some of its private methods, and copies two of Tornado's
functions (``COPIED_FROM_TORNADO``). It is written for one Tornado version,
``VALIDATED_TORNADO``: the server refuses to start on any other, and a test compares each
copy with the installed Tornado's own source, so an upgrade that changes them fails loudly.
To move the pin: re-read the copied functions and the private names
(``TORNADO_PRIVATE_NAMES``) in the new version, update the copies, then
``VALIDATED_TORNADO`` and requirements.txt together.

It also caps the open connections (``MAX_CONNECTIONS``): past the cap a new connection is
accepted and closed at once, and counted (server/metrics.py), so the process never runs
out of file descriptors and keeps serving the connections it has.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable
from typing import Any

import tornado
from tornado import gen, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.log import gen_log

from handlers.body import declared_length
from server.config import ConfigError
from server.metrics import ConnectionCounts

# The Tornado whose internals this module was checked against (requirements.txt pins it).
VALIDATED_TORNADO = "6.6.1"
# Every private Tornado name used here, and nowhere else in the code.
TORNADO_PRIVATE_NAMES = frozenset({
    "_HTTPRequestContext", "_server_request_loop", "_connections", "_read_body", "_finish_request",
    "_read_finished", "_disconnect_on_finish", "_request_headers", "_max_body_size", "_clear_callbacks",
    "_finish_future",
})

# nginx's lingering_timeout is 5 s (and lingering_time 30 s in all); a client that has sent
# its body gets our answer long before either. The byte bound keeps a fast sender from
# holding the connection for the whole time; reads are dropped chunk by chunk.
LINGER_SECONDS = 5
LINGER_MAX_BYTES = 16 * 1024 * 1024
LINGER_READ_BYTES = 64 * 1024


class EarlyAnswerConnection(HTTP1Connection):
    """One request/response exchange; see the module docstring."""

    _lingering = False

    def write_headers(self, start_line, headers, chunk=None):
        """An answer before the body was read, to a body we will not read: say the
        connection closes (the headers are the last chance to say it)."""
        if not self.is_client and not self._read_finished and self._body_is_unbounded():
            self._lingering = True
            self._disconnect_on_finish = True
        return super().write_headers(start_line, headers, chunk)

    def finish(self) -> None:
        """Tornado closes after any answer given before the body was read. A body of
        bounded length is read and dropped instead (the request loop goes on reading it),
        so the connection stays usable."""
        if self.is_client or self._read_finished or self._lingering:
            super().finish()
            return
        self._read_finished = True  # for HTTP1Connection.finish: the rest will be read and dropped
        try:
            super().finish()
        finally:
            self._read_finished = False

    def _read_body(self, code, headers, delegate):
        if self._lingering:
            return self._linger()
        return super()._read_body(code, headers, delegate)

    def _finish_request(self, future) -> None:
        if not self._lingering:
            super()._finish_request(future)
            return
        # The answer is written: end our side (FIN) and let _linger() close the socket.
        self._clear_callbacks()
        try:
            self.stream.socket.shutdown(socket.SHUT_WR)
        except (OSError, AttributeError):
            pass  # already gone
        if not self._finish_future.done():
            self._finish_future.set_result(None)

    def _body_is_unbounded(self) -> bool:
        """True if the request's body is of unknown length or longer than we would read."""
        headers = self._request_headers
        if headers is None:
            return False
        if "Transfer-Encoding" in headers:
            return True
        if "Content-Length" not in headers:
            return False
        # Anything but one plain number is refused by the handler (handlers/body.py): its
        # body is not read.
        length = declared_length(headers["Content-Length"])
        return length is None or length > self._max_body_size

    async def _linger(self) -> None:
        """Reads and drops what the client still sends, within the bounds, then closes."""
        stream = self.stream
        deadline = stream.io_loop.time() + LINGER_SECONDS
        discarded = 0
        try:
            while discarded < LINGER_MAX_BYTES:
                chunk = await gen.with_timeout(deadline, stream.read_bytes(LINGER_READ_BYTES, partial=True),
                                               quiet_exceptions=iostream.StreamClosedError)
                discarded += len(chunk)
        except (iostream.StreamClosedError, TimeoutError):
            pass
        finally:
            stream.close()


class EarlyAnswerServerConnection(HTTP1ServerConnection):
    """Tornado's request loop, with EarlyAnswerConnection for each request."""

    async def _server_request_loop(self, delegate) -> None:
        try:
            while True:
                conn = EarlyAnswerConnection(self.stream, False, self.params, self.context)
                request_delegate = delegate.start_request(self, conn)
                try:
                    ret = await conn.read_response(request_delegate)
                except (iostream.StreamClosedError, iostream.UnsatisfiableReadError, asyncio.CancelledError):
                    return
                except Exception:
                    gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                if not ret or self.stream.closed():
                    return
                await asyncio.sleep(0)
        finally:
            delegate.on_close(self)


class EarlyAnswerHTTPServer(HTTPServer):
    """Tornado's HTTPServer with EarlyAnswerServerConnection for each connection, and at
    most ``max_connections`` of them open (None: no cap)."""

    def initialize(self, *args: Any, max_connections: int | None = None,
                   connections: ConnectionCounts | None = None, **kwargs: Any) -> None:
        check_tornado_version()
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.connections = connections or ConnectionCounts()

    def handle_stream(self, stream: iostream.IOStream, address: tuple) -> None:
        counts = self.connections
        if self.max_connections is not None and counts.open >= self.max_connections:
            # Accepted only to be closed: the descriptor is free again at once.
            counts.refuse()
            stream.close()
            return
        counts.open += 1
        self._start_serving(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self.connections.open -= 1

    def _start_serving(self, stream: iostream.IOStream, address: tuple) -> None:
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = EarlyAnswerServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)


def check_tornado_version(installed: str | None = None) -> None:
    """Refuses, with both versions named, a Tornado this module was not checked against."""
    installed = installed or tornado.version
    if installed != VALIDATED_TORNADO:
        raise ConfigError(
            f"the HTTP server needs tornado=={VALIDATED_TORNADO} (pinned in requirements.txt), but {installed} "
            f"is installed: run `pip install -r requirements.txt`, or re-check server/connection.py against "
            f"{installed} and move VALIDATED_TORNADO and the pin")


@dataclasses.dataclass(frozen=True)
class Copied:
    """A function of ours that is a copy of one of Tornado's, with these edits (each an
    (original, ours) pair of text, applied to the original's normalised source)."""

    ours: Callable
    theirs: Callable
    edits: tuple[tuple[str, str], ...]


COPIED_FROM_TORNADO = (
    Copied(EarlyAnswerServerConnection._server_request_loop, HTTP1ServerConnection._server_request_loop,
           (("HTTP1Connection(", "EarlyAnswerConnection("),
            # After a lingering close the stream is closed while the answer was complete.
            ("if not ret:", "if not ret or self.stream.closed():"))),
    Copied(EarlyAnswerHTTPServer._start_serving, HTTPServer.handle_stream,
           (("HTTP1ServerConnection(", "EarlyAnswerServerConnection("),)),
)
