"""Watch progress ("continue watching"): one document per user and video."""

from __future__ import annotations

import datetime as dt
import math
from typing import TypeGuard

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError
from schema import And, Schema

from services.catalog.cursors import after_key
from services.catalog.rollups import PlayRollups, watched_seconds
from services.common import validation
from services.common.clock import stored_now
from services.common.datastore import Database
from services.common.errors import InvalidInput

COMPLETED_FRACTION = 0.95
HISTORY_ORDER = [("updated_at", DESCENDING), ("_id", DESCENDING)]


def _seconds(value: object) -> TypeGuard[float]:
    """A finite, non-negative JSON number (true and false are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value)) and value >= 0
    except OverflowError:  # an integer too large for any real duration
        return False


def _duration(value: object) -> TypeGuard[float]:
    return _seconds(value) and value > 0


PROGRESS = Schema({
    "position_seconds": And(_seconds, error="position_seconds must be a finite number of seconds, 0 or more."),
    "duration_seconds": And(_duration, error="duration_seconds must be a finite number of seconds, more than 0."),
}, ignore_extra_keys=True)


def validated_progress(body) -> tuple[float, float]:
    # Players report their position as they play (every 30 s in bench/README.md's capacity
    # plan): progress is the API's most frequent request. A well-formed body is recognised
    # by PROGRESS's own predicates, without schema's walk over the dict and the sub-schemas
    # it builds on every call (far slower: bench/README.md); any other goes through PROGRESS,
    # for its message. tests/catalog/test_catalog_services.py holds the two paths to one answer.
    if isinstance(body, dict) and _seconds(position := body.get("position_seconds")) \
            and _duration(duration := body.get("duration_seconds")):
        position, duration = float(position), float(duration)
    else:
        fields = validation.validated(PROGRESS, body)
        position, duration = float(fields["position_seconds"]), float(fields["duration_seconds"])
    if position > duration:
        raise InvalidInput("position_seconds cannot be past duration_seconds.")
    return position, duration


class WatchHistory:
    def __init__(self, db: Database, rollups: PlayRollups):
        self._history = db["watch_history"]
        self._rollups = rollups

    async def ensure_indexes(self) -> None:
        # One entry per user and video, even when two saves race.
        await self._history.create_index([("user_id", ASCENDING), ("video_id", ASCENDING)], unique=True,
                                         name="user_video_unique")
        await self._history.create_index([("user_id", ASCENDING), *HISTORY_ORDER], name="user_history")

    async def save(self, user_id: str, video_oid, position: float, duration: float) -> dict:
        now = stored_now()
        completed = position >= COMPLETED_FRACTION * duration
        fields = {
            "position_seconds": position,
            "duration_seconds": duration,
            "completed": completed,
            "updated_at": now,
        }
        changes = {**fields, "completed_once": True} if completed else fields
        key = {"user_id": user_id, "video_id": video_oid}
        # The entry as it was before this report, read in the same atomic operation as the
        # write: of two reports racing, each sees the other's position at most once.
        try:
            previous = await self._history.find_one_and_update(
                key, {"$set": changes}, upsert=True, return_document=ReturnDocument.BEFORE)
        except DuplicateKeyError:
            # Two first saves raced to create the entry; the loser updates the winner's.
            previous = await self._history.find_one_and_update(
                key, {"$set": changes}, return_document=ReturnDocument.BEFORE)
        # Watched once: the first report at or past 95 % (entries older than the rollups
        # only have "completed").
        already = bool(previous) and bool(previous.get("completed_once", previous.get("completed")))
        completion = 1 if completed and not already else 0
        seconds = watched_seconds(previous, position, duration, now)
        # Buffered: added to the rollups by the plays flush (rollups.py).
        self._rollups.add_watching(video_oid, now, seconds, completion)
        return fields

    async def page(self, user_id: str, limit: int, after: tuple[dt.datetime, ObjectId] | None = None) -> list[dict]:
        """Up to ``limit`` entries, most recently updated first, strictly after ``after``."""
        query: dict = {"user_id": user_id}
        if after is not None:
            query.update(after_key("updated_at", *after, descending=True))
        return await self._history.find(query).sort(HISTORY_ORDER).limit(limit).to_list(length=limit)

    async def delete_user_data(self, user_id: str) -> None:
        """Account deletion: the user's whole watch history goes."""
        await self._history.delete_many({"user_id": user_id})
