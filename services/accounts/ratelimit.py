"""A fixed-window rate limiter kept in MongoDB, so every process shares its counts.

One document per key holds the count of the current window and when the window ends;
a TTL index removes it afterwards. ``hit()`` reserves one attempt with a single
conditional update whose result says whether the attempt may go ahead: however many
callers race, no more than ``limit`` of them get through in a window (a read of the
count followed by a later write would let every racer through).
"""

from __future__ import annotations

import datetime as dt
import math

from pymongo.errors import DuplicateKeyError

from services.common.clock import as_utc, utcnow
from services.common.errors import TooManyAttempts


class FixedWindowLimiter:
    """At most ``limit`` hits per key in each window of ``window_seconds``.

    ``collection`` may be shared by several limiters as long as their keys differ
    (prefix them: "account:<email>", "address:<ip>").
    """

    def __init__(self, collection, *, limit: int, window_seconds: int, message: str):
        self._counters = collection
        self._limit = limit
        self._window = dt.timedelta(seconds=window_seconds)
        self._message = message

    async def ensure_indexes(self) -> None:
        await self._counters.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")

    async def hit(self, key: str) -> None:
        """Counts one attempt for ``key``, or raises TooManyAttempts (nothing counted)
        when its window is full."""
        now = utcnow()
        room = {"_id": key, "count": {"$lt": self._limit}, "expires_at": {"$gt": now}}
        try:
            # A live window with room: count this attempt. No window yet: the upsert starts
            # one (count 1). A full or ended window exists: the upsert's insert collides.
            await self._counters.update_one(
                room, {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": now + self._window}}, upsert=True)
            return
        except DuplicateKeyError:
            pass
        # A window that has ended may linger until the TTL monitor's next pass: this attempt
        # starts the next one. Conditional, so of several racers only one resets it.
        restarted = await self._counters.update_one(
            {"_id": key, "expires_at": {"$lte": now}}, {"$set": {"count": 1, "expires_at": now + self._window}})
        if restarted.modified_count:
            return
        # Full, unless another racer just started a fresh window: one more try without upsert.
        counted = await self._counters.update_one(room, {"$inc": {"count": 1}})
        if counted.modified_count:
            return
        raise TooManyAttempts(self._message, retry_after=await self._seconds_left(key, now))

    async def forgive(self, key: str) -> None:
        """Forgets the key's window (a successful login clears its account's failures)."""
        await self._counters.delete_one({"_id": key})

    async def refund(self, key: str) -> None:
        """Gives back one counted attempt (one that turned out to be legitimate)."""
        await self._counters.update_one({"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})

    async def _seconds_left(self, key: str, now: dt.datetime) -> int:
        counter = await self._counters.find_one({"_id": key})
        if counter is None or not isinstance(counter.get("expires_at"), dt.datetime):
            return 1
        return max(math.ceil((as_utc(counter["expires_at"]) - now).total_seconds()), 1)
