"""The embedded store's shortcuts (server/embedded_store.py) change cost, never results:
each is compared here with mongomock's own path on the same data."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import re
import time

import mongomock
import pytest
from bson import ObjectId
from mongomock import helpers
from mongomock.collection import Collection
from mongomock.store import CollectionStore
from mongomock_motor import patches as mongomock_motor_patches
from pymongo import ReadPreference, WriteConcern

from server.config import ConfigError
from server.embedded_store import (
    REQUIREMENTS,
    TTL_SWEEP_SECONDS,
    check_mongomock_version,
    embedded_client,
    pinned_mongomock_version,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.UTC)
VIDEO_ID = ObjectId()
DOCUMENTS = [
    {"_id": "session-1", "user_id": "u1", "expires_at": NOW + dt.timedelta(hours=1), "tags": ["a", {"b": NOW}]},
    {"_id": VIDEO_ID, "title": "T", "is_active": True, "created_at": NOW, "nested": {"when": NOW, "list": [1, 2]}},
    {"_id": 7, "n": 7.5, "flag": False, "none": None},
]
QUERIES = [
    ({"_id": "session-1"}, None),
    ({"_id": "session-1", "user_id": "u1", "expires_at": {"$gt": NOW}}, {"_id": 1}),
    ({"_id": "session-1", "user_id": "someone-else"}, None),
    ({"_id": "session-1", "expires_at": {"$gt": NOW + dt.timedelta(days=1)}}, None),
    ({"_id": VIDEO_ID}, None),
    ({"_id": VIDEO_ID}, {"title": 1, "is_active": 1}),
    ({"_id": VIDEO_ID}, {"nested": 0}),
    ({"_id": VIDEO_ID, "is_active": True}, {"_id": 0, "title": 1}),
    ({"_id": "session-1"}, {"user_id": 1, "expires_at": 1, "missing": 1}),  # top-level fields kept
    ({"_id": "session-1"}, {"tags": True, "_id": 1}),
    ({"_id": "session-1"}, {"_id": 0}),
    ({"_id": VIDEO_ID}, {"nested.when": 1}),
    ({"_id": VIDEO_ID}, {"title": 2}),
    ({"_id": 7}, None),
    ({"_id": 7.0}, None),
    ({"_id": "missing"}, None),
    ({"_id": ObjectId()}, {"_id": 1}),
    ({"_id": True}, None),  # not a plain id: mongomock's own path
    ({"_id": {"$in": ["session-1", 7]}}, None),
    # $in of plain ids: read by id (in the order asked; these ask in the store's order).
    ({"_id": {"$in": [VIDEO_ID, 7, "missing"]}}, None),
    ({"_id": {"$in": ["session-1", 7]}, "n": 7.5}, None),
    ({"_id": {"$in": [7, 7]}}, {"n": 1}),
    ({"_id": {"$in": []}}, None),
    ({"_id": {"$in": ["session-1", {"x": 1}]}}, None),  # not all plain: mongomock's own path
]


@pytest.fixture
def collection():
    embedded_client()  # applies the patches, to mongomock's classes
    things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["things"]
    things.insert_many([dict(d) for d in DOCUMENTS])
    return things


def test_the_patches_are_in_place():
    embedded_client()
    assert getattr(Collection.find_one, "patched_for_id_lookups", False)
    # Without beanie (not a dependency) mongomock-motor's copy of each filter is the same value.
    assert getattr(mongomock_motor_patches._normalize_strings, "patched_to_pass_through", False)
    for value in [*(query for query, _ in QUERIES), [("created_at", 1), ("_id", -1)], {"a": [{"b": ("c", 1)}]}]:
        assert mongomock_motor_patches._normalize_strings.__wrapped__(value) == value
    assert getattr(Collection._iter_documents, "patched_for_id_lookups", False)


@pytest.mark.parametrize(("query", "projection"), QUERIES)
def test_find_one_by_id_answers_as_mongomock_does(collection, query, projection):
    original = Collection.find_one.__wrapped__
    expected = original(collection, dict(query), projection=None if projection is None else dict(projection))
    assert collection.find_one(query, projection=projection) == expected
    if expected is not None:  # the same values, datetimes time-zone aware, as the client asked for
        assert all(v.tzinfo is not None for v in _datetimes(expected))


@pytest.mark.parametrize(("query", "projection"), QUERIES)
def test_the_id_lookup_under_find_answers_as_mongomock_does(collection, query, projection):
    original = Collection._iter_documents.__wrapped__
    spec = helpers.patch_datetime_awareness_in_document(query)  # as mongomock's Cursor hands it on
    assert list(collection._iter_documents(spec)) == list(original(collection, spec))


def test_a_returned_document_is_a_copy(collection):
    found = collection.find_one({"_id": "session-1"})
    found["user_id"] = "changed"
    found["tags"][1]["b"] = None
    again = collection.find_one({"_id": "session-1"})
    assert again["user_id"] == "u1"
    assert again["tags"][1]["b"] == NOW.replace(microsecond=123000)


def test_kept_fields_come_in_the_documents_order_id_first_and_are_copies(collection):
    found = collection.find_one({"_id": "session-1"}, projection={"tags": 1, "user_id": 1})
    assert list(found) == ["_id", "user_id", "tags"]  # as MongoDB answers an inclusion projection
    found["tags"][1]["b"] = None
    assert collection.find_one({"_id": "session-1"}, projection={"tags": 1})["tags"][1]["b"] is not None


def test_the_caller_projection_is_left_as_it_was(collection):
    projection = {"_id": 0, "title": 1}
    collection.find_one({"_id": VIDEO_ID}, projection=projection)
    assert projection == {"_id": 0, "title": 1}


def _datetimes(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _datetimes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _datetimes(item)
    elif isinstance(value, dt.datetime):
        yield value


def test_the_ttl_sweep_removes_what_mongomock_removes(monkeypatch):
    embedded_client()
    expired = {"_id": "old", "expires_at": dt.datetime(2000, 1, 1)}
    live = {"_id": "new", "expires_at": dt.datetime(2999, 1, 1)}
    stores = []
    for name in ("patched", "original"):
        things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"][name]
        things.create_index("expires_at", expireAfterSeconds=0)
        things.insert_many([dict(expired), dict(live)])
        stores.append(things._store)
    patched, original = stores
    # Due a sweep: the patched path sweeps exactly as mongomock's own does.
    monkeypatch.setattr(patched, "_last_ttl_sweep", time.monotonic() - TTL_SWEEP_SECONDS, raising=False)
    patched._remove_expired_documents()
    CollectionStore._remove_expired_documents.__wrapped__(original)
    assert set(patched._documents) == set(original._documents) == {"new"}


# Documents to insert: flat ones (the fast path) and every kind that must take mongomock's own.
INSERTS = [
    {"video_id": VIDEO_ID, "user_id": "u1", "at": NOW},  # a play: no _id, filled in
    {"_id": "s1", "at": NOW.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))), "n": 1, "f": 1.5, "b": True,
     "none": None, "raw": b"x"},
    {"_id": 9, "naive": dt.datetime(2026, 1, 2, 3, 4, 5, 678999)},
    {"_id": "nested", "tags": ["a"], "sub": {"at": NOW}},  # not flat
    {"_id": "dollar", "$set": 1},  # refused by mongomock
    {"_id": "nul", "a\0b": 1},  # refused by mongomock
    {"_id": "huge", "n": 2 ** 70},  # not encodable: refused by BSON
    {1: "not a string key"},  # refused by mongomock
]


def _insert_both_ways(document: dict) -> list:
    """Inserts ``document`` through the patched path and through mongomock's own, each
    into a fresh collection; returns, for each, what it answered (or raised), the caller's
    dict afterwards, and what was stored."""
    embedded_client()
    found = []
    for insert in (Collection._insert, Collection._insert.__wrapped__):
        things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["inserts"]
        given = dict(document)
        try:
            answer = insert(things, given)
        except Exception as error:  # compared, not judged
            answer = (type(error), str(error))
        stored = {key: {k: v for k, v in doc.items() if k != "_id"} if "_id" not in document else doc
                  for key, doc in things._store._documents.items()}
        found.append((answer if "_id" in document else type(answer), given if "_id" in document else
                      {k: v for k, v in given.items() if k != "_id"}, list(stored.values())))
    return found


def test_the_flat_insert_is_in_place():
    embedded_client()
    assert getattr(Collection._insert, "patched_for_flat_documents", False)


@pytest.mark.parametrize("document", INSERTS)
def test_an_insert_stores_and_answers_as_mongomock_does(document):
    patched, original = _insert_both_ways(document)
    assert patched == original


def test_a_flat_insert_fills_in_the_id_and_refuses_a_duplicate_as_mongomock_does():
    embedded_client()
    things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["plays"]
    play = {"video_id": VIDEO_ID, "user_id": "u1", "at": NOW}
    inserted = things.insert_one(play).inserted_id
    assert play["_id"] == inserted and isinstance(inserted, ObjectId)
    with pytest.raises(mongomock.DuplicateKeyError):
        things.insert_one({"_id": inserted, "user_id": "u2"})
    result = things.insert_many([{"n": i} for i in range(3)], ordered=False)
    assert len(result.inserted_ids) == 3 and things.count_documents({"n": {"$gte": 0}}) == 3
    things.create_index("email", unique=True, sparse=True)
    things.insert_one({"_id": "a", "email": "x@example.com"})
    with pytest.raises(mongomock.DuplicateKeyError):
        things.insert_one({"_id": "b", "email": "x@example.com"})
    assert things.find_one({"_id": "b"}) is None  # rolled back
    assert things.find_one({"_id": inserted}) == {**play, "at": NOW.replace(microsecond=123000)}


def test_the_pinned_mongomock_is_the_installed_one():
    pinned = pinned_mongomock_version()
    assert re.search(rf"^mongomock=={re.escape(pinned)}$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert importlib.metadata.version("mongomock") == pinned
    check_mongomock_version()  # passes


def test_another_mongomock_version_is_refused_naming_the_pinned_one(monkeypatch):
    pinned = pinned_mongomock_version()
    with pytest.raises(ConfigError, match=rf"needs mongomock=={re.escape(pinned)} .* but 9\.9\.9 is installed"):
        check_mongomock_version(installed="9.9.9")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    monkeypatch.setattr("server.embedded_store._checked_once", functools.cache(check_mongomock_version))
    with pytest.raises(ConfigError, match=r"9\.9\.9"):
        embedded_client()


def test_requirements_without_a_mongomock_pin_are_refused(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tornado==6.6.1\n# mongomock==1.0 in a comment is no pin\nmongomock-motor==0.0.36\n")
    with pytest.raises(ConfigError, match="pins no mongomock version"):
        pinned_mongomock_version(requirements)
@pytest.mark.gen_test
async def test_durable_collections_stay_async_and_share_the_store():
    """services/common/durability.py's with_options: Motor returns an async collection, and so
    must the embedded store, over the same documents."""
    plain = embedded_client()["embedded_store_test"]["things"]
    durable = plain.with_options(write_concern=WriteConcern("majority", wtimeout=100),
                                 read_preference=ReadPreference.PRIMARY)
    await durable.insert_one({"_id": "a", "n": 1})
    assert await plain.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
    await plain.update_one({"_id": "a"}, {"$inc": {"n": 1}})
    assert [doc async for doc in durable.find({})] == [{"_id": "a", "n": 2}]
    assert durable.write_concern.document == {"w": "majority", "wtimeout": 100}


@pytest.mark.gen_test
async def test_bulk_write_takes_the_pinned_pymongos_update_one():
    """PyMongo's UpdateOne passes a ``sort`` that mongomock's bulk builder does not take: an
    absent one is dropped (services/catalog/rollups.py writes this way), a given one refused."""
    from pymongo import UpdateOne
    from pymongo.errors import BulkWriteError

    collection = embedded_client()["bulk"]["counts"]
    once = UpdateOne({"_id": "a", "applied": {"$ne": "b1"}},
                     {"$inc": {"n": 2}, "$push": {"applied": {"$each": ["b1"], "$slice": -3}}}, upsert=True)
    await collection.bulk_write([once, UpdateOne({"_id": "b"}, {"$inc": {"n": 1}}, upsert=True)], ordered=False)
    with pytest.raises(BulkWriteError) as raised:  # as MongoDB: the upsert meets the existing _id
        await collection.bulk_write([UpdateOne({"_id": "b"}, {"$inc": {"n": 1}}), once], ordered=False)
    assert [(e["index"], e["code"]) for e in raised.value.details["writeErrors"]] == [(1, 11000)]
    assert await collection.find().sort("_id", 1).to_list(length=None) == [
        {"_id": "a", "n": 2, "applied": ["b1"]}, {"_id": "b", "n": 2}]
    with pytest.raises(NotImplementedError):
        await collection.bulk_write([UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}, sort={"n": 1})])


def test_a_ttl_sweep_checks_one_slice_and_a_pass_removes_what_mongomock_removes(monkeypatch):
    """Each sweep checks at most TTL_SWEEP_DOCUMENTS documents, so a large collection never
    holds the loop for a whole pass; after enough sweeps the same documents are gone."""
    from server.embedded_store import TTL_SWEEP_DOCUMENTS

    embedded_client()
    count = 2 * TTL_SWEEP_DOCUMENTS + 10
    documents = [{"_id": i, "at": dt.datetime(2000, 1, 1) if i % 3 else dt.datetime(2999, 1, 1)}
                 for i in range(count)]
    stores = []
    for name in ("sliced", "original"):
        things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"][name]
        things.create_index("at", expireAfterSeconds=0)
        things.insert_many([dict(d) for d in documents])
        stores.append(things._store)
    sliced, original = stores
    CollectionStore._remove_expired_documents.__wrapped__(original)
    for sweep in range(3):
        monkeypatch.setattr(sliced, "_last_ttl_sweep", time.monotonic() - TTL_SWEEP_SECONDS, raising=False)
        before = len(sliced._documents)
        sliced._remove_expired_documents()
        assert before - len(sliced._documents) <= TTL_SWEEP_DOCUMENTS
        if sweep == 0:
            assert len(sliced._documents) > len(original._documents)  # one slice only
    assert set(sliced._documents) == set(original._documents)


# find_one_and_update with a filter of equalities and one $set (a progress report): the
# patched path against mongomock's own, on the same data, answer and stored documents alike.
HISTORY = [
    {"_id": ObjectId(), "user_id": "u1", "video_id": VIDEO_ID, "position_seconds": 1.0, "updated_at": NOW},
    {"_id": ObjectId(), "user_id": ["u2", "u3"], "video_id": VIDEO_ID, "position_seconds": 2.0},  # an array
    {"_id": "s", "user_id": "u4", "video_id": str(VIDEO_ID), "n": 1},  # a string, not the ObjectId
]
LATER = NOW + dt.timedelta(seconds=30)
FIND_AND_SETS = [
    ({"user_id": "u1", "video_id": VIDEO_ID}, {"$set": {"position_seconds": 5.5, "updated_at": LATER}}, {}),
    ({"user_id": "u1", "video_id": VIDEO_ID}, {"$set": {"position_seconds": 5.5, "done": True}},
     {"return_document": True}),
    ({"user_id": "u3", "video_id": VIDEO_ID}, {"$set": {"position_seconds": 3.0}}, {}),  # matches in the array
    ({"user_id": "u4", "video_id": VIDEO_ID}, {"$set": {"position_seconds": 3.0}}, {}),  # no match: the type differs
    ({"user_id": "u9", "video_id": VIDEO_ID}, {"$set": {"position_seconds": 3.0, "updated_at": LATER}},
     {"upsert": True}),
    ({"user_id": "u9", "video_id": VIDEO_ID}, {"$set": {"position_seconds": 3.0}},
     {"upsert": True, "return_document": True}),
    ({"_id": "s", "user_id": "u4"}, {"$set": {"n": 2}}, {"return_document": True}),
    ({"_id": "new"}, {"$set": {"n": 2}}, {"upsert": True}),
    ({"user_id": "u1"}, {"$set": {"user_id": "u4", "video_id": str(VIDEO_ID)}}, {}),  # a duplicate key
    ({"user_id": "u9", "video_id": str(VIDEO_ID)}, {"$set": {"n": 3}}, {"upsert": True}),  # still unique
    ({"user_id": "u4", "video_id": str(VIDEO_ID)}, {"$set": {"user_id": "u5"}}, {}),  # still unique
    # Not the plain form: mongomock's own path.
    ({"user_id": "u1"}, {"$set": {"position_seconds": 5.5}, "$inc": {"n": 1}}, {}),
    ({"user_id": {"$in": ["u1"]}}, {"$set": {"tags": ["a"]}}, {}),
    ({"user_id": "u1"}, {"$set": {"a.b": 1}}, {"projection": {"user_id": 1}}),
]


def _find_and_set_both_ways(query: dict, update: dict, options: dict) -> list:
    embedded_client()
    found = []
    for find_and_set in (Collection.find_one_and_update, Collection.find_one_and_update.__wrapped__):
        history = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["history"]
        history.create_index([("user_id", 1), ("video_id", 1)], unique=True)
        history.insert_many([dict(d) for d in HISTORY])
        try:
            answer = find_and_set(history, dict(query), {op: dict(v) for op, v in update.items()}, **options)
        except Exception as error:  # compared, not judged
            answer = (type(error), str(error))
        stored = [{k: v for k, v in doc.items() if k != "_id" or not isinstance(v, ObjectId)}
                  for doc in history.find({}, sort=[("user_id", 1), ("n", 1)])]
        if isinstance(answer, dict) and isinstance(answer.get("_id"), ObjectId) and "u9" in str(answer):
            answer = {k: v for k, v in answer.items() if k != "_id"}  # an upserted one: a new ObjectId each way
        found.append((answer, stored))
    return found


def test_the_plain_find_and_set_is_in_place():
    embedded_client()
    assert getattr(Collection.find_one_and_update, "patched_for_plain_sets", False)


@pytest.mark.parametrize(("query", "update", "options"), FIND_AND_SETS)
def test_a_find_and_set_answers_and_stores_as_mongomock_does(query, update, options):
    patched, original = _find_and_set_both_ways(query, update, options)
    assert patched == original


def test_an_upserted_entry_has_its_id_first_and_answers_are_copies():
    embedded_client()
    history = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["ordered"]
    history.find_one_and_update({"user_id": "u1", "video_id": VIDEO_ID}, {"$set": {"at": NOW}}, upsert=True)
    stored = history.find_one({"user_id": "u1"})
    assert list(stored) == ["_id", "user_id", "video_id", "at"]  # as MongoDB orders an upserted document
    before = history.find_one_and_update({"user_id": "u1"}, {"$set": {"at": LATER}})
    assert before["at"] == NOW.replace(microsecond=123000) and before["at"].tzinfo is not None
    before["at"] = None
    assert history.find_one({"user_id": "u1"})["at"] == LATER.replace(microsecond=123000)


# find().sort() with plain equalities, plain sorts and inclusion projections (a page of
# the catalog): the patched cursor path against mongomock's own, in the same order.
EARLY, LATE = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)
IDS = sorted(ObjectId() for _ in range(5))
VIDEOS = [
    {"_id": IDS[3], "title": "d", "is_active": True, "created_at": NOW, "words": ["x"], "n": 3},
    {"_id": IDS[1], "title": "b", "is_active": True, "created_at": EARLY, "words": ["y"], "n": 1},
    {"_id": IDS[4], "title": "e", "is_active": False, "created_at": NOW, "n": 2},
    {"_id": IDS[0], "title": "a", "is_active": 1, "created_at": NOW, "n": 2.5},  # 1 is not true
    {"_id": IDS[2], "title": "c", "is_active": True, "created_at": LATE, "nested": {"at": NOW}, "n": 2},
]
ORDER = [("created_at", 1), ("_id", 1)]
FINDS = [
    ({"is_active": True}, None, ORDER),
    ({"is_active": True}, {"title": 1, "created_at": 1}, ORDER),
    ({}, {"title": 1, "_id": 0}, [("created_at", -1), ("_id", 1)]),
    ({}, None, [("created_at", -1), ("_id", -1)]),
    ({"title": "c"}, {"nested": 1}, None),
    ({"words": "x"}, None, ORDER),  # an array holding the value
    ({}, None, [("n", 1)]),  # an int and a float: mongomock's own comparison
    ({}, None, [("words", 1), ("_id", 1)]),  # missing and arrays: mongomock's own comparison
    ({}, None, [("title", 1)]),
    ({"is_active": False}, {"nested.at": 1}, ORDER),  # a dotted projection: mongomock's own path
    ({"created_at": {"$gt": EARLY}}, {"title": 1}, [("$natural", -1)]),  # neither plain
]


@pytest.mark.parametrize(("query", "projection", "sort"), FINDS)
def test_a_sorted_find_answers_as_mongomock_does(query, projection, sort):
    embedded_client()
    answers = []
    for get_dataset in (Collection._get_dataset, Collection._get_dataset.__wrapped__):
        videos = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["videos"]
        videos.insert_many([dict(d) for d in VIDEOS])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Collection, "_get_dataset", get_dataset)
            cursor = videos.find(query, projection=projection)
            found = list(cursor.sort(sort) if sort else cursor)
        answers.append([list(document.items()) for document in found])  # the order of fields too
    patched, original = answers
    assert [dict(d) for d in patched] == [dict(d) for d in original]
    assert all(v.tzinfo is not None for d in patched for v in _datetimes(dict(d)))


def test_documents_read_by_a_cursor_are_copies():
    embedded_client()
    videos = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["copies"]
    videos.insert_many([dict(d) for d in VIDEOS])
    for found in videos.find({"is_active": True}).sort(ORDER):
        found["title"] = None
        for value in found.values():
            if isinstance(value, list):
                value.append("changed")
            if isinstance(value, dict):
                value["at"] = None
    assert [d["title"] for d in videos.find({"is_active": True}).sort(ORDER)] == ["b", "d", "c"]
    assert videos.find_one({"title": "d"})["words"] == ["x"]
    assert videos.find_one({"title": "c"})["nested"]["at"] is not None


# insert_many of flat documents in one pass (a batch of plays) against mongomock's loop.
BATCHES = [
    [{"video_id": VIDEO_ID, "user_id": f"u{i}", "at": NOW, "batch": "b1"} for i in range(3)],
    [{"_id": 1, "n": 1}, {"_id": "two", "at": NOW.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))}],
    [{"_id": 1, "n": 1}, {"_id": 1, "n": 2}],  # an _id twice
    [{"_id": "stored", "n": 1}],  # already stored
    [{"n": 1}, {"tags": ["a"]}, {"n": 3}],  # one not flat
    [{"n": 1}, {"n": 2 ** 70}, {"n": 3}],  # one BSON refuses
]


@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("batch", BATCHES)
def test_a_flat_batch_is_inserted_as_mongomocks_loop_inserts_it(batch, ordered):
    embedded_client()
    found = []
    for insert in (Collection._insert, Collection._insert.__wrapped__):
        things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["batches"]
        things.insert_one({"_id": "stored", "n": 0})
        given = [dict(document) for document in batch]
        try:
            answer = insert(things, given, None, ordered)
        except Exception as error:  # compared, not judged
            answer = (type(error), getattr(error, "details", str(error)))
        generated = [document["_id"] for document in given if isinstance(document.get("_id"), ObjectId)]
        stored = [{k: v for k, v in document.items() if v not in generated}
                  for document in things._store._documents.values()]
        found.append((answer if not generated else len(answer), stored,
                      [{k: v for k, v in document.items() if k != "_id" or v not in generated} for document in given]))
    patched, original = found
    assert patched == original


def test_a_batch_into_a_collection_with_a_unique_index_takes_mongomocks_loop():
    embedded_client()
    things = mongomock.MongoClient(tz_aware=True)["embedded_store_test"]["unique_batches"]
    things.create_index("email", unique=True)
    with pytest.raises(mongomock.BulkWriteError):
        things.insert_many([{"email": "a"}, {"email": "b"}, {"email": "a"}, {"email": "c"}], ordered=False)
    assert sorted(d["email"] for d in things.find()) == ["a", "b", "c"]
