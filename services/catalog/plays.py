"""Counting plays without slowing or failing the answer to the viewer.

``record()`` only appends to a bounded in-memory buffer; a background task writes the
buffer to the ``plays`` collection (one ``insert_many``), adds it to the per-day rollups
(services/catalog/rollups.py) and to each video's ``plays`` counter, every
``flush_seconds`` or as soon as a batch is full. When the buffer is full (the database
has been away a while), new plays are dropped and counted; when the insert fails, that
one batch is lost and logged; when the rollups fail after the insert, the batch is kept
(at most ``MAX_UNROLLED_BATCHES``) and added again with the same id at the next flush,
which counts nothing twice. Each flush first writes the watch time that progress reports
buffered (rollups.py ``flush_watching``: a batch of its own, kept and retried the same way).
Stopping flushes what is left.

Raw plays are kept ``retention_days`` (a TTL index); the rollups stay. ``carry_over()``
builds the rollups of plays stored before they existed (those without a ``batch``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import secrets

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.catalog.cursors import parse_whole_number
from services.catalog.rollups import PlayRollups, day_of
from services.catalog.videos import VideoCatalog
from services.common.clock import utcnow
from services.common.datastore import Database
from services.common.errors import DatabaseUnavailable

log = logging.getLogger("app.plays")
BATCH_SIZE = 500
MAX_STATS_DAYS = 365
DEFAULT_STATS_DAYS = 30
MAX_UNROLLED_BATCHES = 20
CARRY_OVER_BATCH = 500
CARRY_OVER_STATE = "plays_carry_over"
CARRY_OVER_LEASE_SECONDS = 60


def parse_days(text: str | None) -> int:
    return parse_whole_number(text, "days", low=1, high=MAX_STATS_DAYS, default=DEFAULT_STATS_DAYS)


class PlayStore:
    def __init__(self, db: Database, catalog: VideoCatalog, rollups: PlayRollups, *, buffer_size: int,
                 flush_seconds: float, retention_days: int):
        self._plays = db["plays"]
        self._migrations = db["migrations"]
        self._catalog = catalog
        self._rollups = rollups
        self._retention_seconds = retention_days * 86400
        # Batches stored but not yet added to the rollups: (batch id, plays).
        self._unrolled: collections.deque[tuple[str, list[dict]]] = collections.deque()
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
        # Retention: raw plays expire; the "at" index of older versions had no expiry, and
        # an index cannot change its options in place (collMod is not in the embedded
        # store), so one with other options is replaced.
        existing = (await self._plays.index_information()).get("at")
        if existing is not None and existing.get("expireAfterSeconds") != self._retention_seconds:
            await self._plays.drop_index("at")
        await self._plays.create_index("at", name="at", expireAfterSeconds=self._retention_seconds)
        await self._plays.create_index("user_id", name="user_id")  # account deletion

    # ----- counting ---------------------------------------------------------------------

    def record(self, video_id: ObjectId, user_id: str) -> None:
        """Never waits and never raises: a play that does not fit is dropped and counted."""
        if len(self._buffer) >= self._buffer_size:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("play buffer full; dropping plays", extra={"dropped": self.dropped})
            return
        self._buffer.append({"_id": ObjectId(), "video_id": video_id, "user_id": user_id, "at": utcnow()})
        if len(self._buffer) >= BATCH_SIZE:
            self._batch_ready.set()

    @property
    def watch_reports_dropped(self) -> int:
        """Progress reports whose watch time was dropped because the sums in memory were full."""
        return self._rollups.watching_dropped

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
                await self.flush()  # every play buffered by now: no request is served any more
        except TimeoutError:
            log.warning("stopped before every play was written",
                        extra={"plays": len(self._buffer), "watching": self._rollups.watching_pending})

    async def flush(self) -> None:
        """Writes the buffered plays, a batch at a time. A batch the database refuses is
        lost (and logged) and ends this round: during an outage each round costs one
        attempt, and the rest waits in the buffer for the next round."""
        async with self._flushing:
            await self._flush_watching()
            while self._unrolled:
                batch_id, batch = self._unrolled[0]
                if not await self._roll_up(batch_id, batch):
                    return
                self._unrolled.popleft()
            # Only what is buffered now: plays that arrive while this round writes (each step
            # yields to the loop) wait for the next round, so that batches stay full and the
            # per-batch work (the rollups' upserts) is not paid again for a handful of plays.
            remaining = len(self._buffer)
            while remaining > 0 and self._buffer:
                batch_id = str(ObjectId())
                size = min(BATCH_SIZE, remaining, len(self._buffer))
                remaining -= size
                batch = [{**self._buffer.popleft(), "batch": batch_id} for _ in range(size)]
                if not await self._write(batch_id, batch):
                    return

    async def _flush_watching(self) -> None:
        """The watching that progress reports buffered (rollups.py), as a batch of its own;
        if the database refuses, it is kept and written again at the next flush."""
        try:
            await self._rollups.flush_watching()
        except (DatabaseUnavailable, PyMongoError) as error:
            log.warning("could not add watch time to the rollups; retrying at the next flush",
                        extra={"error": type(error).__name__})

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

    async def _write(self, batch_id: str, batch: list[dict]) -> bool:
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
        await asyncio.sleep(0)  # the embedded store writes on the loop: requests go between the steps
        try:
            await self._catalog.add_plays(collections.Counter(play["video_id"] for play in batch))
        except (DatabaseUnavailable, PyMongoError) as error:
            # The plays are stored (stats see them); only the catalog's running counters
            # are behind by this batch.
            log.warning("could not add a batch of plays to the videos' counters",
                        extra={"plays": len(batch), "error": type(error).__name__})
        await asyncio.sleep(0)
        if not await self._roll_up(batch_id, batch):
            if len(self._unrolled) >= MAX_UNROLLED_BATCHES:
                _, given_up = self._unrolled.popleft()
                log.warning("too many batches waiting for the rollups; the oldest is left out of them",
                            extra={"plays": len(given_up)})
            self._unrolled.append((batch_id, batch))
            return False
        return True

    async def _roll_up(self, batch_id: str, batch: list[dict]) -> bool:
        """Adds a stored batch to the rollups; False (logged) if the database refused,
        for the next flush to add it again with the same id."""
        try:
            await self._rollups.add_plays(batch_id, batch)
        except (DatabaseUnavailable, PyMongoError) as error:
            log.warning("could not add a batch of plays to the rollups; retrying at the next flush",
                        extra={"plays": len(batch), "error": type(error).__name__})
            return False
        return True

    # ----- carrying over plays stored before the rollups ---------------------------------

    async def carry_over(self, batch_size: int = CARRY_OVER_BATCH) -> int:
        """Adds to the rollups every stored play written before they existed (one without a
        ``batch``), once: ``batch_size`` plays at a time in ``_id`` order, yielding to the
        loop between batches, with the last ``_id`` done saved after each batch so that an
        interrupted run resumes there (a batch redone keeps its id and counts once). One
        process at a time (a lease in the state document, renewed with each batch: the
        workers of one deployment all start at once); a no-op once done. Answers the number
        of plays carried over by this call."""
        owner = str(ObjectId())
        state = await self._claim_carry_over(owner)
        if state is None:
            return 0
        try:
            return await self._carry_over_from(owner, state.get("after"), batch_size)
        except BaseException:
            # Cut off (an outage, a shutdown): give the lease back so that the next start
            # resumes at once; if the database is away, it runs out by itself.
            with contextlib.suppress(DatabaseUnavailable, PyMongoError):
                await self._migrations.update_one({"_id": CARRY_OVER_STATE, "owner": owner},
                                                  {"$unset": {"owner": "", "lease_until": ""}})
            raise

    async def _carry_over_from(self, owner: str, after: ObjectId | None, batch_size: int) -> int:
        carried = 0
        while True:
            query = {} if after is None else {"_id": {"$gt": after}}
            page = await self._plays.find(query).sort("_id", ASCENDING).limit(batch_size).to_list(length=batch_size)
            if not page:
                break
            old = [play for play in page if "batch" not in play]
            if old:
                await self._rollups.add_plays(f"carry-{page[0]['_id']}", old)
                carried += len(old)
            after = page[-1]["_id"]
            if not await self._carried_to(owner, {"after": after}):
                log.warning("the carry-over's lease went to another process; leaving the rest to it")
                return carried
            await asyncio.sleep(0)  # let requests run between batches
        await self._carried_to(owner, {"done": True})
        if carried:
            log.info("carried stored plays over to the rollups", extra={"plays": carried})
        return carried

    async def _claim_carry_over(self, owner: str) -> dict | None:
        """The carry-over's state with its lease taken by ``owner``; None when it is done or
        another process holds an unexpired lease (the upsert then meets the existing _id)."""
        now = utcnow()
        try:
            return await self._migrations.find_one_and_update(
                {"_id": CARRY_OVER_STATE, "done": {"$ne": True},
                 "$or": [{"lease_until": {"$exists": False}}, {"lease_until": {"$lt": now}}]},
                {"$set": {"owner": owner, "lease_until": now + dt.timedelta(seconds=CARRY_OVER_LEASE_SECONDS)}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return None

    async def _carried_to(self, owner: str, progress: dict) -> bool:
        """Saves progress and renews the lease, if ``owner`` still holds it."""
        lease_until = utcnow() + dt.timedelta(seconds=CARRY_OVER_LEASE_SECONDS)
        result = await self._migrations.update_one(
            {"_id": CARRY_OVER_STATE, "owner": owner}, {"$set": {**progress, "lease_until": lease_until}})
        return result.matched_count == 1

    # ----- reading ----------------------------------------------------------------------

    async def stats(self, days: int) -> dict:
        """Over the last ``days`` UTC days, today included, from the rollups alone (days x
        videos documents, whatever the number of plays): each video's plays, viewers (the
        sum of each day's distinct viewers), watch seconds, completions and plays per day,
        most played first; and the whole catalog's plays and distinct viewers per day.

        Whole days, not ``days * 24`` hours back from now: the answer is grouped by
        date, and a rolling window would report a partial extra day at the start and
        change with the hour it is asked at."""
        today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        dates = [day_of(today - dt.timedelta(days=back)) for back in range(days - 1, -1, -1)]
        by_video: dict = {}
        for row in await self._rollups.video_days(dates[0]):
            entry = by_video.setdefault(row["video_id"], {
                "plays": 0, "viewers": 0, "watch_seconds": 0.0, "completions": 0, "per_day": []})
            plays = int(row.get("plays", 0))
            entry["plays"] += plays
            entry["viewers"] += int(row.get("viewers", 0))
            entry["watch_seconds"] += float(row.get("watch_seconds", 0))
            entry["completions"] += int(row.get("completions", 0))
            if plays:
                entry["per_day"].append({"date": row["day"], "plays": plays})
        videos = await self._catalog.get_many(list(by_video))
        result = [
            {"id": str(oid), "title": videos[oid]["title"], **entry, "watch_seconds": round(entry["watch_seconds"])}
            for oid, entry in by_video.items()
            # A deleted video is no longer reported; nor one with nothing in the period.
            if oid in videos and (entry["plays"] or entry["watch_seconds"] >= 0.5 or entry["completions"])
        ]
        result.sort(key=lambda entry: (-entry["plays"], entry["id"]))
        catalog = {row["_id"]: row for row in await self._rollups.catalog_days(dates[0])}
        per_day = [{"date": date, "plays": int(catalog.get(date, {}).get("plays", 0)),
                    "viewers": int(catalog.get(date, {}).get("viewers", 0))} for date in dates]
        return {"videos": result, "per_day": per_day}

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
        for _, batch in self._unrolled:
            for play in batch:
                if play["user_id"] == user_id:
                    play["user_id"] = pseudonym
        await self._rollups.rename_viewer(user_id, pseudonym)
        await self._plays.update_many({"user_id": user_id}, {"$set": {"user_id": pseudonym}})

