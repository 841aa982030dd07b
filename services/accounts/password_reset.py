"""Password reset by mail.

The request answers the same, in the same time, whether or not the email has an
account: on the request path there are only the throttles (the same for every email)
and a put on a bounded queue. Looking the account up, making the token and sending the
mail happen afterwards, in a background task.

The token is 256 random bits, stored only as its SHA-256 hash, valid
``PASSWORD_RESET_TTL_SECONDS``, and spent by the one atomic ``find_one_and_delete`` that
also checks it, so it works once however many confirmations race.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from email.message import EmailMessage

from services.accounts.throttle import PasswordResetThrottle
from services.accounts.users import UserStore
from services.common import validation
from services.common.clock import as_utc, utcnow
from services.common.datastore import Database
from services.common.errors import FeatureUnavailable, NotAuthenticated

log = logging.getLogger("app.accounts")

TOKEN_BYTES = 32
# Requests waiting for their mail. Past this (a flood), further ones are dropped, logged,
# and still answered 202: the answer must not tell anything, and memory stays bounded.
MAIL_QUEUE_SIZE = 200
INVALID_TOKEN = "This password reset link is invalid, has expired or was already used. " \
    "Please ask for a new one."  # noqa: S105 - a message
UNAVAILABLE = "Password reset is not available."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ResetTokenStore:
    """Outstanding reset tokens; one of the account's user data owners."""

    def __init__(self, db: Database, ttl_seconds: int):
        self._tokens = db["password_reset_tokens"]
        self._ttl = dt.timedelta(seconds=ttl_seconds)

    async def ensure_indexes(self) -> None:
        await self._tokens.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        await self._tokens.create_index("user_id", name="user_id")

    async def create(self, user_id: str) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        await self._tokens.insert_one({"_id": _hash(token), "user_id": user_id, "created_at": now,
                                       "expires_at": now + self._ttl})
        return token

    async def spend(self, token: str) -> str | None:
        """The user id the token was made for, if it is valid; it is valid no more."""
        found = await self._tokens.find_one_and_delete({"_id": _hash(token)})
        if found is None or as_utc(found["expires_at"]) <= utcnow():
            return None
        return found["user_id"]

    async def revoke(self, user_id: str) -> None:
        """Every outstanding reset link of the account stops working (a password change, a
        reset, a change of address)."""
        await self._tokens.delete_many({"user_id": user_id})

    async def delete_user_data(self, user_id: str) -> None:
        await self.revoke(user_id)


class PasswordResets:
    def __init__(self, users: UserStore, tokens: ResetTokenStore, end_sessions, mailer, *,
                 throttle: PasswordResetThrottle,
                 mail_from: str, reset_url: str, ttl_seconds: int):
        """``mailer`` None: reset is not available (production without SMTP_URL).
        ``end_sessions(user_id)`` ends every session of the account."""
        self._users = users
        self._tokens = tokens
        self._end_sessions = end_sessions
        self._mailer = mailer
        self._throttle = throttle
        self._mail_from = mail_from
        self._reset_url = reset_url
        self._ttl_minutes = max(1, ttl_seconds // 60)
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=MAIL_QUEUE_SIZE)
        self._worker: asyncio.Task | None = None

    async def request(self, body, client_address: str | None) -> None:
        """Accepted whether or not the email has an account: the work is queued."""
        if self._mailer is None:
            raise FeatureUnavailable(UNAVAILABLE)
        email = validation.validated(validation.RESET_REQUEST, body)["email"]
        await self._throttle.attempt(email, client_address)
        try:
            self._queue.put_nowait(email)
        except asyncio.QueueFull:
            log.warning("password reset queue full: a request was dropped")
        else:
            self._start_worker()

    async def confirm(self, body) -> None:
        fields = validation.validated(validation.RESET_CONFIRM, body)
        user_id = await self._tokens.spend(fields["token"])
        if user_id is None or not await self._users.set_password(user_id, fields["new_password"]):
            raise NotAuthenticated(INVALID_TOKEN)
        await self._tokens.revoke(user_id)  # any other link sent earlier dies too
        await self._end_sessions(user_id)

    async def idle(self) -> None:
        """Waits until every queued mail has been handled (tests, shutdown)."""
        if self._worker is not None:
            await asyncio.shield(self._worker)

    def _start_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        # Runs while there is something queued, then ends: no task outlives its work.
        while not self._queue.empty():
            email = self._queue.get_nowait()
            try:
                await self._send_reset(email)
            except Exception as error:
                # Never the token (it is only in the message), nor the address.
                log.warning("password reset mail not sent", extra={"error": type(error).__name__})

    async def _send_reset(self, email: str) -> None:
        user = await self._users.find_by_email(email)
        if user is None:
            return  # no such account: nothing is sent, and the requester cannot tell
        token = await self._tokens.create(str(user["_id"]))
        message = EmailMessage()
        message["From"] = self._mail_from
        message["To"] = user["email"]
        message["Subject"] = "Reset your password"
        link = self._reset_url.replace("{token}", token)
        message.set_content(
            f"Hello {user['name']},\n\n"
            f"Someone, hopefully you, asked to reset the password of your account.\n"
            f"To choose a new one, open this link within {self._ttl_minutes} minutes:\n\n"
            f"{link}\n\n"
            f"If it was not you, ignore this message: your password stays as it is.\n"
        )
        await self._mailer.send(message)
