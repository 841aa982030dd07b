"""Reading a YouTube video id out of whatever an operator pastes."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from services.common.errors import InvalidInput

VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
# The hosts YouTube serves videos from, as pasted from a browser, the app or a share sheet.
_WATCH_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_EMBED_HOSTS = _WATCH_HOSTS | {"youtube-nocookie.com", "www.youtube-nocookie.com"}
_SHORT_HOSTS = {"youtu.be", "www.youtu.be"}
# Path forms that carry the id as the segment after the prefix.
_PATH_PREFIXES = {"embed", "shorts", "live", "v"}
EXPECTED = (
    "Expected a YouTube video: its 11-character id (such as dQw4w9WgXcQ) or a link such as "
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ, https://youtu.be/dQw4w9WgXcQ or "
    "https://www.youtube.com/shorts/dQw4w9WgXcQ."
)
MAX_INPUT_CHARS = 2048


def parse_youtube_id(text) -> str:
    """The 11-character id of the video ``text`` names; InvalidInput saying what was
    expected for anything else."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        raise InvalidInput(EXPECTED)
    text = text.strip()
    if VIDEO_ID.fullmatch(text):
        return text
    found = _id_from_url(text if "://" in text else f"https://{text}")
    if found is None or not VIDEO_ID.fullmatch(found):
        raise InvalidInput(EXPECTED)
    return found


def _id_from_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        # YouTube links carry no port and no user name: one that does is something else.
        if parts.port is not None or parts.username is not None:
            return None
    except ValueError:  # e.g. a malformed IPv6 host or port
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    if host in _SHORT_HOSTS:
        return segments[0] if len(segments) == 1 else None
    if host in _WATCH_HOSTS and segments == ["watch"]:
        ids = parse_qs(parts.query).get("v", [])
        return ids[0] if len(ids) == 1 else None
    if host in _EMBED_HOSTS and len(segments) == 2 and segments[0] in _PATH_PREFIXES:
        if segments[0] != "embed" and host not in _WATCH_HOSTS:
            return None
        return segments[1]
    return None
