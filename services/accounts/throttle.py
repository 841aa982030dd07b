"""Throttles, each on the shared limiter (services/accounts/ratelimit.py: one atomic update a hit).

Login: at most so many attempts per account and per client address in a window (OWASP
ASVS V2.2.1: anti-automation against credential stuffing and brute force). Each attempt
is counted *before* its password is checked, so a burst of concurrent guesses cannot get
more checks than the limit. A successful login clears its account's count and gives its
address back the attempt, so only failures add up. A sign-in with Google or Apple counts
against the same per-address limit, before its ID token is verified (it names no account
until then). Sign-ups per address, and password reset requests per email and per address,
are counted alike.
"""

from __future__ import annotations

from services.accounts.ratelimit import FixedWindowLimiter
from services.common.datastore import Database

LOCKED_OUT = "Too many failed login attempts. Please wait a few minutes and try again."
COLLECTION = "login_failures"


class _PerSubjectAndAddress:
    """Two limits in one collection: per subject (``<kind>:<email>``) and per client address.
    The address is counted first: once it is refused, it uses up no one's per-subject
    allowance (a flood from one address cannot lock other people out)."""

    def __init__(self, collection, *, kind: str, max_per_subject: int, max_per_address: int,
                 window_seconds: int, message: str):
        self._kind = kind
        self._per_subject = FixedWindowLimiter(collection, limit=max_per_subject, window_seconds=window_seconds,
                                               message=message)
        self._per_address = FixedWindowLimiter(collection, limit=max_per_address, window_seconds=window_seconds,
                                               message=message)

    async def ensure_indexes(self) -> None:
        await self._per_subject.ensure_indexes()

    async def attempt(self, email: str, address: str | None) -> None:
        """Counts this attempt; raises TooManyAttempts (counting nothing more) while the
        address or the subject is at its limit."""
        if address:
            await self._per_address.hit(f"address:{address}")
        await self._per_subject.hit(f"{self._kind}:{email}")


class LoginThrottle(_PerSubjectAndAddress):
    """Password checks (login, and the password-confirmed account changes), counted before
    the password is checked."""

    def __init__(self, db: Database, *, max_per_account: int, max_per_address: int, window_seconds: int):
        super().__init__(db[COLLECTION], kind="account", max_per_subject=max_per_account,
                         max_per_address=max_per_address, window_seconds=window_seconds, message=LOCKED_OUT)

    async def unchecked(self, email: str, address: str | None) -> None:
        """The attempt was counted but its password never checked (the service was too
        busy): it is given back, so a retry after a 503 costs the user nothing."""
        await self._per_subject.refund(f"account:{email}")
        await self.address_given_back(address)

    async def succeeded(self, email: str, address: str | None = None) -> None:
        """The password was right: the account's count starts again, and the address
        (if given) gets this attempt back."""
        await self._per_subject.forgive(f"account:{email}")
        await self.address_given_back(address)

    async def address_attempt(self, address: str | None) -> None:
        """Counts an attempt against the client address alone (a sign-in with Google or
        Apple: no account is named until its ID token is verified); raises TooManyAttempts
        (counting nothing) while the address is at its limit."""
        if address:
            await self._per_address.hit(f"address:{address}")

    async def address_given_back(self, address: str | None) -> None:
        """Gives the address back one counted attempt (it succeeded, or was never checked)."""
        if address:
            await self._per_address.refund(f"address:{address}")


class SignupThrottle:
    """Sign-ups per client address, counted before the password is hashed: each costs a
    bcrypt hash, so one client must not be able to queue an unbounded number of them."""

    def __init__(self, db: Database, *, max_per_address: int, window_seconds: int):
        self._per_address = FixedWindowLimiter(
            db["signup_attempts"], limit=max_per_address, window_seconds=window_seconds,
            message="Too many sign-ups from this network. Please wait a while and try again.")

    async def ensure_indexes(self) -> None:
        await self._per_address.ensure_indexes()

    async def attempt(self, address: str | None) -> None:
        if address:
            await self._per_address.hit(f"address:{address}")


class PasswordResetThrottle(_PerSubjectAndAddress):
    """Reset requests per email (each may send a mail to it) and per client address.
    Unknown emails count like known ones, so the answers tell nothing about accounts."""

    def __init__(self, db: Database, *, max_per_email: int, max_per_address: int, window_seconds: int):
        super().__init__(db["password_reset_requests"], kind="email", max_per_subject=max_per_email,
                         max_per_address=max_per_address, window_seconds=window_seconds,
                         message="Too many password reset requests. Please wait a while and try again.")


class MailRequestThrottle(_PerSubjectAndAddress):
    """Mails asked for by a logged-in caller (another verification mail, a change of
    address) per account and per client address, and notices to an address someone tried
    to sign up with again, per address: none of them may become a way to flood a mailbox.
    Uses the password reset limits (``PASSWORD_RESET_MAX_PER_EMAIL`` and the rest)."""

    def __init__(self, db, *, max_per_subject: int, max_per_address: int, window_seconds: int):
        super().__init__(db["mail_requests"], kind="mail", max_per_subject=max_per_subject,
                         max_per_address=max_per_address, window_seconds=window_seconds,
                         message="Too many mails asked for. Please wait a while and try again.")
