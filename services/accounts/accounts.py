"""The account use cases the handlers call: sign-up, login, refresh, sessions, logout,
password change and account deletion."""

from __future__ import annotations

import time

from services.accounts.account_deletion import AccountDeletion
from services.accounts.refresh_tokens import RefreshTokenReplayed, RefreshTokenStore
from services.accounts.sessions import AuthTokenCodec, Principal, SessionStore
from services.accounts.throttle import LoginThrottle, SignupThrottle
from services.accounts.users import UserStore, public_user
from services.common import validation
from services.common.errors import NotAuthenticated, NotFound, Overloaded

INVALID_CREDENTIALS = "Invalid email or password"
WRONG_PASSWORD = "The password is not right."  # noqa: S105 - a message
INVALID_REFRESH = "This refresh token is not valid. Please log in again."
REFRESH_REPLAYED = "This refresh token was already used, so this login has been ended for safety. Please log in again."
SESSION_ENDED = "This login has ended. Please log in again."


class Accounts:
    def __init__(self, *, users: UserStore, sessions: SessionStore, tokens: AuthTokenCodec,
                 refresh_tokens: RefreshTokenStore, login_throttle: LoginThrottle,
                 signup_throttle: SignupThrottle, deletion: AccountDeletion):
        self._users = users
        self._sessions = sessions
        self._tokens = tokens
        self._throttle = login_throttle
        self._refresh = refresh_tokens
        self._deletion = deletion
        self._signup_throttle = signup_throttle

    async def signup(self, body, client_address: str | None = None) -> str:
        fields = validation.validated(validation.SIGNUP, body)
        await self._signup_throttle.attempt(client_address)  # before the hash it would cost
        return await self._users.create(fields["name"], fields["email"], fields["password"])

    async def login(self, body, client_address: str | None, user_agent: str = "") -> dict:
        fields = validation.validated(validation.LOGIN, body)
        email = fields["email"]
        user = await self._throttled(email, client_address,
                                     lambda: self._users.check_credentials(email, fields["password"]))
        if user is None:
            # The same words whether or not the email is registered.
            raise NotAuthenticated(INVALID_CREDENTIALS)
        user_id = str(user["_id"])
        principal = Principal(user_id=user_id, session_id=await self._sessions.start(user_id, user_agent))
        # A deletion may have begun while the password was being checked; it ends sessions
        # after marking the account, so either it ends this one or this check sees the mark.
        if not await self._users.is_active(user_id):
            await self._sessions.end(principal)
            raise NotAuthenticated(INVALID_CREDENTIALS)
        return {"token": self._tokens.issue(principal), "user": public_user(user),
                "refresh_token": await self._refresh.issue(principal), "expires_in": self._tokens.ttl_seconds}

    async def authenticate(self, bearer_token: str) -> Principal:
        """The caller behind an auth token, provided its session has not ended."""
        principal = self._tokens.verify(bearer_token)
        if not await self._sessions.is_live(principal):
            raise NotAuthenticated("You have been logged out. Please log in again.")
        return principal

    async def profile(self, principal: Principal) -> dict:
        return public_user(await self._users.get(principal.user_id), with_created_at=True)

    # ----- staying logged in ------------------------------------------------------------

    async def refresh(self, body) -> dict:
        """A new pair for the session of the presented refresh token, which is spent."""
        token = validation.validated(validation.REFRESH, body)["refresh_token"]
        try:
            rotation = await self._refresh.rotate(token, access_issued_at=int(time.time()))
        except RefreshTokenReplayed as replay:
            await self._end_session(replay.principal)
            raise NotAuthenticated(REFRESH_REPLAYED) from None
        if rotation is None:
            raise NotAuthenticated(INVALID_REFRESH)
        # The successor is stored by now; this runs after, so a logout or deletion either
        # came first (the session is gone: clean up here) or comes later (and removes it).
        if not await self._sessions.extend(rotation.principal):
            await self._refresh.end_session(rotation.principal.session_id)
            raise NotAuthenticated(SESSION_ENDED)
        return {
            "token": self._tokens.issue(rotation.principal, issued_at=rotation.access_issued_at),
            "refresh_token": rotation.refresh_token,
            "expires_in": self._tokens.ttl_seconds,
        }

    async def sessions(self, principal: Principal) -> list[dict]:
        return await self._sessions.list_for(principal)

    async def end_session(self, principal: Principal, session_id: str) -> None:
        """Ends one of the caller's sessions (possibly the current one)."""
        target = Principal(user_id=principal.user_id, session_id=session_id)
        if not await self._sessions.end(target):
            raise NotFound("You have no such session.")
        await self._refresh.end_session(session_id)

    async def logout(self, principal: Principal, body=None) -> None:
        """``body`` None (no body, as the original app sends) ends this session."""
        scope = "current" if body is None else validation.validated(validation.LOGOUT, body).get("scope", "current")
        if scope == "current":
            await self._end_session(principal)
        elif scope == "others":
            await self.end_sessions(principal.user_id, except_session=principal.session_id)
        else:
            await self.end_sessions(principal.user_id)

    async def end_sessions(self, user_id: str, *, except_session: str | None = None) -> None:
        # The sessions first: from that moment their tokens are refused. Refresh tokens
        # of an ended session are useless anyway, and are removed right after.
        await self._sessions.end_all(user_id, except_session=except_session)
        await self._refresh.end_all(user_id, except_session=except_session)

    async def _end_session(self, principal: Principal) -> None:
        await self._sessions.end(principal)
        await self._refresh.end_session(principal.session_id)

    # ----- changing the password, leaving ------------------------------------------------

    async def change_password(self, principal: Principal, body, client_address: str | None) -> None:
        fields = validation.validated(validation.PASSWORD_CHANGE, body)
        await self._check_password(principal, fields["current_password"], client_address)
        if not await self._users.set_password(principal.user_id, fields["new_password"]):
            raise NotFound("This account no longer exists.")
        await self.end_sessions(principal.user_id, except_session=principal.session_id)

    async def delete_account(self, principal: Principal, body, client_address: str | None) -> None:
        fields = validation.validated(validation.ACCOUNT_DELETION, body)
        await self._check_password(principal, fields["password"], client_address)
        await self._deletion.delete(principal.user_id)

    async def finish_pending_deletions(self) -> int:
        return await self._deletion.finish_pending()

    async def _check_password(self, principal: Principal, password: str, client_address: str | None) -> None:
        """The caller's password, throttled as login is (same counters): a stolen token
        must not become a way to guess the password."""
        user = await self._users.get(principal.user_id)
        if not await self._throttled(user["email"], client_address,
                                     lambda: self._users.password_matches(user, password)):
            raise NotAuthenticated(WRONG_PASSWORD)

    async def _throttled(self, email: str, client_address: str | None, check):
        """Runs one password check (``check()``, awaited) under the login throttle: the
        attempt is counted before the check, so concurrent guesses cannot get past the
        limit; a check the busy hasher refused gives its attempt back; a right password
        clears the account's count. Returns what the check returned."""
        await self._throttle.attempt(email, client_address)
        try:
            result = await check()
        except Overloaded:
            await self._throttle.unchecked(email, client_address)
            raise
        if result:
            await self._throttle.succeeded(email, client_address)
        return result
