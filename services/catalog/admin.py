"""The catalog as operators see it: who is an admin, adding, editing and removing
videos, and play statistics. The one place a YouTube id is shown."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from schema import And, Optional, Schema

from services.accounts.sessions import Principal
from services.accounts.users import UserStore
from services.catalog.cursors import CursorCodec, Page, parse_limit
from services.catalog.library import Library
from services.catalog.plays import PlayStore, parse_days
from services.catalog.videos import VideoCatalog
from services.catalog.youtube import parse_youtube_id
from services.common.clock import isoformat
from services.common.errors import Forbidden, InvalidInput, NotFound
from services.common.validation import normalize_email, validated

ADMIN_CURSOR = "admin-videos"
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 5000
MAX_URL_CHARS = 2048
THUMBNAIL_URL = "https://i.ytimg.com/vi/{youtube_id}/hqdefault.jpg"
NOT_ADMIN = "This needs an operator account."
VERIFY_FIRST = "This operator account must verify its email address first: open the link in the " \
    "verification mail, or ask for a new one with POST /auth/verify-email."


class PlayStats(NamedTuple):
    """The figures of the last ``days`` whole UTC days, from the per-day rollups: per video
    (most played first) and for the whole catalog per day."""

    days: int
    videos: list[dict]
    per_day: list[dict]


def _https_url(value) -> bool:
    # A URI (RFC 3986) is printable ASCII: an app hands it to an image loader as it is.
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS or not (value.isascii() and value.isprintable()) \
            or " " in value:
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme == "https" and bool(parts.hostname)
    except ValueError:
        return False


TITLE: And[Schema] = And(str, lambda v: 0 < len(v.strip()) <= MAX_TITLE_CHARS,
            error=f"title must be a non-empty text of at most {MAX_TITLE_CHARS} characters.")
DESCRIPTION: And[Schema] = And(str, lambda v: len(v) <= MAX_DESCRIPTION_CHARS,
                  error=f"description must be a text of at most {MAX_DESCRIPTION_CHARS} characters.")
THUMBNAIL: And[Schema] = And(_https_url, error="thumbnail_url must be an https:// URL.")
IS_ACTIVE: And[Schema] = And(bool, error="is_active must be true or false.")
EDITABLE = {"title": TITLE, "description": DESCRIPTION, "thumbnail_url": THUMBNAIL, "is_active": IS_ACTIVE}
NEW_VIDEO = Schema({"youtube": object, "title": TITLE, **{Optional(k): v for k, v in EDITABLE.items() if k != "title"}})
VIDEO_CHANGES = Schema({Optional(k): v for k, v in EDITABLE.items()})


def _validated(schema: Schema, body) -> dict:
    """As every body is validated (services/common/validation.py), after refusing fields the
    schema does not name: an operator's typo must not be silently ignored."""
    if isinstance(body, dict):
        fields = {str(getattr(k, "schema", k)) for k in schema.schema}
        unknown = sorted(set(body) - fields)
        if unknown:
            raise InvalidInput(f"Unknown field {unknown[0]!r}: the fields are {', '.join(sorted(fields))}.")
    return validated(schema, body)


def admin_video(video: dict) -> dict:
    return {
        "id": str(video["_id"]),
        "youtube_id": video["youtube_id"],
        "title": video["title"],
        "description": video.get("description", ""),
        "thumbnail_url": video.get("thumbnail_url", ""),
        "is_active": bool(video.get("is_active")),
        "created_at": isoformat(video["created_at"]),
        "updated_at": isoformat(video.get("updated_at") or video["created_at"]),
        "plays": int(video.get("plays", 0)),
    }


class CatalogAdmin:
    def __init__(self, users: UserStore, catalog: VideoCatalog, plays: PlayStore, cursors: CursorCodec,
                 admin_emails: tuple[str, ...]):
        self._users = users
        self._catalog = catalog
        self._plays = plays
        self._cursors = cursors
        # In the form accounts store their email (services/common/validation.py), so that an
        # operator listed as Ann@Bücher.de or ann@xn--bcher-kva.de is the account ann@bücher.de.
        self._admin_emails = frozenset(normalize_email(email) or email for email in admin_emails)

    async def require_admin(self, principal: Principal) -> None:
        """Forbidden unless the caller's account has an email listed in ADMIN_EMAILS and
        verified: whoever signs up first with a listed address must not become an operator
        by that alone. The account is read on every request: neither is in the token."""
        if not self._admin_emails:
            raise Forbidden(NOT_ADMIN)
        try:
            user = await self._users.get(principal.user_id)
        except NotFound:
            raise Forbidden(NOT_ADMIN) from None
        if user.get("email") not in self._admin_emails:
            raise Forbidden(NOT_ADMIN)
        if user.get("email_verified") is not True:
            raise Forbidden(VERIFY_FIRST)

    async def videos(self, *, limit: str | None, cursor: str | None, active: str | None,
                     q: str | None = None) -> Page:
        page_size = parse_limit(limit)
        if active not in (None, "true", "false"):
            raise InvalidInput("active must be true or false.")
        only = None if active is None else active == "true"
        # The same words as GET /videos?q= (the console's search box).
        words = Library._search_words(q)
        # The cursor is bound to the query: one of active=true is refused with active=false.
        query = {"active": only, "q": words or []}
        after = self._cursors.decode(ADMIN_CURSOR, cursor, query=query)
        videos, next_cursor = self._cursors.page(
            ADMIN_CURSOR,
            await self._catalog.page(page_size + 1, after, active=only, words=words, public=False), page_size,
            query=query)
        return Page([admin_video(video) for video in videos], next_cursor)

    async def video(self, video_id: str) -> dict:
        """One video as admins see it (``admin_video``), active or not: the console's edit form."""
        video = await self._catalog.get(video_id)
        if video is None:
            raise NotFound("Video not found.")
        return admin_video(video)

    @staticmethod
    def preview(youtube) -> dict:
        """What add() would store for this link, before anything is stored: the id and the
        thumbnail (the console's preview step); InvalidInput as add() gives it."""
        youtube_id = parse_youtube_id(youtube)
        return {"youtube_id": youtube_id, "thumbnail_url": THUMBNAIL_URL.format(youtube_id=youtube_id)}

    async def add(self, body) -> dict:
        """The new video, as admins see it (``admin_video``)."""
        fields = _validated(NEW_VIDEO, body)
        youtube_id = parse_youtube_id(fields["youtube"])
        video = {
            "youtube_id": youtube_id,
            "title": fields["title"].strip(),
            "description": fields.get("description", ""),
            "thumbnail_url": fields.get("thumbnail_url") or THUMBNAIL_URL.format(youtube_id=youtube_id),
            "is_active": fields.get("is_active", True),
        }
        return admin_video(await self._catalog.create(video))

    async def edit(self, video_id: str, body) -> dict:
        changes = _validated(VIDEO_CHANGES, body)
        if not changes:
            raise InvalidInput("Send at least one of title, description, thumbnail_url, is_active.")
        if "title" in changes:
            changes["title"] = changes["title"].strip()
        video = await self._catalog.update(video_id, changes)
        if video is None:
            raise NotFound("Video not found.")
        return admin_video(video)

    async def remove(self, video_id: str) -> None:
        if not await self._catalog.delete(video_id):
            raise NotFound("Video not found.")

    async def stats(self, days: str | None) -> PlayStats:
        span = parse_days(days)
        figures = await self._plays.stats(span)
        return PlayStats(span, figures["videos"], figures["per_day"])
