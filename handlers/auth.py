"""Who is calling: the bearer token of ``Authorization``, checked by the accounts service
(signature, expiry, a live session) before the handler runs."""

from __future__ import annotations

import re
from collections.abc import Awaitable

from services.accounts.sessions import Principal
from services.common.errors import NotAuthenticated

_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)


class BearerAuth:
    #: Handlers open to anonymous callers set this to False.
    requires_auth = True
    #: The caller, once authenticate() has run (None for anonymous handlers).
    principal: Principal | None = None

    def authenticate(self) -> Awaitable[Principal]:
        """The caller, from the bearer token (401 without a live one). A plain function
        returning the service's coroutine: no coroutine of its own on every request."""
        return self.services.accounts.authenticate(self.bearer_token())

    def bearer_token(self) -> str:
        match = _BEARER.fullmatch(self.request.headers.get("Authorization", "").strip())
        if not match:
            raise NotAuthenticated("Please log in: this request needs an 'Authorization: Bearer <token>' header.")
        return match.group(1)
