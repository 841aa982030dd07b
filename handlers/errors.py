"""Errors as JSON: one table from domain failures to HTTP statuses, the answer each gets
(``{"error": "<a sentence>"}`` with its ``Retry-After``, ``WWW-Authenticate`` or ``Allow``),
and what of it goes to the log."""

from __future__ import annotations

import http.client
import logging

import tornado.web

from services.common.errors import (
    Conflict,
    DatabaseUnavailable,
    FeatureUnavailable,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Overloaded,
    RetryLater,
    ServiceError,
    TooManyAttempts,
)

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
DATABASE_RETRY_AFTER_SECONDS = 5


class HttpProblem(tornado.web.HTTPError):
    """An HTTP-level refusal (body too large, wrong method) with a readable message."""

    def __init__(self, status_code: int, message: str):
        super().__init__(status_code)
        self.message = message


class ErrorAnswers:
    """Tornado's error hooks, for handlers that also have ``write_json``, ``request_id``
    and ``allowed_methods``."""

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, DatabaseUnavailable):
            self.application.metrics.database_unavailable()
        if isinstance(error, ServiceError):
            status_code = next(s for cls, s in STATUS_FOR_ERROR.items() if isinstance(error, cls))
            message = error.message
        else:
            reason = error.reason if isinstance(error, tornado.web.HTTPError) else None
            message = getattr(error, "message", None) or DEFAULT_MESSAGES.get(status_code) \
                or reason or http.client.responses.get(status_code) or "The request could not be handled."
        if isinstance(error, RetryLater):
            self.set_header("Retry-After", str(error.retry_after))
        elif status_code == 503:
            self.set_header("Retry-After", str(DATABASE_RETRY_AFTER_SECONDS))
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="video-app"')
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.write_json({"error": message}, status=status_code)

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
