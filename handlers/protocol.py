"""What the handler pieces (headers, cors, methods, body, auth, proxy, errors) need of the
handler they are mixed into: Tornado's ``RequestHandler`` and ``BaseHandler``'s own parts.

A piece's methods declare ``self: Handler`` (or a piece's own extension of it), so a type
checker, and a reader, knows what ``self.request``, ``self.config`` and ``self.services``
are. Nothing here runs: a Protocol is only read by the type checker.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from tornado.httputil import HTTPServerRequest

if TYPE_CHECKING:
    from server.app import Services, VideoApp
    from server.config import Config


class Handler(Protocol):
    request: HTTPServerRequest

    @property
    def application(self) -> VideoApp: ...

    @property
    def config(self) -> Config: ...

    @property
    def services(self) -> Services: ...

    @property
    def request_id(self) -> str: ...

    def scheme(self) -> str: ...

    def set_header(self, name: str, value: Any) -> None: ...

    def add_header(self, name: str, value: Any) -> None: ...

    def clear_header(self, name: str) -> None: ...

    def set_status(self, status_code: int, reason: str | None = None) -> None: ...

    def finish(self, chunk: str | bytes | dict | None = None) -> Awaitable[None]: ...

    def write_json(self, payload: dict, status: int = 200) -> None: ...

    def allowed_methods(self) -> tuple[str, ...]: ...

    def get(self, *args: Any, **kwargs: Any) -> Any: ...
