"""The account use cases the handlers call: sign-up, login (with a password, or with
Google or Apple), refresh, sessions, logout, password change and account deletion."""

from __future__ import annotations

import time

from bson import ObjectId

from services.accounts.account_deletion import AccountDeletion
from services.accounts.identities import IdentityStore
from services.accounts.identity import Identity
from services.accounts.identity_tokens import PROVIDER_NAMES, IdentityClaims, IdentityTokens
from services.accounts.mailboxes import Mailboxes
from services.accounts.password_reset import ResetTokenStore
from services.accounts.refresh_tokens import RefreshTokenReplayed, RefreshTokenStore
from services.accounts.sessions import AuthTokenCodec, Principal, SessionStore
from services.accounts.throttle import SignupThrottle
from services.accounts.users import UserStore, public_user
from services.common import validation
from services.common.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound

INVALID_CREDENTIALS = "Invalid email or password"
UNVERIFIED = "Please verify your email address first: open the link in the message we sent you, " \
    "or ask for a new one."
INVALID_REFRESH = "This refresh token is not valid. Please log in again."
REFRESH_REPLAYED = "This refresh token was already used, so this login has been ended for safety. Please log in again."
SESSION_ENDED = "This login has ended. Please log in again."
ADDRESS_TAKEN = ("An account with this email already exists. Sign in with your email and password first; "
                 "signing in with {who} works once the account's email address is verified.")
ACCOUNT_GONE = "This account no longer exists."


