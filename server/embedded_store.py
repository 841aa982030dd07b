"""The embedded in-memory store (mongomock-motor), made to scale like a database.

mongomock answers every query by scanning the whole collection, and before each access
it also scans every collection that has a TTL index for expired documents. With one
session document per login, each authenticated request would then cost time in
proportion to the number of logins ever made. A real MongoDB answers an ``_id`` lookup
from its index and expires documents in a background pass about once a minute; these two
patches give the embedded store the same shape of cost:

- a query whose filter pins ``_id`` to a plain value, or to ``$in`` a list of them, reads
  those documents (and still applies the whole filter to each), instead of scanning (the
  plays' rollups look up a batch's viewer records this way); one of plain equalities only
  (``{"is_active": True}``: strings, ObjectIds, booleans) compares them in one pass, falling
  back to mongomock's matcher only for a stored value of another kind (an array...);
- a cursor's documents (``find().sort().limit()``: a page of the catalog) are sorted with
  Python's own comparison when every sort field holds values of one type that it orders as
  BSON does (strings, ObjectIds, datetimes, integers), kept fields of an inclusion projection
  are picked without mongomock's projection engine, and each document is copied once (with
  its datetimes made aware), not copied by the projection and again by the cursor; the page
  is sliced once, not once per document handed out;
- ``find_one`` with such a filter (what every authenticated request and every playback
  check does) goes straight to that document, then through the same filter, projection
  and time-zone steps as mongomock's own path, without building a cursor around it; a
  projection that keeps named top-level fields copies only those (in the document's order,
  ``_id`` first, as MongoDB answers), not the whole document;
- ``find_one_and_update`` with a filter of plain equalities (strings, ObjectIds, a plain
  ``_id``) and one ``$set`` of plain values (a progress report's write to its history
  entry) finds the first match in one pass and sets the fields in place, instead of
  mongomock's cursor, its deep copy of the document, its update engine and a second read
  by ``_id``; an upsert is inserted as MongoDB builds it (``_id``, the filter's equalities,
  the ``$set``) through the flat insert below, and a unique index the ``$set`` touches is
  checked (and the change rolled back) as mongomock does;
- expired documents are swept at most once per ``TTL_SWEEP_SECONDS``, not on every access,
  and each sweep checks at most ``TTL_SWEEP_DOCUMENTS`` documents (the next slice of a pass).
  Expiry is checked on every read anyway (services/accounts/sessions.py, throttle.py), as it must
  be on a real MongoDB, whose TTL monitor runs about once a minute.

- inserting a flat document (top-level fields of plain BSON values only: what a play, a
  session or a counter is) converts its datetimes and checks its field names in one pass
  over its fields, instead of mongomock's recursive walks, its per-document version parse
  and its three trips through the collection store's lock. Anything else (nested values,
  a suspect field name, a session) takes mongomock's own path, which raises its errors.
  The plays of every ``/stream`` answer are written this way (about 40 % of their cost).
  An ``insert_many`` of such documents (a batch of plays) is checked, then stored in one
  pass under one lock, when nothing in it can be refused midway (no unique index, no _id
  given twice or already stored, every document flat and encodable); otherwise mongomock's
  loop inserts them one by one, as before.

mongomock-motor copies every filter and sort it passes on, to turn beanie's string-like
fields into strings; beanie is no dependency here, so the copy is the same value, and
``_normalize_strings`` passes it through instead (only while beanie cannot be imported).

A fourth lets mongomock's ``bulk_write`` take the pinned PyMongo's ``UpdateOne``, which
passes a ``sort`` (MongoDB 8's sorted updateOne) that mongomock's bulk builder does not
know: an absent sort is dropped, a given one refused (services never sort an update).

A further one makes ``with_options`` (services/common/durability.py) return an async collection, as
Motor's does: mongomock-motor hands back mongomock's own, synchronous one. The options
themselves mean nothing to a store of one process.

They change no result, only cost; the whole test suite runs over them, and
tests/server/test_embedded_store.py compares each with mongomock's own path on the same data.
They still earn their keep: without them the services' part of an authenticated
/dashboard or /stream costs many times more, and grows with every login (figures:
bench/README.md).

They reach into mongomock's internals, so they are written for one mongomock version:
the one requirements.txt pins. ``embedded_client()`` refuses to start on any other
(``check_mongomock_version``), naming both: re-check the patches against the new
version (run the tests) before moving the pin.
"""

