"""/auth/*: sign-up, login (with a password, or with Google or Apple), profile (and
deleting it) and logout."""

from handlers.base import BaseHandler


class SignupHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        user_id = await self.services.accounts.signup(self.json_body(), self.client_address())
        if user_id is None:  # REQUIRE_EMAIL_VERIFICATION: the same answer for a registered address
            self.write_json({"message": "Thank you. Please open the link we mailed to this address to verify "
                                        "it, then log in. If the address already has an account, the "
                                        "message says so."}, status=202)
            return
        self.write_json({"message": "User registered successfully", "user_id": user_id}, status=201)


class LoginHandler(BaseHandler):
    requires_auth = False

    async def post(self) -> None:
        session = await self.services.accounts.login(self.json_body(), self.client_address(),
                                                     self.request.headers.get("User-Agent", ""))
        self.write_json({"message": "Login successful", **session})


class ProviderSignInHandler(BaseHandler):
    """POST /auth/oauth/<provider>: a login with the ID token the app got from the provider."""

    requires_auth = False
    provider = ""

    async def post(self) -> None:
        session = await self.services.accounts.sign_in_with(self.provider, self.json_body(), self.client_address(),
                                                            self.request.headers.get("User-Agent", ""))
        self.write_json({"message": "Login successful", **session})


class GoogleSignInHandler(ProviderSignInHandler):
    provider = "google"


class AppleSignInHandler(ProviderSignInHandler):
    provider = "apple"


class ProfileHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"user": await self.services.accounts.profile(self.principal)})

    async def delete(self) -> None:
        await self.services.accounts.delete_account(self.principal, self.json_body(), self.client_address())
        self.write_json({"message": "Your account and everything of it has been deleted."})


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        # The original app sends no body; a body, when sent, may name the scope.
        await self.services.accounts.logout(self.principal, self.optional_json_body())
        self.write_json({"message": "Logout successful"})
