"""The video catalog."""

from __future__ import annotations

import time
import unicodedata

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.catalog.cursors import after_key
from services.common.clock import stored_now, utcnow
from services.common.datastore import Database
from services.common.errors import Conflict
from services.common.ids import parse_object_id

# Oldest first, then by id: the dashboard shows the same videos in the same order on every call.
DASHBOARD_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]
# What the dashboard shows; youtube_id stays in the database.
_PUBLIC_FIELDS = {"title": 1, "description": 1, "thumbnail_url": 1, "created_at": 1}
# What playback needs of a video: whether it may be played, and what to play.
PLAYABLE_FIELDS = {"youtube_id": 1, "title": 1, "is_active": 1}
# What a user-facing item needs, and whether it may be shown.
ITEM_FIELDS = {**_PUBLIC_FIELDS, "is_active": 1}
EMBED_URL = "https://www.youtube-nocookie.com/embed/{youtube_id}?autoplay=0&controls=1&playsinline=1&enablejsapi=1"
DUPLICATE = "That YouTube video is already in the catalog."


def embed_url(youtube_id: str) -> str:
    """The only form in which a YouTube id ever leaves the server. The mobile app splits
    it on ``/embed/`` then ``?``: keep that shape."""
    return EMBED_URL.format(youtube_id=youtube_id)


