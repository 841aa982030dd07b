"""Per-day rollups of plays and watching, kept as they arrive, so that the operators'
stats read days x videos small documents however many plays are stored.

Collections (services/README.md, "Analytics", says how and why):

- ``video_days``: one document per video and UTC day: ``plays``, ``viewers`` (distinct that
  day), ``watch_seconds`` and ``completions``;
- ``catalog_days``: one per UTC day: ``plays`` and ``viewers`` (distinct that day, whole catalog);
- ``day_viewers``: one per viewer, day and video (and one per viewer and day with the video
  ``*``): its unique ``_id`` decides whether a viewer is new that day. Only needed while that
  day's plays can still arrive, so a TTL index removes them after ``VIEWER_RECORD_SECONDS``.

Every play batch carries an id. Each counter document keeps the ids of the last
``APPLIED_KEEP`` batches added to it and is only added to by a batch not among them, so a
batch written twice (a retried flush, a resumed carry-over) counts once.

Watch time and completions from progress reports are summed in memory per video and day
(at most ``WATCHING_KEPT`` sums; past it a report's watching is dropped and counted) and
added by the plays flush as one batch with an id of its own, the same way: a batch whose
write failed is written again with the same id at the next flush, and counts once.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bson import ObjectId, tz_util
from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.clock import as_utc, utcnow

DAY_FORMAT = "%Y-%m-%d"
APPLIED_KEEP = 32  # a batch id is ~30 bytes: at most ~1 KB per document
VIEWER_RECORD_SECONDS = 3 * 86400
ALL_VIDEOS = "*"
DUPLICATE_KEY = 11000
# Viewer records written per bulk_write (the embedded store runs each on the loop).
WRITE_CHUNK = 200
# Viewer records remembered as written (about 150 bytes each).
KNOWN_VIEWERS = 100_000
# Sums of watching (one per video and day reported since the last flush) kept in memory.
WATCHING_KEPT = 10_000

log = logging.getLogger("app.rollups")


# Time zones whose local date is the UTC date (naive datetimes are read back as UTC).
_UTC_ZONES = (None, dt.UTC, tz_util.utc)


def day_of(moment: dt.datetime) -> str:
    """The UTC day of a moment, as stats name it: ``YYYY-MM-DD``."""
    return as_utc(moment).astimezone(dt.UTC).strftime(DAY_FORMAT)


def watched_seconds(previous: Mapping[str, Any] | None, position: float, duration: float,
                    now: dt.datetime) -> float:
    """The seconds one progress report adds: how far the position moved forward since the
    viewer's previous report of this video, no more than the wall time between the two
    reports (a seek forward is not watching) and no more than the video's length. The first
    report of a viewer and video sets the starting point and adds nothing; a move back (a
    rewind, a new viewing) adds nothing and becomes the new starting point."""
    if not previous or "position_seconds" not in previous or "updated_at" not in previous:
        return 0.0
    moved = position - float(previous["position_seconds"])
    elapsed = (as_utc(now) - as_utc(previous["updated_at"])).total_seconds()
    return max(0.0, min(moved, elapsed, duration))


class PlayRollups:
    def __init__(self, db: Any):
        self._video_days = db["video_days"]
        self._catalog_days = db["catalog_days"]
        self._viewers = db["day_viewers"]
        # Viewer record ids this process wrote or saw written (insertion-ordered, bounded).
        self._known: dict[str, None] = {}
        # Watching reported since the last flush: video-day id -> [video id, day, seconds, completions].
        self._watching: dict[str, list] = {}
        # A batch of watching taken from it whose write has not succeeded yet: (batch id, sums).
        self._watching_batch: tuple[str, dict[str, list]] | None = None
        #: Reports whose watching was dropped because the sums were full, since start.
        self.watching_dropped = 0

    async def ensure_indexes(self) -> None:
        # Stats read a range of days: of each video (days x videos documents) and of the catalog.
        await self._video_days.create_index([("day", ASCENDING)], name="day")
        await self._viewers.create_index("written_at", name="written_at_ttl", expireAfterSeconds=VIEWER_RECORD_SECONDS)
        # catalog_days: its _id is the day.

    # ----- writing ----------------------------------------------------------------------------

    async def add_plays(self, batch_id: str, plays: Iterable[Mapping[str, Any]]) -> None:
        """Adds one batch of plays (each with ``video_id``, ``user_id``, ``at``). Safe to
        call again with the same batch id and plays: nothing is counted twice."""
        per_video: collections.Counter[tuple[Any, str]] = collections.Counter()
        per_day: collections.Counter[str] = collections.Counter()
        viewers: dict[str, tuple[Any, str]] = {}
        days: dict[dt.date, str] = {}  # a batch's plays share a day or two: formatted once each
        for play in plays:
            at = play["at"]
            if at.tzinfo in _UTC_ZONES:  # its own date is the UTC day
                day = days.get(at.date()) or days.setdefault(at.date(), day_of(at))
            else:
                day = day_of(at)
            video = play["video_id"]
            per_video[video, day] += 1
            per_day[day] += 1
            viewers[_viewer_key(play["user_id"], day, str(video))] = (video, day)
            viewers[_viewer_key(play["user_id"], day, ALL_VIDEOS)] = (ALL_VIDEOS, day)
        if not viewers:
            return
        new_viewers = await self._new_viewers(batch_id, viewers)
        await asyncio.sleep(0)
        video_viewers: collections.Counter[tuple[Any, str]] = collections.Counter()
        day_viewers: collections.Counter[str] = collections.Counter()
        for video, day in new_viewers:
            if video == ALL_VIDEOS:
                day_viewers[day] += 1
            else:
                video_viewers[video, day] += 1
        await _add_once(self._video_days, batch_id, {
            _video_day_id(video, day): ({"video_id": video, "day": day},
                                        {"plays": count, "viewers": video_viewers[video, day]})
            for (video, day), count in per_video.items()})
        await asyncio.sleep(0)
        await _add_once(self._catalog_days, batch_id, {
            day: ({}, {"plays": count, "viewers": day_viewers[day]}) for day, count in per_day.items()})

    async def _new_viewers(self, batch_id: str, viewers: dict[str, tuple[Any, str]]) -> list[tuple[Any, str]]:
        """Records each (viewer, day, video) of the batch; answers those that this batch
        recorded first (now or in an earlier attempt of the same batch)."""
        now = utcnow()
        unknown = [key for key in viewers if key not in self._known]
        for start in range(0, len(unknown), WRITE_CHUNK):
            if start:
                await asyncio.sleep(0)  # the embedded store writes on the loop: let requests in
            chunk = unknown[start:start + WRITE_CHUNK]
            operations = [UpdateOne({"_id": key}, {"$setOnInsert": {"batch": batch_id, "written_at": now}},
                                    upsert=True) for key in chunk]
            try:
                await self._viewers.bulk_write(operations, ordered=False)
            except BulkWriteError as error:
                # Two processes recording the same viewer at once: the other one's record stands.
                if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                    raise
        # Every key of the batch, known ones too: one recorded by an earlier attempt of this
        # batch is new for it.
        ours = self._viewers.find({"_id": {"$in": list(viewers)}, "batch": batch_id}, {"_id": 1})
        new = [viewers[doc["_id"]] async for doc in ours]
        self._remember(unknown)
        return new

    def _remember(self, keys: list[str]) -> None:
        """Viewer records now known to exist, so that later batches do not write them again
        (most plays are by viewers already counted that day). Bounded: the oldest are forgotten."""
        known = self._known
        for key in keys:
            known[key] = None
        while len(known) > KNOWN_VIEWERS:
            del known[next(iter(known))]

    def add_watching(self, video_id: ObjectId, when: dt.datetime, seconds: float, completions: int) -> None:
        """Buffers what one progress report watched, summed per video and day, for the next
        ``flush_watching``: never waits and never raises. The sums name no viewer (as the
        rollups do not), so an account deleted meanwhile has nothing of its own in them."""
        if seconds <= 0 and completions <= 0:
            return
        day = day_of(when)
        key = _video_day_id(video_id, day)
        sums = self._watching.get(key)
        if sums is None:
            if len(self._watching) >= WATCHING_KEPT:
                self.watching_dropped += 1
                if self.watching_dropped == 1 or self.watching_dropped % 1000 == 0:
                    log.warning("watching buffer full; dropping watch time", extra={"dropped": self.watching_dropped})
                return
            sums = self._watching[key] = [video_id, day, 0.0, 0]
        sums[2] += seconds
        sums[3] += completions

    @property
    def watching_pending(self) -> int:
        """Video-day sums waiting to be written (the failed batch's included)."""
        return len(self._watching) + (len(self._watching_batch[1]) if self._watching_batch else 0)

    async def flush_watching(self) -> None:
        """Adds the buffered watching to ``video_days`` as one batch with an id of its own,
        ``WRITE_CHUNK`` documents to a write, yielding between. If a write fails (the error
        is raised), the batch is kept and written again, whole and with the same id, by the
        next call, before anything buffered since (then that): each document counts it once."""
        if self._watching_batch is not None:
            await self._write_watching(*self._watching_batch)
            self._watching_batch = None
        if self._watching:
            self._watching_batch = (f"watching-{ObjectId()}", self._watching)
            self._watching = {}
            await self._write_watching(*self._watching_batch)
            self._watching_batch = None

    async def _write_watching(self, batch_id: str, sums: dict[str, list]) -> None:
        keys = list(sums)
        for start in range(0, len(keys), WRITE_CHUNK):
            if start:
                await asyncio.sleep(0)  # the embedded store writes on the loop: let requests in
            await _add_once(self._video_days, batch_id, {
                key: ({"video_id": sums[key][0], "day": sums[key][1]},
                      {"watch_seconds": sums[key][2], "completions": sums[key][3]})
                for key in keys[start:start + WRITE_CHUNK]})

    # ----- reading ----------------------------------------------------------------------------

    async def video_days(self, since: str) -> list[dict]:
        """Every video's documents from the day ``since`` on, oldest first."""
        return await self._video_days.find({"day": {"$gte": since}}).sort("day", ASCENDING).to_list(length=None)

    async def catalog_days(self, since: str) -> list[dict]:
        return await self._catalog_days.find({"_id": {"$gte": since}}).sort("_id", ASCENDING).to_list(length=None)

    # ----- account deletion -----------------------------------------------------------------

    async def rename_viewer(self, user_id: str, pseudonym: str) -> None:
        """The user's viewer records (at most a few days' worth) move to the pseudonym that
        their plays get, so that a play still buffered is not counted as a new viewer."""
        mine = await self._viewers.find({"_id": {"$regex": "^" + re.escape(user_id + "|")}}).to_list(length=None)
        for record in mine:
            renamed = {**record, "_id": pseudonym + record["_id"][len(user_id):]}
            try:
                await self._viewers.insert_one(renamed)
            except DuplicateKeyError:
                pass
            await self._viewers.delete_one({"_id": record["_id"]})


def _viewer_key(user_id: str, day: str, video: str) -> str:
    # The viewer first: an account's records are one _id prefix (account deletion).
    return f"{user_id}|{day}|{video}"


def _video_day_id(video_id: Any, day: str) -> str:
    return f"{video_id}|{day}"


async def _add_once(collection: Any, batch_id: str, changes: dict[str, tuple[dict, dict]]) -> None:
    """``$inc`` each document by its amounts unless this batch was already added to it."""
    def operation(key: str, upsert: bool) -> UpdateOne:
        fixed, amounts = changes[key]
        update: dict = {"$inc": amounts, "$push": {"applied": {"$each": [batch_id], "$slice": -APPLIED_KEEP}}}
        if upsert and fixed:
            update["$setOnInsert"] = fixed
        return UpdateOne({"_id": key, "applied": {"$ne": batch_id}}, update, upsert=upsert)

    keys = list(changes)
    if not keys:
        return
    try:
        await collection.bulk_write([operation(key, True) for key in keys], ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        # A duplicate key: the document exists, and either this batch was already added
        # to it (the update below matches nothing) or another writer created it first.
        again = [operation(keys[e["index"]], False) for e in errors]
        await collection.bulk_write(again, ordered=False)
