"""Which methods a handler answers: those it implements, HEAD wherever GET is, OPTIONS
(the CORS preflight) everywhere; any other is a 405 naming the allowed ones (``Allow``)."""

from __future__ import annotations

import functools
from typing import Any

import tornado.web

from handlers.errors import DEFAULT_MESSAGES, HttpProblem
from handlers.protocol import Handler


class KnownMethods:
    SUPPORTED_METHODS: tuple[str, ...]  # Tornado's RequestHandler has it

    @classmethod
    @functools.cache
    def allowed_methods(cls) -> tuple[str, ...]:
        """The methods this handler implements, OPTIONS included, and HEAD exactly where GET is."""
        def implemented(method: str) -> bool:
            return getattr(cls, method) is not getattr(tornado.web.RequestHandler, method)
        return tuple(m for m in cls.SUPPORTED_METHODS
                     if implemented("get" if m == "HEAD" else m.lower()))

    def refuse_unknown_method(self: Handler) -> None:
        """A step of prepare(): 405 for a method this handler does not implement."""
        if self.request.method not in self.allowed_methods():
            raise HttpProblem(405, DEFAULT_MESSAGES[405])

    def head(self: Handler, *args: Any, **kwargs: Any) -> Any:
        """HEAD wherever GET is served (RFC 9110 section 9.3.2: GET's status and headers,
        no body; Tornado drops the body of a HEAD answer). Elsewhere it is a 405."""
        return self.get(*args, **kwargs)
