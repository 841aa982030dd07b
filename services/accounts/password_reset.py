"""Password reset by mail.

The request answers the same, in the same time, whether or not the email has an
account: on the request path there are only the throttles (the same for every email)
and a put on a bounded queue. Looking the account up, making the token and sending the
mail happen afterwards, in a background task.

The token is one of the mailed tokens (mail_tokens.py: 256 random bits, stored only as its
SHA-256 hash, spent by the one atomic ``find_one_and_delete`` that also checks it, so it
works once however many confirmations race), valid ``PASSWORD_RESET_TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage

from services.accounts.mail_tokens import MailTokenStore
from services.accounts.throttle import PasswordResetThrottle
from services.accounts.users import UserStore
from services.common import validation
from services.common.datastore import Database
from services.common.errors import FeatureUnavailable, NotAuthenticated

log = logging.getLogger("app.accounts")

# Requests waiting for their mail. Past this (a flood), further ones are dropped, logged,
# and still answered 202: the answer must not tell anything, and memory stays bounded.
MAIL_QUEUE_SIZE = 200
INVALID_TOKEN = "This password reset link is invalid, has expired or was already used. " \
    "Please ask for a new one."  # noqa: S105 - a message
UNAVAILABLE = "Password reset is not available."


class ResetTokenStore(MailTokenStore):
    """Outstanding reset tokens, bound to an account only; one of the account's user data
    owners. ``revoke`` (a password change, a reset, a change of address) ends every reset
    link of the account."""

    def __init__(self, db: Database, ttl_seconds: int):
        super().__init__(db, "password_reset_tokens", ttl_seconds)


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
        found = await self._tokens.spend(fields["token"])
        user_id = None if found is None else found["user_id"]
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
