"""The embedded in-memory store (mongomock-motor), made to scale like a database.

mongomock answers every query by scanning the whole collection, and before each access
it also scans every collection that has a TTL index for expired documents. With one
session document per login, each authenticated request would then cost time in
proportion to the number of logins ever made. A real MongoDB answers an ``_id`` lookup
from its index and expires documents in a background pass about once a minute; these two
patches give the embedded store the same shape of cost:

- a query whose filter pins ``_id`` to a plain value reads that one document (and still
  applies the whole filter to it), instead of scanning;
- expired documents are swept at most once per ``TTL_SWEEP_SECONDS``, not on every access.
  Expiry is checked in the queries themselves anyway (services/sessions.py, throttle.py),
  as it must be on a real MongoDB.

They change no result, only cost; the whole test suite runs over them. Pinned to the
mongomock version in requirements.txt: re-check them when upgrading it.
"""

from __future__ import annotations

import time

from bson import ObjectId
from mongomock.collection import Collection
from mongomock.filtering import filter_applies
from mongomock.store import CollectionStore
from mongomock_motor import AsyncMongoMockClient

TTL_SWEEP_SECONDS = 1.0
_PLAIN_IDS = (str, int, ObjectId)


def _iter_documents_by_id(original):
    def iter_documents(self, filter):
        key = filter.get("_id") if isinstance(filter, dict) else None
        if isinstance(key, _PLAIN_IDS) and not isinstance(key, bool):
            try:
                document = self._store[key]
            except KeyError:
                return iter(())
            return iter((document,) if filter_applies(filter, document) else ())
        return original(self, filter)

    iter_documents.patched_for_id_lookups = True
    return iter_documents


def _sweep_now_and_then(original):
    def remove_expired_documents(self):
        now = time.monotonic()
        if now - getattr(self, "_last_ttl_sweep", float("-inf")) >= TTL_SWEEP_SECONDS:
            self._last_ttl_sweep = now
            original(self)

    remove_expired_documents.patched_for_sweeps = True
    return remove_expired_documents


def _patch_mongomock() -> None:
    if not getattr(Collection._iter_documents, "patched_for_id_lookups", False):
        Collection._iter_documents = _iter_documents_by_id(Collection._iter_documents)
    if not getattr(CollectionStore._remove_expired_documents, "patched_for_sweeps", False):
        CollectionStore._remove_expired_documents = _sweep_now_and_then(CollectionStore._remove_expired_documents)


def embedded_client() -> AsyncMongoMockClient:
    _patch_mongomock()
    return AsyncMongoMockClient(tz_aware=True)
