"""Sending mail: through an SMTP server (aiosmtplib), or, in development, into files.

``SMTP_URL`` is ``smtp://user:pass@host:port`` (STARTTLS whenever the server offers it)
or ``smtps://user:pass@host:port`` (TLS from the first byte). User and password are
optional; percent-encode any ``@ : /`` in them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
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


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


# Development mail files kept in MAIL_DIR: past this, the oldest are removed.
MAIL_DIR_MAX_FILES = 500


class FileMailer:
    """Development without SMTP_URL: each message is written whole, as an ``.eml`` file
    (RFC 5322, opens in any mail client) in ``directory``, created on demand, readable by
    its owner only (the links hold live tokens). The log line names the file, never the
    body. Never used in production (the password reset answers 503 there instead).

    The write (a few KB) and the trimming of the directory to its newest
    ``MAIL_DIR_MAX_FILES`` files run in a thread (``asyncio.to_thread``), off the event loop."""

    def __init__(self, directory: str | Path, max_files: int = MAIL_DIR_MAX_FILES):
        self._directory = Path(directory)
        self._max_files = max_files

    async def send(self, message: EmailMessage) -> None:
        path = await asyncio.to_thread(self._write, message.as_bytes())
        log.warning("development: mail written to a file instead of sent (SMTP_URL is not set)",
                    extra={"file": str(path), "to": message["To"], "subject": message["Subject"]})

    def _write(self, content: bytes) -> Path:
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Sortable by time, unique even within one microsecond.
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self._directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        self._trim()
        return path

    def _trim(self) -> None:
        files = sorted(self._directory.glob("*.eml"))
        for old in files[:max(0, len(files) - self._max_files)]:
            old.unlink(missing_ok=True)


# Mails waiting to be sent. Past this (a flood), further ones are dropped and logged: the
# requests that asked for them have their answers already, and memory stays bounded.
OUTBOX_SIZE = 200


class Outbox:
    """Mails sent after the answer, in one background task, at most ``size`` waiting.
    A job is a function returning the coroutine that makes and sends one mail; a failure
    is logged by the job's name (never an address or a token)."""

    def __init__(self, size: int = OUTBOX_SIZE):
        self._queue: asyncio.Queue[tuple[str, Callable[[], Awaitable[None]]]] = asyncio.Queue(maxsize=size)
        self._worker: asyncio.Task | None = None

    def submit(self, name: str, job: Callable[[], Awaitable[None]]) -> bool:
        """Queues ``job``; False (logged) when the outbox is full."""
        try:
            self._queue.put_nowait((name, job))
        except asyncio.QueueFull:
            log.warning("outbox full: a mail was dropped", extra={"mail": name})
            return False
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())
        return True

    async def idle(self) -> None:
        """Waits until every queued mail has been handled (tests, shutdown)."""
        if self._worker is not None:
            await asyncio.shield(self._worker)

    async def _work(self) -> None:
        # Runs while there is something queued, then ends: no task outlives its work.
        while not self._queue.empty():
            name, job = self._queue.get_nowait()
            try:
                await job()
            except Exception as error:
                log.warning("mail not sent", extra={"mail": name, "error": type(error).__name__})
