"""Turning the ids that travel in URLs and tokens into ObjectIds, without exceptions."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId


def parse_object_id(text) -> ObjectId | None:
    """The ObjectId for a 24-hex-digit string; None for anything else (a malformed id
    is simply an id that matches nothing)."""
    if not isinstance(text, str) or len(text) != 24:
        return None
    try:
        return ObjectId(text)
    except InvalidId:
        return None


def canonical_video_id(text) -> str | None:
    """The one form of a video id used in tokens and lookups: 24 hex digits in lower
    case, whatever case they came in (hex is case-insensitive); None if it is not one."""
    oid = parse_object_id(text)
    return None if oid is None else str(oid)