def title_words(text: str) -> list[str]:
    """The words of a title (or a search), as search compares them: accents stripped
    (NFKD, then no combining marks), case folded, split on anything not a letter or a
    digit. "Café número 5!" -> ["cafe", "numero", "5"]. Distinct, in first-seen order."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    words = "".join(ch if ch.isalnum() else " " for ch in plain).split()
    return list(dict.fromkeys(words))


class VideoCatalog:
    """``active()`` serves the dashboard from a short-lived cache: the catalog changes
    rarely and every app launch asks for it. A write through this catalog clears the
    cache at once; a write by another process shows within ``cache_seconds``. Lookups
    by id (what playback checks) always read the database, so a video made inactive is
    refused at once everywhere."""

    def __init__(self, db: Database, cache_seconds: float = 0):
        self._videos = db["videos"]
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, int, list[dict]] | None = None  # (read at, limit, videos)

    async def ensure_indexes(self) -> None:
        await self._videos.create_index(
            [("is_active", ASCENDING), *DASHBOARD_ORDER], name="active_in_dashboard_order"
        )
        await self._videos.create_index("youtube_id", unique=True, name="youtube_id_unique")
        # The operators' list of every video, active or not.
        await self._videos.create_index(DASHBOARD_ORDER, name="dashboard_order")
        # Search: a multikey index on the normalised words of each title.
        await self._videos.create_index(
            [("title_words", ASCENDING), ("is_active", ASCENDING), *DASHBOARD_ORDER], name="title_words"
        )
        await self._backfill_title_words()

    async def _backfill_title_words(self) -> None:
        """Videos stored before search existed get their words once."""
        async for video in self._videos.find({"title_words": {"$exists": False}}, projection={"title": 1}):
            await self._videos.update_one(
                {"_id": video["_id"]}, {"$set": {"title_words": title_words(str(video.get("title", "")))}}
            )

    async def active(self, limit: int) -> list[dict]:
        """The first ``limit`` active videos in dashboard order. Callers must not modify them."""
        if limit <= 0:
            return []
        now = time.monotonic()
        if self._cached and self._cached[1] == limit and now - self._cached[0] < self._cache_seconds:
            return self._cached[2]
        cursor = self._videos.find({"is_active": True}, projection=_PUBLIC_FIELDS).sort(DASHBOARD_ORDER).limit(limit)
        videos = await cursor.to_list(length=limit)
        self._cached = (now, limit, videos)
        return videos

    async def page(self, limit: int, after=None, *, active: bool | None = True,
                   words: list[str] | None = None, public: bool = True) -> list[dict]:
        """Up to ``limit`` videos in dashboard order, strictly after the ``(created_at, _id)``
        key ``after``; only active (or only inactive) ones unless ``active`` is None, and
        only those whose title has all of ``words``. Never cached: pages are read fresh."""
        query: dict = {}
        if words:
            query["title_words"] = {"$all": words}
        if active is not None:
            query["is_active"] = active
        if after is not None:
            query.update(after_key("created_at", *after))
        projection = _PUBLIC_FIELDS if public else {"title_words": 0}
        cursor = self._videos.find(query, projection=projection).sort(DASHBOARD_ORDER).limit(limit)
        return await cursor.to_list(length=limit)

    async def get(self, video_id: str | ObjectId, fields: dict | None = None) -> dict | None:
        """The video by id (its text, or the ObjectId already parsed), always read from the
        database; ``fields``, a projection of the fields the caller needs (``_id`` always
        comes with them): a smaller copy."""
        oid = video_id if isinstance(video_id, ObjectId) else parse_object_id(video_id)
        return await self._videos.find_one({"_id": oid}, projection=fields) if oid else None

    async def get_many(self, object_ids: list) -> dict:
        """The videos with these ids, by id (those that still exist)."""
        if not object_ids:
            return {}
        found = self._videos.find({"_id": {"$in": object_ids}}, projection=_PUBLIC_FIELDS | {"is_active": 1})
        return {video["_id"]: video async for video in found}

    async def upsert(self, video: dict) -> bool:
        """Inserts or updates a video by its YouTube id; True if it was new.
        ``created_at`` is set once, so re-seeding keeps the dashboard order."""
        fields = {k: v for k, v in video.items() if k != "youtube_id"}
        fields["title_words"] = title_words(fields["title"])
        now = utcnow()
        fields["updated_at"] = now
        result = await self._videos.update_one(
            {"youtube_id": video["youtube_id"]},
            {"$set": fields, "$setOnInsert": {"created_at": now, "plays": 0}},
            upsert=True,
        )
        self._cached = None
        return result.upserted_id is not None

    async def create(self, video: dict) -> dict:
        """A new video (``youtube_id, title, description, thumbnail_url, is_active``); the
        unique index on ``youtube_id`` makes a duplicate a Conflict, even one that races."""
        now = stored_now()
        doc = {**video, "title_words": title_words(video["title"]), "created_at": now, "updated_at": now,
               "plays": 0}
        try:
            await self._videos.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(DUPLICATE) from None
        self._cached = None
        return doc

    async def update(self, video_id: str, changes: dict) -> dict | None:
        """Applies ``changes`` in one atomic update; the video as it is now, or None."""
        oid = parse_object_id(video_id)
        if oid is None:
            return None
        fields = {**changes, "updated_at": utcnow()}
        if "title" in changes:
            fields["title_words"] = title_words(changes["title"])
        updated = await self._videos.find_one_and_update(
            {"_id": oid}, {"$set": fields}, projection={"title_words": 0}, return_document=ReturnDocument.AFTER
        )
        self._cached = None
        return updated

    async def delete(self, video_id: str) -> bool:
        oid = parse_object_id(video_id)
        if oid is None:
            return False
        result = await self._videos.delete_one({"_id": oid})
        self._cached = None
        return result.deleted_count == 1

    async def add_plays(self, counts: dict) -> None:
        """``{video ObjectId: n}``: each video's play counter goes up by n. One update per
        distinct n, not per video: a batch of 500 plays has at most 31 distinct counts.
        (``bulk_write`` would be one round trip, but the embedded store's mongomock
        cannot take the ``UpdateOne`` of the pinned PyMongo.)"""
        videos_by_count: dict[int, list] = {}
        for oid, count in counts.items():
            videos_by_count.setdefault(count, []).append(oid)
        for count, oids in videos_by_count.items():
            await self._videos.update_many({"_id": {"$in": oids}}, {"$inc": {"plays": count}})

    async def count(self) -> int:
        return await self._videos.count_documents({})
