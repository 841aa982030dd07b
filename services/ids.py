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