class Accounts:
    def __init__(self, *, users: UserStore, sessions: SessionStore, tokens: AuthTokenCodec,
                 refresh_tokens: RefreshTokenStore, identity: Identity,
                 signup_throttle: SignupThrottle, deletion: AccountDeletion, mailboxes: Mailboxes,
                 reset_tokens: ResetTokenStore, identities: IdentityStore, identity_tokens: IdentityTokens,
                 require_email_verification: bool = False):
        self._users = users
        self._sessions = sessions
        self._tokens = tokens
        self._identity = identity
        self._refresh = refresh_tokens
        self._deletion = deletion
        self._signup_throttle = signup_throttle
        self._mailboxes = mailboxes
        self._reset_tokens = reset_tokens
        self._identities = identities
        self._identity_tokens = identity_tokens
        self._require_verification = require_email_verification

    async def signup(self, body, client_address: str | None = None) -> str | None:
        """The new account's id; with REQUIRE_EMAIL_VERIFICATION, None whether or not the
        address was registered: either way one password is hashed and one mail goes out (a
        verification, or a notice to the owner), so neither the answer nor its time tells."""
        fields = validation.validated(validation.SIGNUP, body)
        await self._signup_throttle.attempt(client_address)  # before the hash it would cost
        name, email = fields["name"], fields["email"]
        try:
            user_id = await self._users.create(name, email, fields["password"])
        except Conflict:
            if not self._require_verification:
                raise
            self._mailboxes.someone_signed_up_as(email)
            return None
        self._mailboxes.welcome(user_id, name, email)
        return None if self._require_verification else user_id

    async def login(self, body, client_address: str | None, user_agent: str = "") -> dict:
        fields = validation.validated(validation.LOGIN, body)
        email = fields["email"]
        user = await self._identity.throttled(email, client_address,
                                              lambda: self._users.check_credentials(email, fields["password"]))
        if user is None:
            # The same words whether or not the email is registered.
            raise NotAuthenticated(INVALID_CREDENTIALS)
        return await self._open_session(user, user_agent, INVALID_CREDENTIALS)

    async def _open_session(self, user: dict, user_agent: str, refusal: str) -> dict:
        """A new session of ``user``: what a login answers. Reached only once the credential
        was right, so the refusal of an unverified address tells nothing to a guesser."""
        if self._require_verification and user.get("email_verified") is not True:
            raise Forbidden(UNVERIFIED)
        user_id = str(user["_id"])
        principal = Principal(user_id=user_id, session_id=await self._sessions.start(user_id, user_agent))
        # A deletion may have begun while the credential was being checked; it ends sessions
        # after marking the account, so either it ends this one or this check sees the mark.
        if not await self._users.is_active(user_id):
            await self._sessions.end(principal)
            raise NotAuthenticated(refusal)
        return {"token": self._tokens.issue(principal), "user": public_user(user),
                "refresh_token": await self._refresh.issue(principal), "expires_in": self._tokens.ttl_seconds}

    # ----- signing in with Google or Apple -------------------------------------------------

    async def sign_in_with(self, provider: str, body: object, client_address: str | None,
                           user_agent: str = "") -> dict:
        """A login with the provider's ID token: the account of that identity, linked to the
        account of the same address or made for it on the first sign-in. ``created`` says
        whether this call made the account. Failed tokens count against the client address
        as failed logins do."""
        self._identity_tokens.provider(provider)  # 404 when not configured, whatever the body
        fields = validation.validated(validation.APPLE_SIGN_IN if provider == "apple" else validation.OAUTH_SIGN_IN,
                                      body)
        claims = await self._identity.sign_in_claims(provider, fields["id_token"], fields.get("nonce"),
                                                     client_address)
        user_id = await self._identities.user_of(provider, claims.sub)
        created = False
        if user_id is None:
            user_id, created = await self._first_sign_in(claims, fields.get("name"))
        try:
            user = await self._users.get(user_id)
        except NotFound:
            raise NotAuthenticated(ACCOUNT_GONE) from None
        if user.get("deleting_at") is not None:
            raise NotAuthenticated(ACCOUNT_GONE)
        return {**await self._open_session(user, user_agent, ACCOUNT_GONE), "created": created}

    async def _first_sign_in(self, claims: IdentityClaims, name: str | None) -> tuple[str, bool]:
        """Links the identity to the account of its address, or to a new account. Concurrent
        first sign-ins of one identity end with one link and one account: the identity's
        unique index picks the account id, and the account is created under that id by an
        upsert, which only one of them performs."""
        who = PROVIDER_NAMES[claims.provider]
        email = validation.normalize_email(claims.email) if claims.email else None
        if email is None:
            raise InvalidInput(f"{who} did not share a usable email address. Allow the app to see it, then try again.")
        existing = await self._users.find_by_email(email)
        if existing is not None:
            # Only a provider's word for the address AND ours: otherwise whoever controls the
            # Google or Apple account of an address could take over an account of it.
            if not (claims.email_verified and existing.get("email_verified", False)):
                raise Conflict(ADDRESS_TAKEN.format(who=who))
            linked = await self._identities.link(claims.provider, claims.sub, str(existing["_id"]), email)
            if linked is None:
                raise NotAuthenticated(ACCOUNT_GONE)
            return linked, False
        linked = await self._identities.link(claims.provider, claims.sub, str(ObjectId()), email)
        if linked is None:
            raise NotAuthenticated(ACCOUNT_GONE)
        try:
            created = await self._users.create_for_identity(linked, _display_name(name, claims, email),
                                                            email, claims.email_verified)
        except Conflict:
            # The address was signed up meanwhile (with a password): that account decides.
            await self._identities.unlink(claims.provider, claims.sub, linked)
            raise Conflict(ADDRESS_TAKEN.format(who=who)) from None
        if created and not await self._identities.owns(linked, claims.provider, claims.sub):
            # The account was deleted (with its identity) between our link and our insert:
            # this insert brought it back, with no way in. Undo it.
            await self._users.delete(linked)
            raise NotAuthenticated(ACCOUNT_GONE)
        return linked, created

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
        await self._identity.confirm(principal, {"password": fields["current_password"]}, client_address)
        if not await self._users.set_password(principal.user_id, fields["new_password"]):
            raise NotFound("This account no longer exists.")
        # A reset link mailed before (perhaps to an attacker reading the mailbox) must not undo this.
        await self._reset_tokens.revoke(principal.user_id)
        await self.end_sessions(principal.user_id, except_session=principal.session_id)

    async def delete_account(self, principal: Principal, body, client_address: str | None) -> None:
        await self._identity.confirm(principal, body, client_address)  # validates the body too
        await self._deletion.delete(principal.user_id)

    async def finish_pending_deletions(self) -> int:
        return await self._deletion.finish_pending()


def _display_name(sent: str | None, claims: IdentityClaims, email: str) -> str:
    """The name the app sent (Apple's first sign-in), the token's, or the address's local part."""
    for name in (sent, claims.name, email.split("@", 1)[0]):
        name = (name or "").strip()[:validation.MAX_NAME_CHARS]
        if name:
            return name
    return "User"
