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

A body whose objects repeat a member name, at any depth, is a 400: RFC 8259 leaves its
meaning to the parser (orjson and json keep the last, others the first), and two parsers
reading one body two ways is how a check is slipped past (issue 18: a login with a wrong
"password" first and the right one last). ``parse_json`` keeps the common path to orjson
and one count (see its docstring); bench/README.md has the cost.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import orjson

from handlers.errors import HttpProblem
from handlers.protocol import Handler
from services.common.errors import InvalidInput


class _RepeatedName(ValueError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _unique_members(pairs: list[tuple[str, object]]) -> dict:
    """json's object_pairs_hook: the object, or _RepeatedName for a name it repeats."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _RepeatedName(name)
            seen.add(name)
    return found


def _member_count(value: object) -> int:
    """How many members the objects of a parsed JSON value have, at every depth (no recursion:
    orjson allows 1024 levels)."""
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def parse_json(body: bytes | bytearray) -> Any:
    """``body`` parsed by orjson (its errors propagate), or InvalidInput if an object in it
    repeats a member name.

    Every member of the text has one ':' outside strings, and a repeated name leaves the
    parsed objects with fewer members than the text has. So when the body has no more ':'
    bytes than the parsed value has members, no name was repeated: the common case (a
    login, a progress save) costs one bytes.count() and a walk of the parsed value. Only a
    body with ':' inside its strings (a URL, a time) or a repeated name is parsed again, by
    json with an object_pairs_hook that sees every member in order."""
    value = orjson.loads(body)
    if isinstance(value, (dict, list)) and body.count(b":") > _member_count(value):
        try:
            json.loads(body, object_pairs_hook=_unique_members)
        except _RepeatedName as repeated:
            name = repeated.name if len(repeated.name) <= 40 else repeated.name[:40] + "…"
            raise InvalidInput(f"The request body repeats the member name {name!r} in one object: "
                               "each name may appear only once.") from None
        except RecursionError:
            raise InvalidInput("The request body is nested too deeply.") from None
        except ValueError:  # never seen: orjson, the stricter, read it; but never a 500
            raise InvalidInput("The request body must be valid JSON.") from None
    return value


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
            # of any body needs its own check for one. And no repeated member name.
            return parse_json(self._body)
        except orjson.JSONDecodeError as error:
            # orjson names an escaped lone surrogate "... surrogate in string"; bytes that
            # are not UTF-8 at all it calls "not valid UTF-8" (the tests pin both readings).
            if "surrogate in string" in str(error):
                raise InvalidInput("The request body contains characters that are not valid text "
                                   "(a lone UTF-16 surrogate).") from None
            raise InvalidInput("The request body must be valid JSON.") from None

    def optional_json_body(self: BodyHandler) -> Any:
        """As json_body(), but None for an absent (empty) body. Whitespace alone is a body, and
        not JSON: a 400, as the API document has it (make fuzz sent ``\\r\\n`` to logout)."""
        if not self._body_too_large and not self._body:
            return None
        body = self.json_body()
        if body is None:  # a JSON null is a body, and not an object: not the same as none
            raise InvalidInput("The request body must be a JSON object.")
        return body

    def _body_too_large_problem(self: Handler) -> HttpProblem:
        limit_kib = self.config.max_body_bytes // 1024
        return HttpProblem(413, f"The request body is too large: the limit is {limit_kib} KiB.")
