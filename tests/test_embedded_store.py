"""The embedded store's shortcuts (server/embedded_store.py) change cost, never results:
each is compared here with mongomock's own path on the same data."""

from __future__ import annotations

import datetime as dt

import mongomock
import pytest
from bson import ObjectId
from mongomock import helpers
from mongomock.collection import Collection
from pymongo import ReadPreference, WriteConcern

from server.embedded_store import embedded_client

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
    ({"_id": 7}, None),
    ({"_id": 7.0}, None),
    ({"_id": "missing"}, None),
    ({"_id": ObjectId()}, {"_id": 1}),
    ({"_id": True}, None),  # not a plain id: mongomock's own path
    ({"_id": {"$in": ["session-1", 7]}}, None),
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


@pytest.mark.gen_test
async def test_durable_collections_stay_async_and_share_the_store():
    """services/durability.py's with_options: Motor returns an async collection, and so
    must the embedded store, over the same documents."""
    plain = embedded_client()["embedded_store_test"]["things"]
    durable = plain.with_options(write_concern=WriteConcern("majority", wtimeout=100),
                                 read_preference=ReadPreference.PRIMARY)
    await durable.insert_one({"_id": "a", "n": 1})
    assert await plain.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
    await plain.update_one({"_id": "a"}, {"$inc": {"n": 1}})
    assert [doc async for doc in durable.find({})] == [{"_id": "a", "n": 2}]
    assert durable.write_concern.document == {"w": "majority", "wtimeout": 100}
