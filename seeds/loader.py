"""Reads the demo catalog and upserts it: idempotent, never deletes anything."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).resolve().parent / "catalog.yaml"
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_FIELDS = {"youtube_id", "title", "description", "thumbnail_url", "is_active"}


class CatalogError(Exception):
    pass


def read_catalog(path: Path = CATALOG_PATH) -> list[dict]:
    """The videos of a catalog file, checked: a typo fails here, not in a client."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    videos = data.get("videos")
    if not isinstance(videos, list) or not videos:
        raise CatalogError(f"{path}: 'videos' must be a non-empty list")
    for number, video in enumerate(videos, 1):
        if not isinstance(video, dict) or set(video) != _FIELDS:
            raise CatalogError(f"{path}: video {number} must have exactly {sorted(_FIELDS)}")
        if not _YOUTUBE_ID.fullmatch(str(video["youtube_id"])):
            raise CatalogError(f"{path}: video {number} has a malformed youtube_id")
        if not isinstance(video["is_active"], bool) or not str(video["title"]).strip():
            raise CatalogError(f"{path}: video {number} needs a title and a true/false is_active")
    return videos


async def load_catalog(catalog, videos: list[dict]) -> int:
    """Upserts every video by YouTube id; returns how many were new."""
    added = 0
    for video in videos:
        added += await catalog.upsert(video)
    return added


async def seed_if_empty(catalog, path: Path = CATALOG_PATH) -> int:
    """Start-up seeding: only into an empty catalog, so an operator's edits stand."""
    if await catalog.count():
        return 0
    return await load_catalog(catalog, read_catalog(path))
