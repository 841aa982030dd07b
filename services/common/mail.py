"""Sending mail: through an SMTP server (aiosmtplib), or, in development, into the log.

``SMTP_URL`` is ``smtp://user:pass@host:port`` (STARTTLS whenever the server offers it)
or ``smtps://user:pass@host:port`` (TLS from the first byte). User and password are
optional; percent-encode any ``@ : /`` in them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

log = logging.getLogger("app.mail")

SCHEMES = {"smtp": (587, False), "smtps": (465, True)}  # default port, implicit TLS


@dataclasses.dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool

    def __repr__(self) -> str:  # never the password, in a log or a traceback
        return f"SmtpServer({self.hostname!r}, {self.port}, implicit_tls={self.implicit_tls})"


def parse_smtp_url(url: str) -> SmtpServer:
    """Raises ValueError with a message that never repeats the password."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    default_port, implicit_tls = SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("SMTP_URL has a port that is not a number") from None
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    return SmtpServer(
        hostname=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit_tls,
    )


class SmtpMailer:
    def __init__(self, server: SmtpServer, timeout_seconds: float, tls_context: ssl.SSLContext | None = None):
        """``tls_context`` None: the system's trusted CAs, certificates always verified."""
        self._server = server
        self._timeout = timeout_seconds
        self._tls_context = tls_context

    async def send(self, message: EmailMessage) -> None:
        server = self._server
        # aiosmtplib's timeout is per step; this one bounds the whole conversation.
        async with asyncio.timeout(self._timeout):
            await aiosmtplib.send(
                message,
                hostname=server.hostname,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.implicit_tls,
                # None: upgrade with STARTTLS when the server offers it.
                start_tls=False if server.implicit_tls else None,
                tls_context=self._tls_context,
                timeout=self._timeout,
            )


class LogMailer:
    """Development without SMTP_URL: the message goes to the log, links and tokens
    included, so that a developer can follow them. Never used in production (the
    password reset answers 503 there instead)."""

    async def send(self, message: EmailMessage) -> None:
        log.warning("development: mail written to the log instead of sent (SMTP_URL is not set)",
                    extra={"to": message["To"], "subject": message["Subject"], "body": message.get_content()})
