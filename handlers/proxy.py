"""Where a request comes from and where clients reach us, behind a proxy or not.

Behind a trusted proxy (TRUST_PROXY: Heroku's router, a load balancer) the caller is the
last ``X-Forwarded-For`` entry, the one the proxy itself appended, and the scheme is its
``X-Forwarded-Proto``; otherwise both headers are ignored, since any client can send them.
``client_address`` also serves the access log (server/logs.py).
"""

from __future__ import annotations

from tornado.httputil import HTTPServerRequest

from handlers.protocol import Handler


def client_address(request: HTTPServerRequest, trust_proxy: bool) -> str:
    """The caller's IP."""
    if trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.remote_ip or ""


class ProxyAware:
    def client_address(self: Handler) -> str:
        return client_address(self.request, self.config.trust_proxy)

    def scheme(self: Handler) -> str:
        """``http`` or ``https``: how the client reached us (the proxy's word with TRUST_PROXY)."""
        scheme = self.request.protocol
        if self.config.trust_proxy:
            forwarded = self.request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
            scheme = forwarded if forwarded in ("http", "https") else scheme
        return scheme

    def base_url(self: Handler) -> str:
        """Where clients reach this API, for absolute links such as ``play_url``."""
        if self.config.public_base_url:
            return self.config.public_base_url.rstrip("/")
        return f"{self.scheme()}://{self.request.host}"
