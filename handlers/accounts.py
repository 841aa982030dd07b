"""/auth/*: sign-up, login, profile and logout."""

from handlers.base import BaseHandler


class SignupHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        user_id = await self.services.accounts.signup(self.json_body(), self.client_address())
        self.write_json({"message": "User registered successfully", "user_id": user_id}, status=201)


class LoginHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        session = await self.services.accounts.login(self.json_body(), self.client_address())
        self.write_json({"message": "Login successful", **session})


class ProfileHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"user": await self.services.accounts.profile(self.principal)})


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        await self.services.accounts.logout(self.principal)
        self.write_json({"message": "Logout successful"})
