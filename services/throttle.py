"""Throttles, each on the shared limiter (services/ratelimit.py: one atomic update a hit).

Login: at most so many attempts per account and per client address in a window (OWASP
ASVS V2.2.1: anti-automation against credential stuffing and brute force). Each attempt
is counted *before* its password is checked, so a burst of concurrent guesses cannot get
more checks than the limit. A successful login clears its account's count and gives its
address back the attempt, so only failures add up. Sign-ups per address, and password
reset requests per email and per address, are counted alike.
"""

from __future__ import annotations

from services.ratelimit import FixedWindowLimiter

LOCKED_OUT = "Too many failed login attempts. Please wait a few minutes and try again."
COLLECTION = "login_failures"


class LoginThrottle:
    def __init__(self, db, *, max_per_account: int, max_per_address: int, window_seconds: int):
        counters = db[COLLECTION]
        self._per_account = FixedWindowLimiter(counters, limit=max_per_account, window_seconds=window_seconds,
                                               message=LOCKED_OUT)
        self._per_address = FixedWindowLimiter(counters, limit=max_per_address, window_seconds=window_seconds,
                                               message=LOCKED_OUT)

    async def ensure_indexes(self) -> None:
        await self._per_account.ensure_indexes()

    async def attempt(self, email: str, address: str | None) -> None:
        """Counts this attempt before its password is checked; raises TooManyAttempts
        (counting nothing more) while the address or the account is locked out."""
        if address:
            await self._per_address.hit(f"address:{address}")
        await self._per_account.hit(f"account:{email}")

    async def unchecked(self, email: str, address: str | None) -> None:
        """The attempt was counted but its password never checked (the service was too
        busy): it is given back, so a retry after a 503 costs the user nothing."""
        await self._per_account.refund(f"account:{email}")
        if address:
            await self._per_address.refund(f"address:{address}")

    async def succeeded(self, email: str, address: str | None = None) -> None:
        """The password was right: the account's count starts again, and the address
        (if given) gets this attempt back."""
        await self._per_account.forgive(f"account:{email}")
        if address:
            await self._per_address.refund(f"address:{address}")


class SignupThrottle:
    """Sign-ups per client address, counted before the password is hashed: each costs a
    bcrypt hash, so one client must not be able to queue an unbounded number of them."""

    def __init__(self, db, *, max_per_address: int, window_seconds: int):
        self._per_address = FixedWindowLimiter(
            db["signup_attempts"], limit=max_per_address, window_seconds=window_seconds,
            message="Too many sign-ups from this network. Please wait a while and try again.")

    async def ensure_indexes(self) -> None:
        await self._per_address.ensure_indexes()

    async def attempt(self, address: str | None) -> None:
        if address:
            await self._per_address.hit(f"address:{address}")


class PasswordResetThrottle:
    """Reset requests per email (each may send a mail to it) and per client address.
    Unknown emails count like known ones, so the answers tell nothing about accounts."""

    def __init__(self, db, *, max_per_email: int, max_per_address: int, window_seconds: int):
        requests = db["password_reset_requests"]
        message = "Too many password reset requests. Please wait a while and try again."
        self._per_email = FixedWindowLimiter(requests, limit=max_per_email, window_seconds=window_seconds,
                                             message=message)
        self._per_address = FixedWindowLimiter(requests, limit=max_per_address, window_seconds=window_seconds,
                                               message=message)

    async def ensure_indexes(self) -> None:
        await self._per_email.ensure_indexes()

    async def attempt(self, email: str, address: str | None) -> None:
        await self._per_email.hit(f"email:{email}")
        if address:
            await self._per_address.hit(f"address:{address}")
