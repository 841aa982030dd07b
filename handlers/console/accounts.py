"""/console/login and /console/logout: the console's sessions, through the Accounts service
(the same throttles, password queue and sessions as POST /auth/login and /auth/logout)."""

from __future__ import annotations

from handlers.console.base import ConsoleHandler
from services.common.errors import Forbidden

CONSOLE_HOME = "/console"


class ConsoleLoginHandler(ConsoleHandler):
    needs_operator = False
    page = "login"
    email = ""

    def get(self) -> None:
        self.render_page("login.html", email="", error=None)

    async def post(self) -> None:
        fields = self.form()
        self.email = fields.get("email", "")
        accounts = self.services.accounts
        session = await accounts.login({"email": self.email, "password": fields.get("password", "")},
                                       self.client_address(), self.request.headers.get("User-Agent", ""))
        principal = await accounts.authenticate(session["token"])
        try:
            await self.services.admin.require_admin(principal)
        except Forbidden:
            # Not an operator: the session just begun is ended, and no cookie is set.
            await accounts.logout(principal)
            raise
        self.set_session_cookie(session["token"], session["refresh_token"])
        self.redirect(CONSOLE_HOME, status=303)

    def render_error(self, status: int, message: str) -> None:
        """A refused sign-in (the login's own sentences: 400, 401, 429) is shown on the form."""
        if status in (400, 401, 429) and self.request.method == "POST" and self._form is not None:
            self.render_page("login.html", status=status, email=self.email, error=message)
        else:
            super().render_error(status, message)


class ConsoleLogoutHandler(ConsoleHandler):
    async def post(self) -> None:
        self.form()
        await self.services.accounts.logout(self.operator)
        self.clear_session_cookie()
        self.redirect("/console/login", status=303)
