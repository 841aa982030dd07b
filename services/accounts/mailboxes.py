"""Proven mailboxes: verifying the address of an account, and moving it to another.

- Sign-up sends a verification mail itself; ``POST /auth/verify-email`` sends another. The
  link's token (mail_tokens.py) is bound to the account and the address it was sent to:
  ``confirm_verification`` spends it and marks that address verified, if the account still
  has it.
- A change of address (``request_change``) proves the caller is the owner (identity.py),
  then mails a confirmation link to the new address and a notice to the old one. Nothing
  changes until ``confirm_change`` spends the token, bound to the account, its old and its
  new address; the unique index on ``email`` then decides, atomically, whether the new
  address is still free. Outstanding reset, verification and change tokens of the account
  are revoked.

Every mail is made and sent after the answer, through the bounded outbox
(services/common/mail.py). Without a mailer (production without ``SMTP_URL``) sign-up sends
nothing, and the two requests that exist only to send a mail answer 503; an operator marks
an address verified with ``python -m server verify-email <address>``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

from services.accounts.identity import Identity
from services.accounts.mail_tokens import MailTokenStore
from services.accounts.password_reset import ResetTokenStore
from services.accounts.sessions import Principal
from services.accounts.throttle import MailRequestThrottle
from services.accounts.users import ADDRESS_TAKEN, UserStore, public_user
from services.common import validation
from services.common.errors import Conflict, FeatureUnavailable, NotAuthenticated, TooManyAttempts
from services.common.mail import Mailer, Outbox

log = logging.getLogger("app.accounts")

VERIFICATION_SENT = "A message with a link to verify your email address is on its way."
ALREADY_VERIFIED = "Your email address is already verified."
INVALID_VERIFICATION = "This verification link is invalid, has expired or was already used. " \
    "Please ask for a new one."
CHANGE_SENT = "A message with a link to confirm the change is on its way to the new address. " \
    "Your address stays as it is until you open it."
SAME_ADDRESS = "This is already the address of your account."
INVALID_CHANGE = "This link to change your address is invalid, has expired or was already used, " \
    "or the account's address has changed since. Please ask for a new one."
UNAVAILABLE = "Email verification is not available on this server."


class Mailboxes:
    def __init__(self, *, users: UserStore, identity: Identity, verification_tokens: MailTokenStore,
                 change_tokens: MailTokenStore, reset_tokens: ResetTokenStore, throttle: MailRequestThrottle,
                 outbox: Outbox, mailer: Mailer | None, mail_from: str, verify_url: str, change_url: str,
                 ttl_seconds: int):
        """``mailer`` None: no mail can be sent (production without SMTP_URL)."""
        self._users = users
        self._identity = identity
        self._verification = verification_tokens
        self._changes = change_tokens
        self._resets = reset_tokens
        self._throttle = throttle
        self._outbox = outbox
        self._mailer = mailer
        self._mail_from = mail_from
        self._verify_url = verify_url
        self._change_url = change_url
        self._ttl_hours = max(1, ttl_seconds // 3600)

    # ----- verification ------------------------------------------------------------------

    def welcome(self, user_id: str, name: str, email: str) -> None:
        """After a sign-up: the first verification mail, sent in the background."""
        self._submit("verification", lambda: self._send_verification(user_id, name, email))

    def someone_signed_up_as(self, email: str) -> None:
        """A sign-up with a registered address, while its answer may not tell (see
        accounts.py): the owner gets a mail saying so instead of a second account, or a new
        verification link while the address is unverified."""
        self._submit("existing account", lambda: self._send_existing_account_notice(email))

    async def request_verification(self, principal: Principal, client_address: str | None) -> str:
        self._require_mailer()
        user = await self._users.get(principal.user_id)
        if user.get("email_verified") is True:
            raise Conflict(ALREADY_VERIFIED)
        await self._throttle.attempt(principal.user_id, client_address)
        user_id, name, email = str(user["_id"]), user["name"], user["email"]
        self._submit("verification", lambda: self._send_verification(user_id, name, email))
        return VERIFICATION_SENT

    async def confirm_verification(self, body: object) -> dict:
        token = validation.validated(validation.MAIL_TOKEN, body)["token"]
        found = await self._verification.spend(token)
        if found is None:
            raise NotAuthenticated(INVALID_VERIFICATION)
        user = await self._users.mark_verified(found["user_id"], found["email"])
        if user is None:
            raise NotAuthenticated(INVALID_VERIFICATION)
        await self._verification.revoke(found["user_id"])  # the other links sent have no use left
        return public_user(user, with_created_at=True)

    # ----- change of address -------------------------------------------------------------

    async def request_change(self, principal: Principal, body: object, client_address: str | None) -> str:
        self._require_mailer()
        new_email = validation.validated(validation.EMAIL_CHANGE, body)["new_email"]
        user = await self._identity.confirm(principal, body, client_address)
        if new_email == user["email"]:
            raise Conflict(SAME_ADDRESS)
        if await self._users.email_taken(new_email):
            raise Conflict(ADDRESS_TAKEN)
        # Each request mails two addresses, one of them chosen by the caller: counted per account.
        await self._throttle.attempt(principal.user_id, client_address)
        user_id, name, old_email = str(user["_id"]), user["name"], user["email"]
        self._submit("change of address", lambda: self._send_change(user_id, name, old_email, new_email))
        return CHANGE_SENT

    async def confirm_change(self, body: object) -> dict:
        token = validation.validated(validation.MAIL_TOKEN, body)["token"]
        found = await self._changes.spend(token)
        if found is None:
            raise NotAuthenticated(INVALID_CHANGE)
        user = await self._users.change_email(found["user_id"], found["old_email"], found["new_email"])
        if user is None:
            raise NotAuthenticated(INVALID_CHANGE)
        user_id = found["user_id"]
        # Links sent to the old address, or made before the move, must not outlive it.
        await self._resets.revoke(user_id)
        await self._verification.revoke(user_id)
        await self._changes.revoke(user_id)
        return public_user(user, with_created_at=True)

    # ----- the mails ---------------------------------------------------------------------

    async def idle(self) -> None:
        """Waits until every queued mail has been handled (tests, shutdown)."""
        await self._outbox.idle()

    def _require_mailer(self) -> None:
        if self._mailer is None:
            raise FeatureUnavailable(UNAVAILABLE)

    def _submit(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        if self._mailer is not None:
            self._outbox.submit(name, job)

    async def _send(self, to: str, subject: str, text: str) -> None:
        assert self._mailer is not None  # _submit queues nothing without one
        message = EmailMessage()
        message["From"] = self._mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        await self._mailer.send(message)

    async def _send_verification(self, user_id: str, name: str, email: str) -> None:
        token = await self._verification.create(user_id, email=email)
        link = self._verify_url.replace("{token}", token)
        await self._send(email, "Verify your email address", (
            f"Hello {name},\n\n"
            f"Please confirm that this address is yours by opening this link within {self._ttl_hours} hours:\n\n"
            f"{link}\n\n"
            f"If you did not create an account, ignore this message.\n"))

    async def _send_existing_account_notice(self, email: str) -> None:
        try:  # a flood of sign-ups with one address must not flood its owner
            await self._throttle.attempt(f"signup:{email}", None)
        except TooManyAttempts:
            return
        user = await self._users.find_by_email(email)
        if user is None:
            return
        if user.get("email_verified") is not True:
            # Its owner may be signing up again because the first link was lost, and cannot
            # log in (REQUIRE_EMAIL_VERIFICATION) to ask for another: this is that other one.
            await self._send_verification(str(user["_id"]), user["name"], email)
            return
        await self._send(email, "Someone tried to sign up with your address", (
            f"Hello {user['name']},\n\n"
            f"Someone, perhaps you, tried to create an account with this address, which already has one.\n"
            f"If it was you, log in instead; if you forgot your password, reset it from the login screen.\n"
            f"If it was not you, ignore this message: nothing has changed.\n"))

    async def _send_change(self, user_id: str, name: str, old_email: str, new_email: str) -> None:
        token = await self._changes.create(user_id, old_email=old_email, new_email=new_email)
        link = self._change_url.replace("{token}", token)
        await self._send(new_email, "Confirm your new email address", (
            f"Hello {name},\n\n"
            f"To move your account to this address, open this link within {self._ttl_hours} hours:\n\n"
            f"{link}\n\n"
            f"Until then the account stays at its current address. If you did not ask for this, "
            f"ignore this message.\n"))
        await self._send(old_email, "A change of your account's email address was requested", (
            f"Hello {name},\n\n"
            f"Someone logged in to your account and asked to move it to the address {new_email}.\n"
            f"Nothing changes unless the link sent there is opened.\n\n"
            f"If this was not you, secure your account now: change your password (which ends every "
            f"other login), or reset it from the login screen, and log out everywhere from the app's "
            f"list of sessions.\n"))
