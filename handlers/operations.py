"""For the people who run and integrate the service: GET /docs and GET /metrics."""

from __future__ import annotations

import hmac
import importlib.util
from pathlib import Path

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST

from handlers.base import BaseHandler
from services.common.errors import NotAuthenticated

DOCS_DIR = Path(__file__).resolve().parent / "docs"


def _swagger_ui_static() -> Path:
    """Swagger UI's files as the pinned swagger-ui-py package ships them, found without
    importing the package (its framework glue is not needed here)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (pip install -r requirements.txt)")
    return Path(spec.submodule_search_locations[0]) / "static"


# Only scripts, styles and images of this origin, and requests to it (Swagger UI's
# "Try it out"): the page loads nothing from elsewhere and runs no inline script.
DOCS_CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))


class DocsHandler(BaseHandler):
    """GET /docs: Swagger UI on /openapi.json, from files served by this process."""

    requires_auth = False
    _page: bytes | None = None

    def get(self) -> None:
        if DocsHandler._page is None:
            DocsHandler._page = (DOCS_DIR / "index.html").read_bytes()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", DOCS_CSP)
        self.set_header("Referrer-Policy", "no-referrer")
        self.finish(DocsHandler._page)


class DocsAssetHandler(tornado.web.StaticFileHandler):
    """The page's scripts, stylesheet and icon: exactly these files, nothing else of either folder."""

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if path == "docs.js":
            return str(DOCS_DIR / path)
        return str(_swagger_ui_static() / path)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str:
        # The route's pattern admits only the four names above: there is no other path to check.
        return absolute_path

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")


DOCS_ASSET_PATTERN = r"/docs/(swagger-ui\.css|swagger-ui-bundle\.js|docs\.js|favicon-32x32\.png)"


class MetricsHandler(BaseHandler):
    """GET /metrics: Prometheus' text format. With METRICS_TOKEN set, only for a bearer of it."""

    requires_auth = False

    async def prepare(self) -> None:
        await super().prepare()
        expected = self.config.metrics_token
        if expected and self.request.method != "OPTIONS":
            presented = self.bearer_token()
            # Constant time: the comparison must not tell how much of a guess was right.
            if not hmac.compare_digest(presented.encode(), expected.encode()):
                raise NotAuthenticated("This metrics token is not valid.")

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(self.application.metrics.render())