from __future__ import annotations

import functools
import importlib.metadata
import operator
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bson import BSON, ObjectId
from mongomock import helpers
from mongomock.collection import BulkOperationBuilder, Collection, Cursor
from mongomock.filtering import filter_applies
from mongomock.store import CollectionStore
from mongomock_motor import AsyncMongoMockClient, AsyncMongoMockCollection
from mongomock_motor import patches as mongomock_motor_patches
from pymongo import ReturnDocument

from server.config import ConfigError

TTL_SWEEP_SECONDS = 1.0
TTL_SWEEP_DOCUMENTS = 1000
# The one place the mongomock version is pinned.
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"
_PLAIN_IDS = (str, int, ObjectId)
# Immutable values a returned document can share with the stored one.
_SHARED = frozenset({str, int, float, bool, type(None), bytes, ObjectId})
# What the fields of a document inserted by the flat path may hold.
_FLAT = _SHARED | {datetime}
# Projections seen (tuple of their items) -> the fields they keep, or None: a bounded memo.
_INCLUDED: dict[tuple, frozenset | None] = {}
_INCLUDED_KEPT = 256
# Sorts seen (tuple of their items) -> their plain keys, or None: the same kind of memo.
_SORTS: dict[tuple, list | None] = {}


def _iter_documents_by_id(original):
    def iter_documents(self, filter):
        key = _plain_id(filter)
        if key is not None:
            try:
                document = self._store[key]
            except KeyError:
                return iter(())
            return iter((document,) if filter_applies(filter, document) else ())
        keys = _plain_ids_in(filter)
        if keys is not None:
            # In the order asked; each found by its _id, so only the rest of the filter is
            # applied (mongomock's $in compares every value to every document: quadratic).
            rest = {field: condition for field, condition in filter.items() if field != "_id"}
            found = (self._store._documents.get(k) for k in dict.fromkeys(keys))
            return iter([document for document in found if document is not None and filter_applies(rest, document)])
        if _equalities(filter) is not None:
            store = self._store
            store._remove_expired_documents()
            return iter([document for document in store._documents.values() if _matches(filter, document)])
        return original(self, filter)

    iter_documents.patched_for_id_lookups = True  # type: ignore[attr-defined]
    iter_documents.__wrapped__ = original  # type: ignore[attr-defined]
    return iter_documents


def _plain_id(filter):
    """The ``_id`` a filter pins to one plain value, or None."""
    key = filter.get("_id") if isinstance(filter, dict) else None
    return key if isinstance(key, _PLAIN_IDS) and not isinstance(key, bool) else None


def _plain_ids_in(filter):
    """The ``_id`` values of a filter's ``{"_id": {"$in": [plain values]}}``, or None."""
    key = filter.get("_id") if isinstance(filter, dict) else None
    if not isinstance(key, dict) or set(key) != {"$in"} or not isinstance(key["$in"], (list, tuple)):
        return None
    values = key["$in"]
    if all(isinstance(v, _PLAIN_IDS) and not isinstance(v, bool) for v in values):
        return values
    return None


