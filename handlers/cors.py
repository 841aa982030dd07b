"""CORS (CORS_ORIGINS): the headers that let a browser page of an allowed origin read our
answers, and the preflight (OPTIONS) it sends before a request with a body or a token."""

from __future__ import annotations

from typing import Any

from handlers.protocol import Handler

# What a browser page may read of a cross-origin answer, beyond the basic headers.
CORS_EXPOSE = {"Access-Control-Expose-Headers": "Retry-After, X-Request-ID"}
CORS_ANY_ORIGIN = {**CORS_EXPOSE, "Access-Control-Allow-Origin": "*"}


class Cors:
    def set_cors_headers(self: Handler) -> None:
        """Only for a browser's cross-origin request (it always sends Origin): the mobile
        app and same-origin pages have no use for CORS headers."""
        origin = self.request.headers.get("Origin")
        if not origin:
            return
        allowed = self.config.cors_origins
        if "*" in allowed:
            for name, value in CORS_ANY_ORIGIN.items():
                self.set_header(name, value)
        elif origin in allowed:
            for name, value in CORS_EXPOSE.items():
                self.set_header(name, value)
            self.set_header("Access-Control-Allow-Origin", origin)
            self.add_header("Vary", "Origin")

    def options(self: Handler, *args: Any, **kwargs: Any) -> None:
        """CORS preflight (route groups arrive as arguments and are not needed)."""
        self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed_methods()))
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()
