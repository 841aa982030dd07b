"""Failed-login counters, kept in MongoDB so that every process shares them.

Each counter is one document per key ("account:<email>" or "address:<ip>") holding a
count for a fixed window; a TTL index removes it when the window ends.
"""

from __future__ import annotations

import datetime as dt
import math

from pymongo.errors import DuplicateKeyError

from services.clock import as_utc, utcnow
from services.errors import TooManyAttempts


class LoginThrottle:
    def __init__(self, db, *, max_per_account: int, max_per_address: int, window_seconds: int):
        self._counters = db["login_failures"]
        self._limits = {"account": max_per_account, "address": max_per_address}
        self._window = dt.timedelta(seconds=window_seconds)

    async def ensure_indexes(self) -> None:
        await self._counters.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")

    @staticmethod
    def _keys(email: str, address: str | None) -> dict[str, str]:
        keys = {"account": f"account:{email}"}
        if address:
            keys["address"] = f"address:{address}"
        return keys

    async def check(self, email: str, address: str | None) -> None:
        """Raises TooManyAttempts while the account or the address is locked out."""
        now = utcnow()
        keys = self._keys(email, address)
        async for counter in self._counters.find(
            {"_id": {"$in": list(keys.values())}, "expires_at": {"$gt": now}}
        ):
            kind = counter["_id"].split(":", 1)[0]
            if counter["count"] >= self._limits[kind]:
                wait = math.ceil((as_utc(counter["expires_at"]) - now).total_seconds())
                raise TooManyAttempts(
                    "Too many failed login attempts. Please wait a few minutes and try again.",
                    retry_after=max(wait, 1),
                )

    async def record_failure(self, email: str, address: str | None) -> None:
        now = utcnow()
        for key in self._keys(email, address).values():
            await self._increment(key, now)

    async def reset(self, email: str) -> None:
        await self._counters.delete_one({"_id": self._keys(email, None)["account"]})

    async def _increment(self, key: str, now: dt.datetime) -> None:
        # A window that has ended may linger until the TTL monitor's next pass:
        # clear it so the upsert below starts a fresh one.
        await self._counters.delete_one({"_id": key, "expires_at": {"$lte": now}})
        update = {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": now + self._window}}
        try:
            await self._counters.update_one({"_id": key}, update, upsert=True)
        except DuplicateKeyError:
            # Two upserts raced to create the counter; the loser's increment is retried.
            await self._counters.update_one({"_id": key}, update)
