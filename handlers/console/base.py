"""What every console page shares: its headers, its cookies, who is signed in, forms.

- **Headers**: HTML, a strict Content-Security-Policy (nothing but this origin's stylesheet,
  YouTube's thumbnails and forms posted here), ``X-Frame-Options: DENY``, no-store.
- **The session cookie** holds the account's access token and refresh token, exactly as a
  login answers them: the cookie is one of the account's sessions (GET /auth/sessions lists
  it). Every request authenticates its access token as a bearer token is (the signature and
  a live session), so logout, revocation, a password change or deletion end it at once; an
  access token that has expired is renewed with the refresh token (POST /auth/refresh's
  rotation), so the console lasts as long as the session does. ``HttpOnly``,
  ``SameSite=Strict``, and over https ``Secure`` with the ``__Host-`` prefix.
- **Forms**: every POST carries Tornado's ``_xsrf`` (checked here, for the console only:
  the JSON API authenticates with a bearer header, which a cross-site form cannot send).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import tornado.web

from handlers.base import BaseHandler
from handlers.errors import HttpProblem
from services.accounts.sessions import Principal
from services.common.errors import InvalidInput, NotAuthenticated

CONSOLE_DIR = Path(__file__).resolve().parent
TEMPLATES = CONSOLE_DIR / "templates"
STATIC = CONSOLE_DIR / "static"

LOGIN_PATH = "/console/login"
# Thumbnails are YouTube's own, loaded from its image host (https://i.ytimg.com), not proxied.
THUMBNAIL_ORIGIN = "https://i.ytimg.com"
CONSOLE_CSP = "; ".join((
    "default-src 'none'",
    "style-src 'self'",
    f"img-src 'self' {THUMBNAIL_ORIGIN}",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=UTF-8",
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
SESSION_COOKIE = "console"
XSRF_COOKIE = "console_xsrf"
SECURE_PREFIX = "__Host-"  # a cookie so named must be Secure, for Path=/ and no Domain (RFC 6265bis)
# The two tokens in one cookie value: neither a JWT nor a refresh token contains it.
TOKEN_SEPARATOR = "~"  # noqa: S105 - a separator, not a password
MAX_COOKIE_CHARS = 2048
MAX_FORM_FIELDS = 20
XSRF_REFUSED = ("This form has expired or did not come from the console. "
                "Please go back, reload the page and send it again.")


class SignInNeeded(Exception):
    """No live console session: the page sends the browser to the sign-in form."""


class ConsoleHandler(BaseHandler):
    """A console page: signed in (``operator``) unless ``needs_operator`` is False."""

    requires_auth = False  # the session cookie, not an Authorization header
    needs_operator = True
    _form: dict[str, str] | None = None

    # ----- headers and errors ---------------------------------------------------------------

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        for name, value in PAGE_HEADERS.items():
            self.set_header(name, value)
        self.set_header("X-Request-ID", self.request_id)

    def get_template_path(self) -> str:
        return str(TEMPLATES)

    def write_json(self, payload: dict, status: int = 200) -> None:
        """Where ErrorAnswers (handlers/errors.py: the one table of statuses and sentences)
        writes an error: a console page shows it in HTML instead."""
        self.clear_header("WWW-Authenticate")  # a page, not a bearer challenge
        self.render_error(status, str(payload.get("error", "")))

    def render_error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.render("error.html", status=status, message=message)

    def render_page(self, template: str, status: int = 200, **values: Any) -> None:
        self.set_status(status)
        self.render(template, **values)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(signed_in=self.principal is not None, page=getattr(self, "page", ""))
        return namespace

    # ----- cookies --------------------------------------------------------------------------

    @property
    def secure(self) -> bool:
        return self.scheme() == "https"

    def cookie_name(self, name: str) -> str:
        return SECURE_PREFIX + name if self.secure else name

    def cookie_flags(self) -> dict[str, Any]:
        return {"path": "/", "httponly": True, "samesite": "Strict", "secure": self.secure}

    @property
    def settings(self) -> dict[str, Any]:
        """The application's settings with the XSRF cookie's name and flags of this request
        (Tornado reads them from here): HttpOnly (the token reaches forms through the page,
        never through script), SameSite=Strict, Secure and ``__Host-`` over https."""
        settings = self.__dict__.get("_console_settings")
        if settings is None:
            settings = {**self.application.settings, "xsrf_cookie_name": self.cookie_name(XSRF_COOKIE),
                        "xsrf_cookie_kwargs": self.cookie_flags()}
            self.__dict__["_console_settings"] = settings
        return settings

    def set_session_cookie(self, token: str, refresh_token: str) -> None:
        # No Expires: the cookie ends with the browser; the session itself ends on the server.
        self.set_cookie(self.cookie_name(SESSION_COOKIE), f"{token}{TOKEN_SEPARATOR}{refresh_token}",
                        **self.cookie_flags())

    def clear_session_cookie(self) -> None:
        self.clear_cookie(self.cookie_name(SESSION_COOKIE), **self.cookie_flags())

    def _session_tokens(self) -> tuple[str, str] | None:
        value = self.get_cookie(self.cookie_name(SESSION_COOKIE))
        if not value or len(value) > MAX_COOKIE_CHARS or value.count(TOKEN_SEPARATOR) != 1:
            return None
        token, refresh_token = value.split(TOKEN_SEPARATOR)
        return (token, refresh_token) if token and refresh_token else None

    # ----- who is signed in -----------------------------------------------------------------

    async def prepare(self) -> None:
        self.refuse_unknown_method()
        self.refuse_unreadable_body()
        if not self.needs_operator:
            return
        try:
            self.principal = await self.signed_in()
        except SignInNeeded:
            self.redirect(LOGIN_PATH, status=303)
            return
        # Read from the account on every request, as /admin does.
        await self.services.admin.require_admin(self.principal)

    @property
    def operator(self) -> Principal:
        """The signed-in operator, on a page that needs one (prepare() has checked)."""
        if self.principal is None:
            raise RuntimeError("this console page has no operator")
        return self.principal

    async def signed_in(self) -> Principal:
        """The session of the cookie, authenticated as a bearer token is; renewed through the
        refresh token once its access token has expired. SignInNeeded when it has ended."""
        tokens = self._session_tokens()
        if tokens is None:
            raise SignInNeeded
        token, refresh_token = tokens
        accounts = self.services.accounts
        try:
            return await accounts.authenticate(token)
        except NotAuthenticated:
            pass
        # Expired, or ended: only a live session's refresh token renews it (logout, revocation,
        # a password change and deletion remove the session's refresh tokens too).
        try:
            renewed = await accounts.refresh({"refresh_token": refresh_token})
            principal = await accounts.authenticate(renewed["token"])
        except (NotAuthenticated, InvalidInput):
            self.clear_session_cookie()
            raise SignInNeeded from None
        self.set_session_cookie(renewed["token"], renewed["refresh_token"])
        return principal

    # ----- forms ----------------------------------------------------------------------------

    def form(self) -> dict[str, str]:
        """The posted form's fields (each once), after its ``_xsrf`` is checked: 403 without it."""
        if self._form is not None:
            return self._form
        if self._body_too_large:
            raise self._body_too_large_problem()
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body = bytes(self._body or b"")
        if body and content_type != "application/x-www-form-urlencoded":
            raise HttpProblem(400, "The console's forms are sent as application/x-www-form-urlencoded.")
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise HttpProblem(400, "This form could not be read: it is not text or has too many fields.") from None
        if any(len(values) > 1 for values in parsed.values()):
            raise HttpProblem(400, "This form names a field more than once.")
        fields = {name: values[0] for name, values in parsed.items()}
        # Where Tornado's check_xsrf_cookie looks for the token (the body is streamed, so
        # Tornado has not parsed it).
        if "_xsrf" in fields:
            self.request.arguments["_xsrf"] = [fields["_xsrf"].encode()]
        try:
            self.check_xsrf_cookie()
        except tornado.web.HTTPError:
            raise HttpProblem(403, XSRF_REFUSED) from None
        fields.pop("_xsrf", None)
        self._form = fields
        return fields


class ConsoleAsset(tornado.web.StaticFileHandler):
    """The console's stylesheet and icon: only these files of ``static/``, with the pages' strictness."""

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")


CONSOLE_ASSET_PATTERN = r"/console/static/(console\.css|favicon\.svg)"
