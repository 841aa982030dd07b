"""A fixed-window counter per key, in MongoDB so that every process shares it.

Used for limits on requests that are not password checks (password-reset requests per
email and per address). Each ``hit`` counts the request and says whether it is within the
limit, in one atomic upsert, so dozens of concurrent requests cannot all slip under it.
"""

from __future__ import annotations

import datetime as dt
import math

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.clock import as_utc, utcnow


class RequestCounter:
    def __init__(self, db, collection: str, *, limit: int, window_seconds: int):
        self._counters = db[collection]
        self._limit = limit
        self._window = dt.timedelta(seconds=window_seconds)

    async def ensure_indexes(self) -> None:
        await self._counters.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")

    async def hit(self, key: str) -> int | None:
        """Counts one request for ``key``. None while within the limit; otherwise the
        seconds until the window ends."""
        now = utcnow()
        # A window that has ended may linger until the TTL monitor's next pass.
        await self._counters.delete_one({"_id": key, "expires_at": {"$lte": now}})
        update = {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": now + self._window}}
        try:
            counter = await self._counters.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # two upserts raced to create it: the loser increments
            counter = await self._counters.find_one_and_update(
                {"_id": key}, update, return_document=ReturnDocument.AFTER)
        if counter["count"] <= self._limit:
            return None
        return max(1, math.ceil((as_utc(counter["expires_at"]) - now).total_seconds()))
