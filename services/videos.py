"""The video catalog."""

from __future__ import annotations

from pymongo import ASCENDING

from services.clock import utcnow
from services.ids import parse_object_id

# Oldest first, then by id: the dashboard shows the same videos in the same order on every call.
DASHBOARD_ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]
EMBED_URL = "https://www.youtube-nocookie.com/embed/{youtube_id}?autoplay=0&controls=1&playsinline=1&enablejsapi=1"


def embed_url(youtube_id: str) -> str:
    """The only form in which a YouTube id ever leaves the server. The mobile app splits
    it on ``/embed/`` then ``?``: keep that shape."""
    return EMBED_URL.format(youtube_id=youtube_id)


class VideoCatalog:
    def __init__(self, db):
        self._videos = db["videos"]

    async def ensure_indexes(self) -> None:
        await self._videos.create_index(
            [("is_active", ASCENDING), *DASHBOARD_ORDER], name="active_in_dashboard_order"
        )
        await self._videos.create_index("youtube_id", unique=True, name="youtube_id_unique")

    async def active(self, limit: int) -> list[dict]:
        if limit <= 0:
            return []
        cursor = self._videos.find({"is_active": True}).sort(DASHBOARD_ORDER).limit(limit)
        return await cursor.to_list(length=limit)

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
        return result.upserted_id is not None

    async def count(self) -> int:
        return await self._videos.count_documents({})
