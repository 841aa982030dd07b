"""/auth/refresh, /auth/sessions, /auth/password, /auth/password-reset: staying logged in, and leaving.
(Login, logout and DELETE /auth/me are in handlers/accounts.py.)"""

from handlers.base import BaseHandler

# The same answer whether or not the email has an account.
RESET_ACCEPTED = "If an account uses this email, a message with a link to reset its password is on its way."


class RefreshHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        self.write_json(await self.services.accounts.refresh(self.json_body()))


class SessionsHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"sessions": await self.services.accounts.sessions(self.principal)})


class SessionHandler(BaseHandler):
    async def delete(self, session_id: str) -> None:
        await self.services.accounts.end_session(self.principal, session_id)
        self.write_json({"message": "That session has ended."})


class PasswordHandler(BaseHandler):
    async def post(self) -> None:
        await self.services.accounts.change_password(self.principal, self.json_body(), self.client_address())
        self.write_json({"message": "Your password has been changed. Your other sessions have ended."})


class PasswordResetHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        await self.services.password_reset.request(self.json_body(), self.client_address())
        self.write_json({"message": RESET_ACCEPTED}, status=202)


class PasswordResetConfirmHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        await self.services.password_reset.confirm(self.json_body())
        self.write_json({"message": "Your password has been changed. Please log in with it."})
