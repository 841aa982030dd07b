"""The video catalog."""

from __future__ import annotations

import time

from pymongo import ASCENDING

from services.clock import utcnow
from services.ids import parse_object_id

# Oldest first, then by id: the dashboard shows the same videos in the same order on every call.
DASHBOARD_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]
# What the dashboard shows; youtube_id stays in the database.
_PUBLIC_FIELDS = {"title": 1, "description": 1, "thumbnail_url": 1}
EMBED_URL = "https://www.youtube-nocookie.com/embed/{youtube_id}?autoplay=0&controls=1&playsinline=1&enablejsapi=1"


def embed_url(youtube_id: str) -> str:
    """The only form in which a YouTube id ever leaves the server. The mobile app splits
    it on ``/embed/`` then ``?``: keep that shape."""
    return EMBED_URL.format(youtube_id=youtube_id)


class VideoCatalog:
    """``active()`` serves the dashboard from a short-lived cache: the catalog changes
    rarely and every app launch asks for it. A write through this catalog clears the
    cache at once; a write by another process shows within ``cache_seconds``. Lookups
    by id (what playback checks) always read the database, so a video made inactive is
    refused at once everywhere."""

    def __init__(self, db, cache_seconds: float = 0):
        self._videos = db["videos"]
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, int, list[dict]] | None = None  # (read at, limit, videos)

    async def ensure_indexes(self) -> None:
        await self._videos.create_index(
            [("is_active", ASCENDING), *DASHBOARD_ORDER], name="active_in_dashboard_order"
        )
        await self._videos.create_index("youtube_id", unique=True, name="youtube_id_unique")

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

    async def get(self, video_id: str) -> dict | None:
        oid = parse_object_id(video_id)
        return await self._videos.find_one({"_id": oid}) if oid else None

    async def upsert(self, video: dict) -> bool:
        """Inserts or updates a video by its YouTube id; True if it was new.
        ``created_at`` is set once, so re-seeding keeps the dashboard order."""
        fields = {k: v for k, v in video.items() if k != "youtube_id"}
        result = await self._videos.update_one(
            {"youtube_id": video["youtube_id"]},
            {"$set": fields, "$setOnInsert": {"created_at": utcnow()}},
            upsert=True,
        )
        self._cached = None
        return result.upserted_id is not None

    async def count(self) -> int:
        return await self._videos.count_documents({})
