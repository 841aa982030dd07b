"""What every API response carries: a JSON content type, ``nosniff``, ``no-store`` and no
ETag, no ``Server`` header, and the request's id (``X-Request-ID``, also in its log lines).

Each is set through Tornado's public ``set_header()``: its per-value check costs little
(bench/README.md), and nothing here depends on how Tornado stores the headers.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets

from tornado.httputil import HTTPServerRequest

from handlers.protocol import Handler

STATIC_HEADERS = {
    "Content-Type": "application/json; charset=UTF-8",
    "X-Content-Type-Options": "nosniff",
    # Responses carry tokens and personal data: no cache may keep them.
    "Cache-Control": "no-store",
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


_id_prefix: str = secrets.token_hex(8)
_id_counter: itertools.count[int] = itertools.count()


def _start_request_ids() -> None:
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = secrets.token_hex(8), itertools.count()


os.register_at_fork(after_in_child=_start_request_ids)  # each worker draws its own half


def new_request_id() -> str:
    """32 hex digits: a random half drawn once per process and a counter, so no two
    requests share one, without a call for random bytes (a system call) per request.
    An id names a request in the logs and grants nothing: it need not be unguessable."""
    return f"{_id_prefix}{next(_id_counter):016x}"


class ApiHeaders:
    request: HTTPServerRequest  # Tornado's RequestHandler has it
    _request_id = ""

    @property
    def request_id(self) -> str:
        """The caller's ``X-Request-ID`` if it is a sane token, else one of our own."""
        if not self._request_id:
            incoming = self.request.headers.get("X-Request-ID", "")
            self._request_id = incoming if _REQUEST_ID.fullmatch(incoming) else new_request_id()
        return self._request_id

    def set_api_headers(self: Handler) -> None:
        # No "Server: TornadoServer/<version>": what runs here is nobody else's business.
        self.clear_header("Server")
        for name, value in STATIC_HEADERS.items():
            self.set_header(name, value)
        # Either our own hex or an incoming id that matched _REQUEST_ID.
        self.set_header("X-Request-ID", self.request_id)

    def compute_etag(self) -> None:
        """No ETag: responses are no-store and mostly unique (tokens), so hashing each
        body for a validator no client may use would be pure cost."""
        return None

    def check_etag_header(self) -> bool:
        """Without ETags no If-None-Match can match: skip parsing it on every GET."""
        return False
