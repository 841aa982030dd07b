"""Opaque, signed pagination cursors, and the page size every list accepts.

A cursor is the sort key of the last item of a page: the next page starts strictly
after it, so items added meanwhile can neither repeat an item nor push one out. It is
signed (itsdangerous, a salt of its own) so a client cannot forge a position or slip an
operator into a query: a cursor that does not verify is a 400.

A cursor is bound to its list (``kind``) and to its query, normalised (the search words, the
``active`` filter): it carries a digest of the query, and one presented with another query is
a 400 (as Google's AIP-158 asks), since its position means nothing there and would silently
skip results. The digest keeps the cursor short whatever the query's length.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import NamedTuple

from itsdangerous import BadData, URLSafeSerializer

from services.common.clock import as_utc
from services.common.errors import InvalidInput
from services.common.ids import parse_object_id

CURSOR_SALT = "video-app.page-cursor.v1"
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
MAX_CURSOR_CHARS = 512
BAD_CURSOR = "This cursor is not valid: pass the next_cursor of the previous page as it is."
OTHER_QUERY = ("This cursor belongs to another query: repeat the query parameters of the page it came from "
               "with it, or start again without a cursor.")


def parse_whole_number(text: str | None, name: str, *, low: int, high: int, default: int) -> int:
    """A query parameter that is a whole number from ``low`` to ``high``; absent: ``default``."""
    if text is None:
        return default
    # ASCII digits only: str.isdigit() also takes "²" and other digits int() refuses.
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}.")
    return int(text)


def parse_limit(text: str | None) -> int:
    """``?limit=``: absent means the default; otherwise a whole number 1..MAX_LIMIT."""
    return parse_whole_number(text, "limit", low=1, high=MAX_LIMIT, default=DEFAULT_LIMIT)


def after_key(field: str, moment: dt.datetime, object_id, descending: bool = False) -> dict:
    """The filter for "strictly after (moment, id)" in (field, _id) order: where the next
    page starts. Both parts come from a verified cursor, never from client text."""
    op = "$lt" if descending else "$gt"
    return {"$or": [{field: {op: moment}}, {field: moment, "_id": {op: object_id}}]}


class Page(NamedTuple):
    """One page of a list: its items and the cursor of the next page (None: the end).
    The handler names the list in the answer (``{"videos": [...], "next_cursor": ...}``)."""

    items: list[dict]
    next_cursor: str | None


def query_digest(query: Mapping[str, object] | None) -> str:
    """A short, stable name of a normalised query (JSON values; None: a list with no query)."""
    canonical = json.dumps(query or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class CursorCodec:
    """Each list has its own ``kind``, so one list's cursor is refused by another, and each
    query its own ``query`` (the normalised parameters that choose the items), so one query's
    cursor is refused by another. ``signing_keys`` newest first, as for the other tokens: the
    newest signs, all verify."""

    def __init__(self, signing_keys: tuple[str, ...]):
        self._serializer = URLSafeSerializer(list(reversed(signing_keys)), salt=CURSOR_SALT)

    def encode(self, kind: str, moment: dt.datetime, object_id, *, query: Mapping[str, object] | None = None) -> str:
        moment = as_utc(moment)
        return self._serializer.dumps([kind, query_digest(query), moment.isoformat(), str(object_id)])

    def page(self, kind: str, items: list[dict], limit: int, *,
             query: Mapping[str, object] | None = None) -> Page:
        """``items`` (in ``created_at`` order) read with one more than ``limit``: the page,
        and the cursor after its last item if that extra one showed there is more (None
        otherwise)."""
        if len(items) <= limit:
            return Page(items, None)
        items = items[:limit]
        return Page(items, self.encode(kind, items[-1]["created_at"], items[-1]["_id"], query=query))

    def decode(self, kind: str, cursor: str | None, *, query: Mapping[str, object] | None = None):
        """``(moment, ObjectId)`` of a cursor of this kind and query, None for no cursor."""
        if cursor is None:
            return None
        if len(cursor) > MAX_CURSOR_CHARS:
            raise InvalidInput(BAD_CURSOR)
        try:
            payload = self._serializer.loads(cursor)
        except BadData:
            raise InvalidInput(BAD_CURSOR) from None
        if not (isinstance(payload, list) and len(payload) == 4 and payload[0] == kind
                and all(isinstance(part, str) for part in payload)):
            raise InvalidInput(BAD_CURSOR)
        if payload[1] != query_digest(query):
            raise InvalidInput(OTHER_QUERY)
        object_id = parse_object_id(payload[3])
        try:
            moment = as_utc(dt.datetime.fromisoformat(payload[2]))
        except ValueError:
            raise InvalidInput(BAD_CURSOR) from None
        if object_id is None:
            raise InvalidInput(BAD_CURSOR)
        return moment, object_id
