""""It is really you": the password checks behind login and behind the changes a logged-in
caller confirms (account deletion, change of address), all under the login throttle, and the
ID token of a sign-in with Google or Apple, under its count per client address.

``confirm`` reads the proof from the request body: ``password``, or, for an account that
signs in with Apple or Google (perhaps with no password), a fresh ``id_token`` of one of its
identities. Every confirmed change (deletion, change of address) goes through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.accounts.identities import IdentityStore
from services.accounts.identity_tokens import PROVIDER_NAMES, IdentityClaims, IdentityTokens, KeysUnavailable
from services.accounts.sessions import Principal
from services.accounts.throttle import LoginThrottle
from services.accounts.users import UserStore
from services.common import validation
from services.common.errors import InvalidInput, NotAuthenticated, Overloaded

WRONG_PASSWORD = "The password is not right."  # noqa: S105 - a message
CONFIRM_WITH = "Confirm with your password, or with a fresh id_token from the provider you sign in with."
# A confirmation by ID token needs one issued this recently (the app signs in again for it).
FRESH_ID_TOKEN_SECONDS = 600

Result = TypeVar("Result")


class Identity:
    def __init__(self, users: UserStore, login_throttle: LoginThrottle, identities: IdentityStore,
                 identity_tokens: IdentityTokens):
        self._users = users
        self._throttle = login_throttle
        self._identities = identities
        self._identity_tokens = identity_tokens

    async def confirm(self, principal: Principal, body: object, client_address: str | None) -> dict:
        """The caller's account, once the body proves the caller is its owner: ``password``,
        checked like a login (the same counters, the same password queue, so a stolen token
        does not become a way to guess the password), or ``id_token`` (and ``nonce``) from
        Google or Apple, of an identity of this account, issued in the last few minutes.
        Raises InvalidInput without a proof, NotAuthenticated for a wrong one,
        TooManyAttempts, Overloaded, UpstreamUnavailable."""
        fields = validation.validated(validation.IDENTITY_PROOF, body)
        user = await self._users.get(principal.user_id)
        if "password" in fields:
            password = fields["password"]
            if not await self.throttled(user["email"], client_address,
                                        lambda: self._users.password_matches(user, password)):
                raise NotAuthenticated(WRONG_PASSWORD)
        elif "id_token" in fields:
            await self._check_id_token(principal, fields["id_token"], fields.get("nonce"))
        else:
            raise InvalidInput(CONFIRM_WITH)
        return user

    async def _check_id_token(self, principal: Principal, id_token: str, nonce: str | None) -> None:
        provider = self._identity_tokens.provider_of(id_token)
        if provider is None:
            raise NotAuthenticated("This id_token is not from a provider this account can sign in with.")
        claims = await self._identity_tokens.verify(provider, id_token, nonce)
        if not await self._identities.owns(principal.user_id, provider, claims.sub):
            raise NotAuthenticated(f"This {PROVIDER_NAMES[provider]} account is not one this account signs in with.")
        if self._identity_tokens.clock() - claims.issued_at > FRESH_ID_TOKEN_SECONDS:
            raise NotAuthenticated(f"This ID token is not fresh. Sign in with {PROVIDER_NAMES[provider]} "
                                   "again in the app, then confirm with the new one.")

    async def sign_in_claims(self, provider: str, id_token: str, nonce: str | None,
                             client_address: str | None) -> IdentityClaims:
        """What a sign-in's ID token proves, verified under the login throttle's count per
        client address: the attempt is counted before the token is verified, so concurrent
        forgeries get no more verifications than the limit (then TooManyAttempts); a valid
        token gives its attempt back, as a right password does, and so does one that could
        not be checked (the provider's keys unreachable), so only failures add up."""
        await self._throttle.address_attempt(client_address)
        try:
            claims = await self._identity_tokens.verify(provider, id_token, nonce)
        except KeysUnavailable:
            await self._throttle.address_given_back(client_address)
            raise
        await self._throttle.address_given_back(client_address)
        return claims

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
