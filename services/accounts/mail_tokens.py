"""Single-use tokens sent by mail, bound to an account (and to addresses): the password
reset link (password_reset.py), the address verification link and the change-of-address
confirmation, each kind in its own collection.

256 random bits, stored only as their SHA-256 hash, removed by a TTL index once expired
(and refused before that, since the TTL monitor runs only once a minute), and spent by the
one atomic ``find_one_and_delete`` that also checks them, so each works once however many
confirmations race.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from services.common.clock import as_utc, utcnow
from services.common.datastore import Database

TOKEN_BYTES = 32


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class MailTokenStore:
    """One collection of outstanding tokens; one of the account's user data owners."""

    def __init__(self, db: Database, collection: str, ttl_seconds: int):
        self._tokens = db[collection]
        self._ttl = dt.timedelta(seconds=ttl_seconds)

    async def ensure_indexes(self) -> None:
        await self._tokens.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        await self._tokens.create_index("user_id", name="user_id")

    async def create(self, user_id: str, **bound: str) -> str:
        """A new token for the account; ``bound`` (the addresses it is for) comes back
        when it is spent."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        await self._tokens.insert_one({**bound, "_id": _hash(token), "user_id": user_id, "created_at": now,
                                       "expires_at": now + self._ttl})
        return token

    async def spend(self, token: str) -> dict | None:
        """What the token was made for (``user_id`` and the bound fields) if it is valid;
        it is valid no more."""
        found = await self._tokens.find_one_and_delete({"_id": _hash(token)})
        if found is None or as_utc(found["expires_at"]) <= utcnow():
            return None
        return found

    async def revoke(self, user_id: str) -> None:
        """Every outstanding token of the account stops working."""
        await self._tokens.delete_many({"user_id": user_id})

    async def delete_user_data(self, user_id: str) -> None:
        await self.revoke(user_id)
