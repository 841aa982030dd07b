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
"""

from __future__ import annotations

import asyncio
import socket

from tornado import gen, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.log import gen_log

from handlers.body import declared_length

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
    def handle_stream(self, stream: iostream.IOStream, address: tuple) -> None:
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = EarlyAnswerServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)
