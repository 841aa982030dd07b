"""Operators' commands, run as ``python -m server <command>`` (argparse in __main__.py) on a
shell of the deployment (``heroku run``, ``docker compose exec``), with its environment.

``verify-email <address>``: marks the account's address verified without a mail, for a
production without ``SMTP_URL`` (which sends none), or an operator listed in
``ADMIN_EMAILS`` who has to get in before mail works.
"""

from __future__ import annotations

import sys
from typing import TextIO

from server.config import Config
from server.database import close, connect
from services.accounts.users import UserStore
from services.common.datastore import guarded
from services.common.durability import DurableDatabase
from services.common.validation import normalize_email


async def verify_email(db, address: str, out: TextIO = sys.stdout) -> int:
    """Exit status: 0 verified (or already), 1 no such account, 2 not an address."""
    email = normalize_email(address)
    if email is None:
        print(f"verify-email: {address!r} is not an email address", file=out)
        return 2
    if not await UserStore(db, None).verify_address(email):  # type: ignore[arg-type]  # no password work
        print(f"verify-email: no account has the address {email}", file=out)
        return 1
    print(f"verify-email: {email} is verified", file=out)
    return 0


async def run_verify_email(config: Config, address: str, out: TextIO = sys.stdout) -> int:
    if config.uses_embedded_store:
        print("verify-email: MONGODB_URI is not set; the embedded store lives inside the running "
              "server, so a command cannot reach it (in development, open the .eml file in MAIL_DIR)",
              file=out)
        return 2
    client, db = connect(config)
    try:
        return await verify_email(guarded(DurableDatabase(db, config)), address, out)
    finally:
        await close(client)
