"""The development mail a server writes to MAIL_DIR when SMTP_URL is not set."""

from __future__ import annotations

import email
import re
import time
from pathlib import Path


def mailed_verification_token(mail_dir: Path, to: str, timeout: float = 10) -> str:
    """The token of the verification link mailed to ``to`` in development (no SMTP_URL:
    the server writes each mail to MAIL_DIR), waiting for the file up to ``timeout`` s.
    A blocking call: for a server in another thread or process (the fuzzer, the bench)."""
    deadline = time.monotonic() + timeout
    while True:
        for path in sorted(mail_dir.glob("*.eml")) if mail_dir.is_dir() else ():
            message = email.message_from_bytes(path.read_bytes())
            if message["To"] == to and message["Subject"] == "Verify your email address":
                body = message.get_payload(decode=True).decode()
                return re.search(r"token=([A-Za-z0-9_-]+)", body).group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no verification mail for {to} in {mail_dir}")
        time.sleep(0.05)
