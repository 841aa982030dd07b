"""Request bodies: streamed, bounded by MAX_BODY_BYTES without ever being kept whole past
it, and parsed as JSON on demand.

Every body is refused from its headers, before any of it is read, where it can be
(server/connection.py then keeps or lingers the connection):

- a ``Content-Length`` that is not one plain number, or one beside a ``Transfer-Encoding``,
  or a transfer coding other than chunked, is a 400: the body's end cannot be known
  (RFC 9112 section 6.3);
- a declared ``Content-Length`` over the limit is a 413.

A chunked body has no declared length: past the limit its chunks are dropped, never kept,
and the handler answers 413 (the HTTP server cuts off one that goes on far longer).
Chunks that arrive after the answer, or after the client went away, are dropped too.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from handlers.errors import HttpProblem
from handlers.protocol import Handler
from services.common.errors import InvalidInput


def declared_length(value: str) -> int | None:
    """A ``Content-Length`` value as a number of bytes, or None unless it is one plain number:
    not a list, a sign, or a digit of another script (``str.isdigit()`` takes "²" for one)."""
    return int(value) if value.isascii() and value.isdigit() else None


class BodyHandler(Handler, Protocol):
    """A handler with JsonBody's own state."""

    _body: bytearray | None
    _body_too_large: bool

    def _body_too_large_problem(self) -> HttpProblem: ...

    def json_body(self) -> Any: ...


class JsonBody:
    """For handlers under ``@tornado.web.stream_request_body``: start_body() as the handler
    starts, drop_body() once it has answered or its client has left."""

    _body: bytearray | None
    _body_too_large: bool

    def start_body(self) -> None:
        self._body = bytearray()  # None once chunks are dropped
        self._body_too_large = False

    def drop_body(self) -> None:
        """From now on what arrives is dropped (an early answer's body), and what came is freed."""
        self._body = None

    def refuse_unreadable_body(self: BodyHandler) -> None:
        """A step of prepare(): 400 for a body whose length cannot be known, 413 for a
        declared length over the limit (see the module docstring)."""
        headers = self.request.headers
        if "Content-Length" in headers:  # ``in`` first: get() of an absent header costs an exception
            length = declared_length(headers["Content-Length"])
            if "Transfer-Encoding" in headers:
                raise HttpProblem(400, "A request cannot declare both a Content-Length and a Transfer-Encoding.")
            if length is None:
                raise HttpProblem(400, "The Content-Length header must be one whole number of bytes.")
            if length > self.config.max_body_bytes:
                raise self._body_too_large_problem()
        elif "Transfer-Encoding" in headers and headers["Transfer-Encoding"].strip().lower() != "chunked":
            raise HttpProblem(400, "A request body may only use the chunked transfer coding.")

    def data_received(self: BodyHandler, chunk: bytes) -> None:
        body = self._body
        if body is None:
            return  # past the limit, answered already, or the client left: read and dropped
        if len(body) + len(chunk) > self.config.max_body_bytes:
            self._body_too_large = True
            self._body = None
        else:
            body.extend(chunk)

    def json_body(self: BodyHandler) -> Any:
        """The parsed JSON body (any JSON value: the service's validation says what it must be)."""
        if self._body_too_large:
            raise self._body_too_large_problem()
        if not self._body or not self._body.strip():
            raise InvalidInput("The request body must be a JSON object.")
        try:
            # orjson, stricter than the json module where it matters: no NaN or Infinity,
            # no number too large for a double, nesting at most 1024 deep, and no lone
            # UTF-16 surrogate (valid JSON, but no text MongoDB can store), so no field
            # of any body needs its own check for one.
            return orjson.loads(self._body)
        except orjson.JSONDecodeError as error:
            # orjson names an escaped lone surrogate "... surrogate in string"; bytes that
            # are not UTF-8 at all it calls "not valid UTF-8" (the tests pin both readings).
            if "surrogate in string" in str(error):
                raise InvalidInput("The request body contains characters that are not valid text "
                                   "(a lone UTF-16 surrogate).") from None
            raise InvalidInput("The request body must be valid JSON.") from None

    def optional_json_body(self: BodyHandler) -> Any:
        """As json_body(), but None for an absent (empty) body."""
        if not self._body_too_large and not (self._body and self._body.strip()):
            return None
        body = self.json_body()
        if body is None:  # a JSON null is a body, and not an object: not the same as none
            raise InvalidInput("The request body must be a JSON object.")
        return body

    def _body_too_large_problem(self: Handler) -> HttpProblem:
        limit_kib = self.config.max_body_bytes // 1024
        return HttpProblem(413, f"The request body is too large: the limit is {limit_kib} KiB.")
