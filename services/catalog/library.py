"""The catalog as users see it: browsing, search, one video, watch progress and history.

Every video here is a dashboard item (services/catalog/playback.py builds them), with a fresh
playback token for the caller; inactive and deleted videos never appear.
"""

from __future__ import annotations

from services.accounts.sessions import Principal
from services.catalog.cursors import CursorCodec, Page, parse_limit
from services.catalog.playback import Playback
from services.catalog.progress import WatchHistory, validated_progress
from services.catalog.videos import ITEM_FIELDS, VideoCatalog, title_words
from services.common.clock import isoformat
from services.common.errors import InvalidInput, NotFound

VIDEOS_CURSOR = "videos"
HISTORY_CURSOR = "history"
MAX_QUERY_CHARS = 200
# A history page skips entries of videos that are gone or inactive; it reads at most
# this many batches, so a history full of withdrawn videos cannot make one request long.
MAX_HISTORY_BATCHES = 5


def _progress_fields(entry: dict) -> dict:
    return {
        "position_seconds": entry["position_seconds"],
        "duration_seconds": entry["duration_seconds"],
        "completed": entry["completed"],
        "updated_at": isoformat(entry["updated_at"]),
    }


class Library:
    def __init__(self, catalog: VideoCatalog, playback: Playback, history: WatchHistory, cursors: CursorCodec):
        self._catalog = catalog
        self._playback = playback
        self._history = history
        self._cursors = cursors

    async def browse(self, principal: Principal, base_url: str, *, limit: str | None, cursor: str | None,
                     q: str | None) -> Page:
        page_size = parse_limit(limit)
        words = self._search_words(q)
        # The cursor is bound to the normalised words: "Zebra " pages on from "zebra", "steve" does not.
        query = {"q": words or []}
        after = self._cursors.decode(VIDEOS_CURSOR, cursor, query=query)
        # One more than the page: whether it exists says whether there is a next page.
        videos, next_cursor = self._cursors.page(
            VIDEOS_CURSOR, await self._catalog.page(page_size + 1, after, active=True, words=words), page_size,
            query=query)
        return Page(self._playback.items(videos, principal, base_url), next_cursor)

    async def video(self, principal: Principal, base_url: str, video_id: str) -> dict:
        """The video as a dashboard item."""
        video = await self._catalog.get(video_id, ITEM_FIELDS)
        if video is None or not video.get("is_active"):
            raise NotFound("Video not found.")
        return self._playback.items([video], principal, base_url)[0]

    async def save_progress(self, principal: Principal, video_id: str, body) -> dict:
        video = await self._catalog.get(video_id, {"is_active": 1})
        # An inactive video is answered exactly as a missing one (as by video()), so that
        # no answer confirms that its id exists.
        if video is None or not video.get("is_active"):
            raise NotFound("Video not found.")
        position, duration = validated_progress(body)
        return _progress_fields(await self._history.save(principal.user_id, video["_id"], position, duration))

    async def history(self, principal: Principal, base_url: str, *, limit: str | None,
                      cursor: str | None) -> Page:
        page_size = parse_limit(limit)
        after = self._cursors.decode(HISTORY_CURSOR, cursor)
        kept: list[tuple[dict, dict]] = []  # (entry, video)
        for _ in range(MAX_HISTORY_BATCHES):
            batch = await self._history.page(principal.user_id, page_size + 1, after)
            videos = await self._catalog.get_many([entry["video_id"] for entry in batch])
            for entry in batch:
                video = videos.get(entry["video_id"])
                if video is not None and video.get("is_active"):
                    if len(kept) == page_size:  # a visible entry beyond this page: there is a next one
                        return self._history_page(kept, principal, base_url, more=True)
                    kept.append((entry, video))
                after = (entry["updated_at"], entry["_id"])
            if len(batch) <= page_size:
                return self._history_page(kept, principal, base_url, more=False)
        # Read enough for one request: the page may be short, and the cursor goes on from
        # the last entry read.
        return self._history_page(kept, principal, base_url, more=True, resume=after)

    def _history_page(self, kept, principal: Principal, base_url: str, *, more: bool, resume=None) -> Page:
        items = self._playback.items([video for _, video in kept], principal, base_url)
        history = [{"video": item, **_progress_fields(entry)} for (entry, _), item in zip(kept, items, strict=True)]
        next_cursor = None
        if more:
            position = resume or (kept[-1][0]["updated_at"], kept[-1][0]["_id"])
            next_cursor = self._cursors.encode(HISTORY_CURSOR, *position)
        return Page(history, next_cursor)

    @staticmethod
    def _search_words(q: str | None) -> list[str] | None:
        """Words to match, never a pattern or an operator: they are compared for equality
        with the stored words of each title. No words (absent or blank) means no filter."""
        if q is None:
            return None
        if len(q) > MAX_QUERY_CHARS:
            raise InvalidInput(f"The search text q can be at most {MAX_QUERY_CHARS} characters.")
        # At most 200 characters is at most 100 words: no other bound is needed.
        return title_words(q) or None
