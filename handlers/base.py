"""The base of every API handler, composed of one piece per concern:

- handlers/headers.py: the headers every answer carries, the request id, no ETag
- handlers/cors.py: CORS headers and the preflight
- handlers/methods.py: the allowed methods, HEAD, 405
- handlers/body.py: streamed, bounded JSON bodies, 413 (with_streamed_body below)
- handlers/auth.py: the bearer token and the caller (``principal``)
- handlers/proxy.py: the client's address and our base URL, behind a proxy or not
- handlers/errors.py: domain errors to statuses, errors as JSON, what is logged

Each concrete handler only parses its input, calls one service and shapes the answer.
"""

from __future__ import annotations

import functools

import orjson
import tornado.web

from handlers.auth import BearerAuth
from handlers.body import JsonBody
from handlers.cors import Cors
from handlers.errors import DEFAULT_MESSAGES, ErrorAnswers, HttpProblem
from handlers.headers import ApiHeaders
from handlers.methods import KnownMethods
from handlers.proxy import ProxyAware


class BaseHandler(ErrorAnswers, Cors, JsonBody, BearerAuth, ProxyAware, ApiHeaders, KnownMethods,
                  tornado.web.RequestHandler):
    """The lifecycle, each step from its own piece (named calls, not a chain of super()
    calls: this runs on every request)."""

    @property
    def services(self):
        return self.application.services

    @property
    def config(self):
        return self.application.config

    def initialize(self) -> None:
        self.start_body()
        # The count shutdown waits on is the application's (server/app.py InFlight says
        # why the handler reports it).
        self.application.inflight.enter(self)

    def on_finish(self) -> None:
        self.drop_body()
        self.application.inflight.leave(self)

    def on_connection_close(self) -> None:
        """The client went away (perhaps mid-upload). Tornado's own handling must run: it
        fails the body future the request is waiting on, so that the handler, its partial
        body and its task end instead of waiting for good."""
        super().on_connection_close()
        self.drop_body()
        self.application.inflight.leave(self)

    def set_default_headers(self) -> None:
        self.set_api_headers()
        self.set_cors_headers()

    async def prepare(self) -> None:
        """What is refused before the body is read, in this order."""
        if self.request.method == "OPTIONS":
            return  # a CORS preflight: anyone may ask
        self.refuse_unknown_method()
        self.refuse_unreadable_body()
        if self.requires_auth:
            self.principal = await self.authenticate()

    def query_arguments(self, *names: str) -> dict[str, str | None]:
        """The named query parameters, None for each one absent (the service validates)."""
        return {name: self.get_query_argument(name, None) for name in names}

    def write_json(self, payload: dict, status: int = 200) -> None:
        self.set_status(status)
        # orjson: compact UTF-8 bytes, about 20 times faster than json.JSONEncoder (bench/README.md).
        self.finish(orjson.dumps(payload))


def reads_streamed_body(headers, max_body_bytes: int) -> bool:
    """Whether a request's body is read as it streams in: any body but one declared, as one
    plain number, within the limit (handlers/body.py says what becomes of the others)."""
    # ``in`` first: HTTPHeaders.get() of an absent header raises and catches a KeyError.
    if "Transfer-Encoding" in headers:
        return True
    if "Content-Length" not in headers:
        return False
    length = headers["Content-Length"]
    return not (length.isascii() and length.isdigit() and int(length) <= max_body_bytes)


@functools.cache  # one variant per handler class: as many as there are routes
def with_streamed_body(handler_class: type[BaseHandler]) -> type[BaseHandler]:
    """``handler_class`` as it runs for a request whose body is read as it streams in (the
    Application picks it per request, server/app.py, by reads_streamed_body()): Tornado
    hands it the body chunk by chunk (data_received(), handlers/body.py) instead of reading
    it whole first, so that a body too large, or of a length that cannot be known, gets a
    JSON answer without being kept. Every other request (no body, as every GET an app sends,
    or a small declared one) runs the class as routed: Tornado's streamed path costs one more
    event-loop turn, about 3 % of a /dashboard request (bench/README.md)."""
    variant = type(handler_class.__name__, (handler_class,), {"__module__": handler_class.__module__,
                                                            "__qualname__": handler_class.__qualname__})
    return tornado.web.stream_request_body(variant)


class NotFoundHandler(BaseHandler):
    """Every path the route table does not know."""

    requires_auth = False

    async def prepare(self) -> None:
        raise HttpProblem(404, DEFAULT_MESSAGES[404])
