"""Who is calling: the bearer token of ``Authorization``, checked by the accounts service
(signature, expiry, a live session) before the handler runs."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Protocol

from handlers.protocol import Handler
from services.accounts.sessions import Principal
from services.common.errors import NotAuthenticated

_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)


class AuthHandler(Handler, Protocol):
    def bearer_token(self) -> str: ...


class BearerAuth:
    #: Handlers open to anonymous callers set this to False.
    requires_auth = True
    #: The caller, set in prepare() before any method of a handler that requires auth; the
    #: others (and a CORS preflight) keep None, and only AdminHandler.prepare looks at it.
    principal: Principal = None  # type: ignore[assignment]

    def authenticate(self: AuthHandler) -> Awaitable[Principal]:
        """The caller, from the bearer token (401 without a live one). A plain function
        returning the service's coroutine: no coroutine of its own on every request."""
        return self.services.accounts.authenticate(self.bearer_token())

    def bearer_token(self: Handler) -> str:
        match = _BEARER.fullmatch(self.request.headers.get("Authorization", "").strip())
        if not match:
            raise NotAuthenticated("Please log in: this request needs an 'Authorization: Bearer <token>' header.")
        return match.group(1)
