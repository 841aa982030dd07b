"""Sign-up, login, who-am-I and logout: the account use cases the handlers call."""

from __future__ import annotations

from services import validation
from services.errors import NotAuthenticated, Overloaded
from services.sessions import AuthTokenCodec, Principal, SessionStore
from services.throttle import LoginThrottle, SignupThrottle
from services.users import UserStore, public_user

INVALID_CREDENTIALS = "Invalid email or password"


class Accounts:
    def __init__(self, users: UserStore, sessions: SessionStore, tokens: AuthTokenCodec,
                 throttle: LoginThrottle, signup_throttle: SignupThrottle | None = None):
        self._users = users
        self._sessions = sessions
        self._tokens = tokens
        self._throttle = throttle
        self._signup_throttle = signup_throttle

    async def signup(self, body, client_address: str | None = None) -> str:
        fields = validation.validated(validation.SIGNUP, body)
        if self._signup_throttle is not None:
            await self._signup_throttle.attempt(client_address)  # before the hash it would cost
        return await self._users.create(fields["name"], fields["email"], fields["password"])

    async def login(self, body, client_address: str | None) -> dict:
        fields = validation.validated(validation.LOGIN, body)
        email = fields["email"]
        # Counted before the check: concurrent guesses cannot get past the limit.
        await self._throttle.attempt(email, client_address)
        try:
            user = await self._users.check_credentials(email, fields["password"])
        except Overloaded:
            await self._throttle.unchecked(email, client_address)
            raise
        if user is None:
            # The same words whether or not the email is registered.
            raise NotAuthenticated(INVALID_CREDENTIALS)
        await self._throttle.succeeded(email, client_address)
        principal = Principal(user_id=str(user["_id"]), session_id=await self._sessions.start(str(user["_id"])))
        return {"token": self._tokens.issue(principal), "user": public_user(user)}

    async def authenticate(self, bearer_token: str) -> Principal:
        """The caller behind an auth token, provided its session has not ended."""
        principal = self._tokens.verify(bearer_token)
        if not await self._sessions.is_live(principal):
            raise NotAuthenticated("You have been logged out. Please log in again.")
        return principal

    async def profile(self, principal: Principal) -> dict:
        return public_user(await self._users.get(principal.user_id), with_created_at=True)

    async def logout(self, principal: Principal) -> None:
        await self._sessions.end(principal)
