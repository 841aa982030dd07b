"""Counting plays without slowing or failing the answer to the viewer.

``record()`` only appends to a bounded in-memory buffer; a background task writes the
buffer to the ``plays`` collection (one ``insert_many``) and adds to each video's
``plays`` counter, every ``flush_seconds`` or as soon as a batch is full. When the
buffer is full (the database has been away a while), new plays are dropped and
counted; when a write fails, that one batch is lost and logged. Stopping flushes what
is left.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import secrets

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from services.catalog.cursors import parse_whole_number
from services.catalog.videos import VideoCatalog
from services.common.clock import utcnow
from services.common.datastore import Database
from services.common.errors import DatabaseUnavailable

log = logging.getLogger("app.plays")
BATCH_SIZE = 500
MAX_STATS_DAYS = 365
DEFAULT_STATS_DAYS = 30


def parse_days(text: str | None) -> int:
    return parse_whole_number(text, "days", low=1, high=MAX_STATS_DAYS, default=DEFAULT_STATS_DAYS)


class PlayStore:
    def __init__(self, db: Database, catalog: VideoCatalog, *, buffer_size: int, flush_seconds: float):
        self._plays = db["plays"]
        self._catalog = catalog
        self._buffer: collections.deque[dict] = collections.deque()
        self._buffer_size = buffer_size
        self._flush_seconds = flush_seconds
        self._batch_ready = asyncio.Event()
        self._flusher: asyncio.Task | None = None
        self._flushing = asyncio.Lock()
        #: Plays dropped because the buffer was full, and lost with a failed write, since start.
        self.dropped = 0
        self.lost = 0

    async def ensure_indexes(self) -> None:
        await self._plays.create_index("at", name="at")
        await self._plays.create_index("user_id", name="user_id")  # account deletion

    # ----- counting ---------------------------------------------------------------------

    def record(self, video_id: ObjectId, user_id: str) -> None:
        """Never waits and never raises: a play that does not fit is dropped and counted."""
        if len(self._buffer) >= self._buffer_size:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("play buffer full; dropping plays", extra={"dropped": self.dropped})
            return
        self._buffer.append({"video_id": video_id, "user_id": user_id, "at": utcnow()})
        if len(self._buffer) >= BATCH_SIZE:
            self._batch_ready.set()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._run())

    async def stop(self, timeout_seconds: float = 10) -> None:
        """Stops the background task, then writes what is still buffered, giving up
        after ``timeout_seconds`` (shutdown must not wait on a database that is away)."""
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
            self._flusher = None
        try:
            async with asyncio.timeout(timeout_seconds):
                await self.flush()
        except TimeoutError:
            log.warning("stopped before every play was written", extra={"plays": len(self._buffer)})

    async def flush(self) -> None:
        """Writes the buffered plays, a batch at a time. A batch the database refuses is
        lost (and logged) and ends this round: during an outage each round costs one
        attempt, and the rest waits in the buffer for the next round."""
        async with self._flushing:
            while self._buffer:
                batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
                if not await self._write(batch):
                    return

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._flush_seconds):
                    await self._batch_ready.wait()
            except TimeoutError:
                pass
            self._batch_ready.clear()
            try:
                await self.flush()
            except Exception:  # never let one bad flush end the counting
                log.exception("flushing plays failed")

    async def _write(self, batch: list[dict]) -> bool:
        # The store's database is guarded (services/common/datastore.py): an outage arrives as
        # DatabaseUnavailable, a refused write as a PyMongoError. Either way the answers
        # were already sent; the batch is lost, counted and logged, and counting goes on.
        try:
            await self._plays.insert_many(batch, ordered=False)
        except (DatabaseUnavailable, PyMongoError) as error:
            self.lost += len(batch)
            log.warning("could not write plays; this batch is lost",
                        extra={"plays": len(batch), "error": type(error).__name__})
            return False
        try:
            await self._catalog.add_plays(collections.Counter(play["video_id"] for play in batch))
        except (DatabaseUnavailable, PyMongoError) as error:
            # The plays are stored (stats see them); only the catalog's running counters
            # are behind by this batch.
            log.warning("could not add a batch of plays to the videos' counters",
                        extra={"plays": len(batch), "error": type(error).__name__})
        return True

    # ----- reading ----------------------------------------------------------------------

    async def stats(self, days: int) -> list[dict]:
        """Plays, distinct viewers and plays per UTC day of each video over the last
        ``days`` UTC days, today included, computed by the database; most played first.

        Whole days, not ``days * 24`` hours back from now: the answer is grouped by
        date, and a rolling window would report a partial extra day at the start and
        change with the hour it is asked at."""
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - dt.timedelta(days=days - 1)
        recent = {"$match": {"at": {"$gte": since}}}
        per_day = self._plays.aggregate([
            recent,
            {"$group": {
                "_id": {"video": "$video_id", "date": {"$dateToString": {"format": "%Y-%m-%d", "date": "$at"}}},
                "plays": {"$sum": 1},
            }},
            {"$sort": {"_id.date": ASCENDING}},
        ])
        # Distinct viewers in two groups (per video and viewer, then per video), so no
        # document ever holds a video's whole list of viewers.
        viewers = self._plays.aggregate([
            recent,
            {"$group": {"_id": {"video": "$video_id", "user": "$user_id"}}},
            {"$group": {"_id": "$_id.video", "viewers": {"$sum": 1}}},
        ])
        by_video: dict = {}
        async for row in per_day:
            entry = by_video.setdefault(row["_id"]["video"], {"plays": 0, "viewers": 0, "per_day": []})
            entry["plays"] += row["plays"]
            entry["per_day"].append({"date": row["_id"]["date"], "plays": row["plays"]})
        async for row in viewers:
            if row["_id"] in by_video:
                by_video[row["_id"]]["viewers"] = row["viewers"]
        videos = await self._catalog.get_many(list(by_video))
        result = [
            {"id": str(oid), "title": videos[oid]["title"], **entry}
            for oid, entry in by_video.items() if oid in videos  # a deleted video is no longer reported
        ]
        result.sort(key=lambda entry: (-entry["plays"], entry["id"]))
        return result

    # ----- account deletion ---------------------------------------------------------------

    async def delete_user_data(self, user_id: str) -> None:
        """Anonymises the user's plays rather than deleting them: the plays happened, and
        the catalog's counters and past stats should not change because an account went.
        Each deleted account gets a random pseudonym of its own, so distinct-viewer counts
        stay right while nothing links the plays to the person (buffered plays too)."""
        pseudonym = f"deleted-{secrets.token_hex(12)}"
        for play in self._buffer:
            if play["user_id"] == user_id:
                play["user_id"] = pseudonym
        await self._plays.update_many({"user_id": user_id}, {"$set": {"user_id": pseudonym}})

