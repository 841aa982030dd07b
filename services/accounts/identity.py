""""It is really you": the password checks behind login and behind the changes a logged-in
caller confirms (account deletion, change of address), all under the login throttle.

``confirm`` reads the proof from the request body. Today that is ``password``; an account
without one (Sign in with Apple or Google) will prove itself with a fresh ``id_token``
instead, in this one method, and every confirmed change follows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.accounts.sessions import Principal
from services.accounts.throttle import LoginThrottle
from services.accounts.users import UserStore
from services.common import validation
from services.common.errors import NotAuthenticated, Overloaded

WRONG_PASSWORD = "The password is not right."  # noqa: S105 - a message

Result = TypeVar("Result")


class Identity:
    def __init__(self, users: UserStore, login_throttle: LoginThrottle):
        self._users = users
        self._throttle = login_throttle

    async def confirm(self, principal: Principal, body: object, client_address: str | None) -> dict:
        """The caller's account, once the body proves the caller is its owner (``password``,
        checked like a login: the same counters, the same password queue, so a stolen
        token does not become a way to guess the password). Raises InvalidInput without a
        proof, NotAuthenticated for a wrong one, TooManyAttempts, Overloaded."""
        password = validation.validated(validation.IDENTITY_PROOF, body)["password"]
        user = await self._users.get(principal.user_id)
        if not await self.throttled(user["email"], client_address,
                                    lambda: self._users.password_matches(user, password)):
            raise NotAuthenticated(WRONG_PASSWORD)
        return user

    async def throttled(self, email: str, client_address: str | None,
                        check: Callable[[], Awaitable[Result]]) -> Result:
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
