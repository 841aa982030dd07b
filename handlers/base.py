"""The base of every API handler: authentication, JSON bodies, CORS, and errors as JSON.

Each concrete handler only parses its input, calls one service and shapes the answer.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets

import orjson
import tornado.web

from services.errors import (
    Conflict,
    DatabaseUnavailable,
    FeatureUnavailable,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Overloaded,
    ServiceError,
    TooManyAttempts,
)
from services.sessions import Principal

log = logging.getLogger("app.errors")

# One table from domain failures to HTTP statuses.
STATUS_FOR_ERROR = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooManyAttempts: 429,
    Overloaded: 503,
    DatabaseUnavailable: 503,
    FeatureUnavailable: 503,
}
DEFAULT_MESSAGES = {
    400: "The request is malformed.",
    401: "Authentication is required.",
    404: "Endpoint not found",
    405: "This method is not allowed on this endpoint.",
    413: "The request body is too large.",
    500: "Internal server error",
    503: "The service is temporarily unavailable. Please try again shortly.",
}
STATIC_HEADERS = {
    "Content-Type": "application/json; charset=UTF-8",
    "X-Content-Type-Options": "nosniff",
    # Responses carry tokens and personal data: no cache may keep them.
    "Cache-Control": "no-store",
}
# What a browser page may read of a cross-origin answer, beyond the basic headers.
CORS_EXPOSE = {"Access-Control-Expose-Headers": "Retry-After, X-Request-ID"}
CORS_ANY_ORIGIN = {**CORS_EXPOSE, "Access-Control-Allow-Origin": "*"}
DATABASE_RETRY_AFTER_SECONDS = 5
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)


class HttpProblem(tornado.web.HTTPError):
    """An HTTP-level refusal (body too large, wrong method) with a readable message."""

    def __init__(self, status_code: int, message: str):
        super().__init__(status_code)
        self.message = message


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    #: Handlers open to anonymous callers set this to False.
    requires_auth = True
    principal: Principal | None = None

    def initialize(self) -> None:
        self._body = bytearray()
        self._body_too_large = False
        self.application.inflight.enter()
        self._counted_in_flight = True

    # ----- what every handler uses ---------------------------------------------------

    @property
    def services(self):
        return self.application.services

    @property
    def config(self):
        return self.application.config

    @property
    def request_id(self) -> str:
        if not hasattr(self, "_request_id"):
            incoming = self.request.headers.get("X-Request-ID", "")
            self._request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(16)
        return self._request_id

    def json_body(self):
        """The parsed JSON body (any JSON value: the service's validation says what it must be)."""
        if self._body_too_large:
            raise self._body_too_large_problem()
        if not self._body.strip():
            raise InvalidInput("The request body must be a JSON object.")
        try:
            return json.loads(self._body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
            raise InvalidInput("The request body must be valid JSON.") from None

    def optional_json_body(self):
        """As json_body(), but None for an absent (empty) body."""
        if not self._body_too_large and not self._body.strip():
            return None
        body = self.json_body()
        if body is None:  # a JSON null is a body, and not an object: not the same as none
            raise InvalidInput("The request body must be a JSON object.")
        return body

    def base_url(self) -> str:
        """Where clients reach this API, for absolute links such as ``play_url``."""
        if self.config.public_base_url:
            return self.config.public_base_url.rstrip("/")
        scheme = self.request.protocol
        if self.config.trust_proxy:
            forwarded = self.request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
            scheme = forwarded if forwarded in ("http", "https") else scheme
        return f"{scheme}://{self.request.host}"

    def client_address(self) -> str:
        """The caller's IP. Behind a trusted proxy (Heroku's router, a load balancer) it is
        the last X-Forwarded-For entry, the one the proxy itself appended; otherwise
        that header is ignored, since any client can send it."""
        if self.config.trust_proxy:
            forwarded = self.request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
            if forwarded:
                return forwarded
        return self.request.remote_ip

    # ----- the request lifecycle ------------------------------------------------------

    def set_default_headers(self) -> None:
        # No "Server: TornadoServer/<version>": what runs here is nobody else's business.
        self._headers.pop("Server", None)
        # Constant, known-good values: straight into the header map, skipping the
        # per-call validation of set_header() on every response.
        self._headers.update(STATIC_HEADERS)
        # Safe as it is: either our own hex or an incoming id that matched _REQUEST_ID.
        self._headers["X-Request-ID"] = self.request_id
        self._set_cors_headers()

    async def prepare(self) -> None:
        method = self.request.method.lower()
        if method == "options":
            return
        if method.upper() not in self._allowed_methods():
            raise HttpProblem(405, DEFAULT_MESSAGES[405])
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.config.max_body_bytes:
            raise self._body_too_large_problem()
        if self.requires_auth:
            self.principal = await self.services.accounts.authenticate(self._bearer_token())

    def data_received(self, chunk: bytes) -> None:
        # A declared length over the limit was refused in prepare(). A chunked body has no
        # declared length: past the limit its chunks are dropped, never kept, and the
        # handler answers 413 (the HTTP server cuts off one that goes on far longer).
        if self._body_too_large or self._finished:
            return  # past the limit, or answered already: the rest is read and dropped
        if len(self._body) + len(chunk) > self.config.max_body_bytes:
            self._body_too_large = True
            self._body = bytearray()
        else:
            self._body.extend(chunk)

    def options(self, *args, **kwargs) -> None:
        """CORS preflight (route groups arrive as arguments and are not needed)."""
        self.set_header("Access-Control-Allow-Methods", ", ".join(self._allowed_methods()))
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    def head(self, *args, **kwargs):
        """HEAD wherever GET is served (RFC 9110 section 9.3.2: GET's status and headers,
        no body; Tornado drops the body of a HEAD answer). Elsewhere it is a 405."""
        return self.get(*args, **kwargs)

    def compute_etag(self) -> None:
        """No ETag: responses are no-store and mostly unique (tokens), so hashing each
        body for a validator no client may use would be pure cost."""
        return None

    def check_etag_header(self) -> bool:
        """Without ETags no If-None-Match can match: skip parsing it on every GET."""
        return False

    def write_json(self, payload: dict, status: int = 200) -> None:
        self.set_status(status)
        self.finish(orjson.dumps(payload))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, DatabaseUnavailable):
            self.application.metrics.database_unavailable()
        if isinstance(error, ServiceError):
            status_code = next(s for cls, s in STATUS_FOR_ERROR.items() if isinstance(error, cls))
            message = error.message
        else:
            message = getattr(error, "message", None) or DEFAULT_MESSAGES.get(status_code) \
                or self._reason or "The request could not be handled."
        self.set_status(status_code)
        if isinstance(error, (TooManyAttempts, Overloaded)):
            self.set_header("Retry-After", str(error.retry_after))
        elif status_code == 503:
            self.set_header("Retry-After", str(DATABASE_RETRY_AFTER_SECONDS))
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="video-app"')
        if status_code == 405:
            self.set_header("Allow", ", ".join(self._allowed_methods()))
        self.finish(orjson.dumps({"error": message}))

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, DatabaseUnavailable):
            # The driver's error it stands for, by name: which outage this was.
            log.warning("database unavailable", extra={"request_id": self.request_id, "error": value.reason})
            return
        if isinstance(value, (ServiceError, tornado.web.HTTPError)):
            return  # an expected answer, already in the access log with its status
        # The stack trace goes to the log with the request id; the client gets neither.
        log.error("unexpected error", exc_info=(typ, value, tb),
                  extra={"request_id": self.request_id, "method": self.request.method, "path": self.request.path})

    def on_finish(self) -> None:
        self._leave_in_flight()

    def on_connection_close(self) -> None:
        """The client went away (perhaps mid-upload). Tornado's own handling must run: it
        fails the body future that the request is waiting on, so that the handler, its
        partial body and its task end instead of waiting for good. The partial body is
        dropped at once."""
        super().on_connection_close()
        self._body = bytearray()
        self._leave_in_flight()

    # ----- helpers ----------------------------------------------------------------------

    @classmethod
    @functools.cache
    def _allowed_methods(cls) -> tuple[str, ...]:
        """The methods this handler implements, OPTIONS (the CORS preflight) included, and
        HEAD exactly where GET is."""
        def implemented(method: str) -> bool:
            return getattr(cls, method) is not getattr(tornado.web.RequestHandler, method)
        return tuple(m for m in cls.SUPPORTED_METHODS
                     if implemented("get" if m == "HEAD" else m.lower()))

    def _leave_in_flight(self) -> None:
        if self._counted_in_flight:
            self._counted_in_flight = False
            self.application.inflight.leave()

    def _bearer_token(self) -> str:
        match = _BEARER.fullmatch(self.request.headers.get("Authorization", "").strip())
        if not match:
            raise NotAuthenticated("Please log in: this request needs an 'Authorization: Bearer <token>' header.")
        return match.group(1)

    def _body_too_large_problem(self) -> HttpProblem:
        limit_kib = self.config.max_body_bytes // 1024
        return HttpProblem(413, f"The request body is too large: the limit is {limit_kib} KiB.")

    def _set_cors_headers(self) -> None:
        """Only for a browser's cross-origin request (it always sends Origin): the mobile
        app and same-origin pages have no use for CORS headers."""
        origin = self.request.headers.get("Origin")
        if not origin:
            return
        allowed = self.config.cors_origins
        if "*" in allowed:
            self._headers.update(CORS_ANY_ORIGIN)
        elif origin in allowed:
            self._headers.update(CORS_EXPOSE)
            self.set_header("Access-Control-Allow-Origin", origin)
            self.add_header("Vary", "Origin")


class NotFoundHandler(BaseHandler):
    """Every path the route table does not know."""

    requires_auth = False

    async def prepare(self) -> None:
        raise HttpProblem(404, DEFAULT_MESSAGES[404])
