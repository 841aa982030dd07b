"""The base of every API handler, composed of one piece per concern:

- handlers/headers.py: the headers every answer carries, the request id, no ETag
- handlers/cors.py: CORS headers and the preflight
- handlers/methods.py: the allowed methods, HEAD, 405
- handlers/body.py: streamed, bounded JSON bodies, 400 or 413 from the headers
- handlers/auth.py: the bearer token and the caller (``principal``)
- handlers/proxy.py: the client's address and our base URL, behind a proxy or not
- handlers/errors.py: domain errors to statuses, errors as JSON, what is logged

Each concrete handler only parses its input, calls one service and shapes the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import tornado.web

from handlers.auth import BearerAuth
from handlers.body import JsonBody
from handlers.cors import Cors
from handlers.errors import DEFAULT_MESSAGES, ErrorAnswers, HttpProblem
from handlers.headers import ApiHeaders
from handlers.methods import KnownMethods
from handlers.proxy import ProxyAware

if TYPE_CHECKING:
    from server.app import Services, VideoApp
    from server.config import Config


# Streamed for every request, with a body or none. Besides keeping no body past the limit,
# it runs the handler's method one event-loop turn after prepare(): under many connections
# that turn batches the answers of every connection read in one turn, which made /dashboard
# faster than Tornado's plain path (each request answered in the turn its headers arrive),
# although it costs more instructions a request (figures: bench/README.md).
@tornado.web.stream_request_body
class BaseHandler(ErrorAnswers, Cors, JsonBody, BearerAuth, ProxyAware, ApiHeaders, KnownMethods,
                  tornado.web.RequestHandler):
    """The lifecycle, each step from its own piece (named calls, not a chain of super()
    calls: this runs on every request)."""

    application: VideoApp  # Tornado's, typed as what server/app.py builds

    @property
    def services(self) -> Services:
        return self.application.services

    @property
    def config(self) -> Config:
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
        # orjson: compact UTF-8 bytes, many times faster than json.JSONEncoder (bench/README.md).
        self.finish(orjson.dumps(payload))


class NotFoundHandler(BaseHandler):
    """Every path the route table does not know."""

    requires_auth = False

    async def prepare(self) -> None:
        raise HttpProblem(404, DEFAULT_MESSAGES[404])
