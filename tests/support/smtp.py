"""A real SMTP server for tests (aiosmtpd, in its own thread) that keeps what it is given."""

from __future__ import annotations

import email
import email.message

from aiosmtpd.smtp import AuthResult

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret/pass"


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self):
        self.messages: list[email.message.Message] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def with_subject(self, subject: str) -> list[email.message.Message]:
        return [m for m in self.messages if m["Subject"] == subject]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


def smtp_url(port: int) -> str:
    return f"smtp://{SMTP_USER}:s3cret%2Fpass@127.0.0.1:{port}"