def _as_returned(value):
    """A stored value as a client receives it: containers copied (the caller may change
    them without touching the store) and the stored naive-UTC datetimes made aware, as
    mongomock's ``_copy_field`` and ``make_datetime_timezone_aware_in_document`` do in
    two passes. Every other BSON value is immutable and is shared."""
    if isinstance(value, dict):
        # Most fields are scalars, then datetimes: the type tests inline save a call for each.
        return {key: item if type(item) in _SHARED else item.replace(tzinfo=helpers.utc) if type(item) is datetime
                else _as_returned(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [item if type(item) in _SHARED else _as_returned(item) for item in value]
    if isinstance(value, datetime):
        return value.replace(tzinfo=helpers.utc)
    return value


def _included_fields(projection: object) -> frozenset | None:
    """The fields an inclusion projection of top-level fields (``{"title": 1, ...}``, with
    ``"_id": 0`` or 1 or nothing) keeps, or None for any other projection. Remembered: the
    services' projections are a handful of constants, read on every request."""
    if type(projection) is not dict or not projection:
        return None
    try:
        key = tuple(projection.items())
        return _INCLUDED[key]
    except TypeError:  # an unhashable value: an operator ($slice, $elemMatch), not plain fields
        return None
    except KeyError:
        pass
    included = _fields_kept(projection)
    if len(_INCLUDED) < _INCLUDED_KEPT:
        _INCLUDED[key] = included
    return included


def _fields_kept(projection: dict) -> frozenset | None:
    included = {"_id"}
    for key, value in projection.items():
        if type(value) not in (int, bool):
            return None
        if key == "_id":
            if not value:
                included.discard("_id")
        elif value == 1 and type(key) is str and key and not key.startswith("$") and "." not in key:
            included.add(key)
        else:
            return None
    named = len(included) - ("_id" in included)
    return frozenset(included) if named == len(projection) - ("_id" in projection) and named else None


def _find_one_by_id(original):
    def find_one(self, filter=None, *args, **kwargs):
        key = _plain_id(filter)
        # Only the plain form on a tz-aware client (the one embedded_client() makes):
        # positional arguments or any option other than a projection (sort, skip,
        # session...) take mongomock's own path.
        if key is None or args or (kwargs and (len(kwargs) > 1 or "projection" not in kwargs)) \
                or not self.codec_options.tz_aware:
            return original(self, filter, *args, **kwargs)
        store = self._store
        store._remove_expired_documents()
        document = store._documents.get(key)
        if document is None:
            return None
        # As mongomock's Cursor does: stored datetimes are naive UTC at millisecond precision.
        if len(filter) > 1 and not filter_applies(helpers.patch_datetime_awareness_in_document(filter), document):
            return None
        projection = kwargs.get("projection")
        if projection is None:
            return _as_returned(document)
        included = _included_fields(projection)
        if included is not None:
            # The named top-level fields in the document's order, _id first, as MongoDB answers.
            return _as_returned({key: value for key, value in document.items() if key in included})
        # _copy_only_fields consumes the projection it is given: hand it a copy.
        fields = dict(projection) if isinstance(projection, dict) else projection
        return _as_returned(self._copy_only_fields(document, fields, dict))

    find_one.patched_for_id_lookups = True  # type: ignore[attr-defined]
    find_one.__wrapped__ = original  # type: ignore[attr-defined]  # mongomock's own path, which the tests compare with
    return find_one


def _is_flat(document: object) -> bool:
    """A plain dict whose fields are plain values under names mongomock's own path would
    accept without a word (strings, no ``$`` first, no NUL)."""
    return type(document) is dict and all(
        type(key) is str and type(value) in _FLAT and not key.startswith("$") and "\0" not in key
        for key, value in document.items())


def _stored_datetime(value: datetime) -> datetime:
    """As mongomock's patch_datetime_awareness_in_document stores it: naive UTC, to the millisecond."""
    milliseconds = (value.microsecond // 1000) * 1000
    if value.tzinfo:
        return (value - (value.utcoffset() or timedelta())).replace(tzinfo=None, microsecond=milliseconds)
    return value.replace(microsecond=milliseconds)


def _insert_flat_documents(original: Callable[..., Any]) -> Callable[..., Any]:
    def _insert(self: Collection, data: Any, session: Any = None, ordered: bool = True) -> Any:
        if type(data) is list and not session:
            inserted = _insert_flat_batch(self, data)
            if inserted is not None:
                return inserted
        # Any other list goes through mongomock's loop, which calls this per document.
        if session or not _is_flat(data):
            return original(self, data, session, ordered)
        BSON.encode(data)  # what the driver would refuse (an integer out of range), refused here too
        if "_id" not in data:
            data["_id"] = ObjectId()  # filled in the caller's dict, as PyMongo does
        object_id = data["_id"]
        store = self._store
        if object_id in store:
            return original(self, data, session, ordered)  # which raises the duplicate key error
        stored = {key: _stored_datetime(value) if type(value) is datetime else value for key, value in data.items()}
        store[object_id] = stored
        try:
            self._ensure_uniques(stored)  # a unique index's duplicate key error
        except Exception:
            del store[object_id]  # the rollback mongomock makes
            raise
        return object_id

    _insert.patched_for_flat_documents = True  # type: ignore[attr-defined]
    _insert.__wrapped__ = original  # type: ignore[attr-defined]
    return _insert


def _insert_flat_batch(collection: Collection, documents: list) -> list | None:
    """``insert_many`` of flat documents (a batch of plays) in one pass: their ids (filled in
    the caller's dicts, as PyMongo does), or None, having changed nothing, for mongomock's
    loop to insert them one by one and raise what it raises: a document that is not flat or
    that BSON refuses, an _id given twice or already stored, a collection with a unique index
    (whose check may refuse a document in the middle)."""
    store = collection._store
    if not documents or any(index.get("unique") for index in store.indexes.values()) \
            or not all(_is_flat(document) for document in documents):
        return None
    given = [document["_id"] for document in documents if "_id" in document]
    if given:
        if len(set(given)) < len(given) or any(key in store._documents for key in given):
            return None
    try:
        for document in documents:
            BSON.encode(document)
    except Exception:  # refused by the driver's encoder: mongomock's loop raises it in order
        return None
    ids = []
    stored_documents = []
    for document in documents:
        if "_id" not in document:
            document["_id"] = ObjectId()
        ids.append(document["_id"])
        stored_documents.append({key: _stored_datetime(value) if type(value) is datetime else value
                                 for key, value in document.items()})
    store._remove_expired_documents()
    with store._rwlock.writer():
        store._documents.update(zip(ids, stored_documents, strict=True))
    return ids


# What an equality of a simple filter (``{"user_id": "u1", "video_id": oid}``) may compare with:
# values that only a stored value of the same type can equal (bool: never 1 or 1.0).
_EQUALS = (str, ObjectId, bool)
# Sort keys compared here as mongomock's bson_compare compares two values of one such type.
_SORTABLE = frozenset({str, ObjectId, datetime, int})
_NO_VALUE = object()


def _plain_field(key: object) -> bool:
    """A top-level field name, as a filter or ``$set`` may name it without further meaning."""
    return type(key) is str and bool(key) and key != "_id" and not key.startswith("$") and "." not in key \
        and "\0" not in key


def _equalities(filter: object) -> dict | None:
    """A filter of plain equalities only (string or ObjectId values, plain field names, an
    ``_id`` of a plain value), or None."""
    if type(filter) is not dict or not filter:
        return None
    for key, value in filter.items():
        if key == "_id":
            if _plain_id(filter) is None:
                return None
        elif not (_plain_field(key) and type(value) in _EQUALS):
            return None
    return filter


def _first_match(store: CollectionStore, filter: dict) -> dict | None:
    """The first stored document (in the store's order, as mongomock's scan finds it) that
    ``filter``, a filter of plain equalities, matches. A stored value of the same plain type
    is compared here; any other (an array that may contain the value...) by mongomock's own
    ``filter_applies``."""
    key = filter.get("_id", _NO_VALUE)
    if key is not _NO_VALUE:
        document = store._documents.get(key)
        candidates: Any = () if document is None else (document,)
    else:
        candidates = store._documents.values()
    for document in candidates:
        if _matches(filter, document):
            return document
    return None


def _matches(filter: dict, document: dict) -> bool:
    """Whether ``filter``, of plain equalities, matches ``document``."""
    for field, value in filter.items():
        stored = document.get(field, _NO_VALUE)
        if type(stored) is type(value):
            if stored != value:
                return False
        elif stored is _NO_VALUE or type(stored) in _SHARED or not filter_applies({field: value}, document):
            return False
    return True


def _plain_set(update: object) -> dict | None:
    """The fields of an update that is one ``$set`` of plain values to plain top-level fields
    (what a progress report writes), or None."""
    if type(update) is not dict or len(update) != 1:
        return None
    fields = update.get("$set")
    if type(fields) is not dict or not fields:
        return None
    if all(_plain_field(key) and type(value) in _FLAT for key, value in fields.items()):
        return fields
    return None


def _find_one_and_set(original: Callable[..., Any]) -> Callable[..., Any]:
    def find_one_and_update(self: Collection, filter: Any, update: Any, projection: Any = None, sort: Any = None,
                            upsert: bool = False, return_document: Any = ReturnDocument.BEFORE, **kwargs: Any) -> Any:
        # Only the plain form: equalities, one $set of plain values, no projection, sort,
        # session or other option, on a tz-aware client. Anything else: mongomock's own path.
        fields = _plain_set(update)
        if fields is None or kwargs or projection is not None or sort is not None \
                or _equalities(filter) is None or not self.codec_options.tz_aware:
            return original(self, filter, update, projection, sort, upsert, return_document, **kwargs)
        BSON.encode(fields)  # what the driver would refuse (an integer out of range), refused here too
        store = self._store
        store._remove_expired_documents()
        document = _first_match(store, filter)
        after = return_document is ReturnDocument.AFTER
        if document is None:
            if not upsert:
                return None
            # As MongoDB builds an upserted document: _id first, the filter's equalities, then the $set.
            inserted = {"_id": filter["_id"] if "_id" in filter else ObjectId(), **filter, **fields}
            object_id = self._insert(inserted)  # the flat insert: unique indexes checked, datetimes stored
            return _as_returned(store._documents[object_id]) if after else None
        before = None if after else _as_returned(document)
        changes = {key: _stored_datetime(value) if type(value) is datetime else value for key, value in fields.items()}
        unique_fields = {name for index in store.indexes.values() if index.get("unique") for name, _ in index["key"]}
        if unique_fields.isdisjoint(changes):
            document.update(changes)  # mongomock, too, changes the stored document in place
        else:
            snapshot = dict(document)
            document.update(changes)
            try:
                self._ensure_uniques(document)
            except Exception:
                document.clear()
                document.update(snapshot)  # the rollback mongomock makes
                raise
        return _as_returned(document) if after else before

    find_one_and_update.patched_for_plain_sets = True  # type: ignore[attr-defined]
    find_one_and_update.__wrapped__ = original  # type: ignore[attr-defined]
    return find_one_and_update


def _plain_sort(sort: Any) -> list | None:
    """A sort of plain top-level fields, as ``[(field, direction)]``, or None (``$natural``,
    a dotted path, a dict...). Remembered, as projections are."""
    if not isinstance(sort, (list, tuple)) or not sort:
        return None
    try:
        key = tuple(sort)
        return _SORTS[key]
    except TypeError:  # an unhashable item (a list): worked out each time
        return _sort_keys(sort)
    except KeyError:
        pass
    keys = _sort_keys(sort)
    if len(_SORTS) < _INCLUDED_KEPT:
        _SORTS[key] = keys
    return keys


def _sort_keys(sort: list | tuple) -> list | None:
    keys = []
    for item in sort:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            return None
        field, direction = item
        if type(field) is not str or not field or field.startswith("$") or "." in field \
                or direction not in (1, -1) or type(direction) is not int:
            return None
        keys.append((field, direction))
    return keys


def _sorted_by_plain_values(documents: list, keys: list) -> list | None:
    """``documents`` sorted as mongomock sorts them (one stable sort per key, the last key
    first), provided that each key's field holds values of one type, the same in every
    document, that Python orders as BSON does (strings, ObjectIds, datetimes, integers);
    else None (missing fields, arrays, mixed types: mongomock's own comparison)."""
    for field, _ in keys:
        kinds = {type(document.get(field, _NO_VALUE)) for document in documents}
        if len(kinds) > 1 or not kinds <= _SORTABLE:
            return None
    for field, direction in reversed(keys):
        documents.sort(key=operator.itemgetter(field), reverse=direction < 0)
    return documents


def _dataset_sorted_and_kept(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_dataset(self: Collection, spec: Any, sort: Any, fields: Any, as_class: Any) -> Any:
        # What a cursor reads: the matching documents, sorted, each projected. On a tz-aware
        # client (the one embedded_client() makes) the cursor copies every document it hands
        # out (making its datetimes aware), so the fast path hands it the stored documents, or
        # shallow dicts of their kept fields, instead of copies of them it would copy again.
        included = None if fields is None else _included_fields(fields)
        keys = _plain_sort(sort) if sort else []
        if as_class is not dict or (fields is not None and included is None) or keys is None \
                or not self.codec_options.tz_aware:
            return original(self, spec, sort, fields, as_class)
        documents = list(self._iter_documents(spec))
        if keys and len(documents) > 1 and _sorted_by_plain_values(documents, keys) is None:
            return original(self, spec, sort, fields, as_class)
        if included is None:
            return iter(documents)
        return iter([{key: value for key, value in document.items() if key in included} for document in documents])

    get_dataset.patched_for_plain_sorts = True  # type: ignore[attr-defined]
    get_dataset.__wrapped__ = original  # type: ignore[attr-defined]
    return get_dataset


def _results_copied_once(original: Callable[..., Any]) -> Callable[..., Any]:
    def compute_results(self: Cursor, with_limit_and_skip: bool = False) -> list:
        # mongomock's cursor calls this for every document it hands out, and sliced its
        # results anew each time (a page of n documents: n slices of the list). On a tz-aware
        # client the results are made as its make_datetime_timezone_aware_in_document makes
        # them (_as_returned: the same copy, fewer calls), and the page is sliced once.
        if not self.collection.codec_options.tz_aware:
            return original(self, with_limit_and_skip)
        if not self._results or self._factory_last_generated_results != self._factory:
            self._results = [_as_returned(document) for document in self._factory()]
            self._factory_last_generated_results = self._factory
        if not with_limit_and_skip:
            return self._results
        window = (self._skip, self._limit)
        page = getattr(self, "_page", None)
        if page is None or page[0] != window or page[1] is not self._results:
            results = self._results[self._skip:]
            if self._limit:
                results = results[:abs(self._limit)]
            page = (window, self._results, results)
            setattr(self, "_page", page)  # noqa: B010 - an attribute mongomock's Cursor does not declare
        return page[2]

    compute_results.patched_to_copy_once = True  # type: ignore[attr-defined]
    compute_results.__wrapped__ = original  # type: ignore[attr-defined]
    return compute_results


def _sweep_now_and_then(original):
    def remove_expired_documents(self):
        now = time.monotonic()
        if now - getattr(self, "_last_ttl_sweep", float("-inf")) >= TTL_SWEEP_SECONDS:
            self._last_ttl_sweep = now
            _sweep_a_slice(self)

    remove_expired_documents.patched_for_sweeps = True  # type: ignore[attr-defined]
    remove_expired_documents.__wrapped__ = original  # type: ignore[attr-defined]
    return remove_expired_documents


def _sweep_a_slice(store: CollectionStore) -> None:
    """Checks the next ``TTL_SWEEP_DOCUMENTS`` documents of a pass over the collection (ids
    taken once per pass) against every TTL index, as mongomock's own sweep checks all of
    them: a pass over 100,000 plays is 100 sweeps of a few milliseconds, not one of most of
    a second that holds the event loop."""
    pending: list | None = getattr(store, "_ttl_pending", None)
    if not pending:
        pending = list(store._documents)
        setattr(store, "_ttl_pending", pending)  # noqa: B010 - an attribute mongomock does not declare
    chunk = pending[-TTL_SWEEP_DOCUMENTS:]
    del pending[-TTL_SWEEP_DOCUMENTS:]
    now = helpers.utcnow()  # what mongomock's own sweep compares with
    for index in list(store._ttl_indexes.values()):
        try:
            expiry = int(index["expireAfterSeconds"])
        except ValueError:
            continue
        if len(index["key"]) > 1:
            continue
        field = next(iter(index["key"]))[0]
        for key in chunk:
            document = store._documents.get(key)
            if document is not None and store._value_meets_expiry(document.get(field), expiry, now):
                del store[key]


def _async_with_options(self, *args, **kwargs):
    # The same store underneath: mongomock's with_options shares the collection's documents.
    changed = self._AsyncMongoMockCollection__collection.with_options(*args, **kwargs)
    return AsyncMongoMockCollection(self.database, changed)


_async_with_options.patched_to_stay_async = True  # type: ignore[attr-defined]


def _bulk_update_without_sort(original):
    def add_update(self, *args, sort=None, **kwargs):
        if sort is not None:
            raise NotImplementedError("the embedded store cannot sort an update")
        return original(self, *args, **kwargs)

    add_update.patched_for_sort = True  # type: ignore[attr-defined]
    add_update.__wrapped__ = original  # type: ignore[attr-defined]
    return add_update


def _passed_through(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def normalize_strings(value: Any) -> Any:
        return value

    normalize_strings.patched_to_pass_through = True  # type: ignore[attr-defined]
    normalize_strings.__wrapped__ = original  # type: ignore[attr-defined]
    return normalize_strings


def _patch_mongomock() -> None:
    # mongomock-motor copies every filter and sort it hands mongomock to turn beanie's
    # string-like ExpressionFields into plain strings; without beanie installed there are
    # none, and the copy is the same value.
    if mongomock_motor_patches.ExpressionField is None and not getattr(
            mongomock_motor_patches._normalize_strings, "patched_to_pass_through", False):
        mongomock_motor_patches._normalize_strings = _passed_through(mongomock_motor_patches._normalize_strings)
    # (class, attribute, what wraps or replaces it, the mark the replacement carries)
    patches: tuple[tuple[type, str, Callable[[Any], Any], str], ...] = (
        (AsyncMongoMockCollection, "with_options", lambda _: _async_with_options, "patched_to_stay_async"),
        (Collection, "_iter_documents", _iter_documents_by_id, "patched_for_id_lookups"),
        (Collection, "_insert", _insert_flat_documents, "patched_for_flat_documents"),
        (Collection, "find_one_and_update", _find_one_and_set, "patched_for_plain_sets"),
        (Collection, "_get_dataset", _dataset_sorted_and_kept, "patched_for_plain_sorts"),
        (Cursor, "_compute_results", _results_copied_once, "patched_to_copy_once"),
        (Collection, "find_one", _find_one_by_id, "patched_for_id_lookups"),
        (CollectionStore, "_remove_expired_documents", _sweep_now_and_then, "patched_for_sweeps"),
        (BulkOperationBuilder, "add_update", _bulk_update_without_sort, "patched_for_sort"),
    )
    for owner, name, patch, marker in patches:
        current = getattr(owner, name, None)
        if not getattr(current, marker, False):  # once, however many clients are made
            setattr(owner, name, patch(current))


def pinned_mongomock_version(requirements: Path = REQUIREMENTS) -> str:
    """The version of mongomock that requirements.txt pins (``mongomock==X``)."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"mongomock\s*==\s*(\S+)", line.split("#", 1)[0].strip(), re.IGNORECASE)
        if match:
            return match.group(1)
    raise ConfigError(f"{requirements} pins no mongomock version (a line mongomock==X)")


def check_mongomock_version(installed: str | None = None, pinned: str | None = None) -> None:
    """Refuses, with both versions named, a mongomock the patches were not written for."""
    installed = installed or importlib.metadata.version("mongomock")
    pinned = pinned or pinned_mongomock_version()
    if installed != pinned:
        raise ConfigError(
            f"the embedded store needs mongomock=={pinned} (pinned in requirements.txt), but {installed} is "
            f"installed: run `pip install -r requirements.txt`, or re-check server/embedded_store.py's "
            f"patches against {installed} and move the pin"
        )


@functools.cache
def _checked_once() -> None:
    check_mongomock_version()


def embedded_client() -> AsyncMongoMockClient:
    _checked_once()
    _patch_mongomock()
    return AsyncMongoMockClient(tz_aware=True)
