"""The way off Motor: ``MONGODB_DRIVER=pymongo`` runs the same services on PyMongo's own
``AsyncMongoClient``.

1. By introspection of both installed packages: every database, collection and cursor
   method the services call (found in their source with ``ast``, so the list cannot go
   stale) exists in both drivers and accepts the arguments the services pass.
2. On the wire: a real round trip (insert, find, an upsert, a sorted and limited find)
   through each driver against MongoDB's wire-protocol mock server (mockupdb), through
   the services' own stores and the data layer's guard.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect

import pytest
from bson import ObjectId
from mockupdb import MockupDB
from motor.motor_asyncio import AsyncIOMotorCollection, AsyncIOMotorCursor, AsyncIOMotorDatabase
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from server.config import load_config
from server.database import client_class, close, connect
from services.accounts.sessions import AuthTokenCodec, Principal, SessionStore
from services.catalog.videos import VideoCatalog
from services.common.datastore import guarded
from tests.support import HOST, REPO_ROOT, TEST_SECRET, assert_json_error, free_port, running_server
from tests.support.wire import answer_housekeeping

SERVICES = REPO_ROOT / "services"
DRIVERS = {
    "motor": {"database": AsyncIOMotorDatabase, "collection": AsyncIOMotorCollection, "cursor": AsyncIOMotorCursor},
    "pymongo": {"database": AsyncDatabase, "collection": AsyncCollection, "cursor": AsyncCursor},
}


# ----- 1. what the services call, from their source ------------------------------------------


@dataclasses.dataclass(frozen=True)
class DriverCall:
    kind: str  # database | collection | cursor
    method: str
    positional: int
    keywords: tuple[str, ...]
    where: str


class _CallFinder(ast.NodeVisitor):
    """In each class: attributes set from ``db`` (the database) or ``db[...]`` (a
    collection) in ``__init__``; then every method called on them, on the cursors their
    un-awaited calls return (``find()``, ``.sort()``...), and ``async for`` over a cursor."""

    def __init__(self, filename: str):
        self.filename = filename
        self.calls: list[DriverCall] = []
        self.handles: dict[str, str] = {}
        self.cursors: set[str] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.handles = {}
        for init in (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"):
            for stmt in ast.walk(init):
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and _is_self_attr(stmt.targets[0]):
                    value = stmt.value
                    if isinstance(value, ast.Name) and value.id == "db":
                        self.handles[stmt.targets[0].attr] = "database"
                    elif isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) \
                            and value.value.id == "db":
                        self.handles[stmt.targets[0].attr] = "collection"
        if self.handles:
            for function in node.body:
                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.cursors = set()
                    self._scan(function)

    def _kind(self, expr) -> str | None:
        if _is_self_attr(expr):
            return self.handles.get(expr.attr)
        if isinstance(expr, ast.Name) and expr.id in self.cursors:
            return "cursor"
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and self._kind(expr.func.value):
            return "cursor" if id(expr) not in self._awaited else None
        return None

    def _scan(self, function) -> None:
        self._awaited = {id(n.value) for n in ast.walk(function) if isinstance(n, ast.Await)}
        for node in ast.walk(function):  # assignments of cursors to names first
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and self._kind(node.value) == "cursor":
                self.cursors.add(node.targets[0].id)
        for node in ast.walk(function):
            where = f"{self.filename}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                kind = self._kind(node.func.value)
                if kind:
                    self.calls.append(DriverCall(kind, node.func.attr, len(node.args),
                                                 tuple(k.arg for k in node.keywords if k.arg), where))
            elif isinstance(node, ast.AsyncFor) and self._kind(node.iter) == "cursor":
                self.calls.append(DriverCall("cursor", "__aiter__", 0, (), where))


def _is_self_attr(node) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def driver_calls() -> list[DriverCall]:
    calls = []
    for path in sorted(SERVICES.rglob("*.py")):
        finder = _CallFinder(path.name)
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        calls += finder.calls
    return calls


CALLS = driver_calls()


def test_the_services_calls_are_found():
    """The finder itself: what the stores are known to call must be among its findings."""
    found = {(c.kind, c.method) for c in CALLS}
    assert {("collection", "find_one"), ("collection", "insert_one"), ("collection", "update_one"),
            ("collection", "delete_one"), ("collection", "create_index"), ("collection", "find"),
            ("collection", "count_documents"), ("cursor", "sort"), ("cursor", "limit"),
            ("cursor", "to_list"), ("database", "command")} <= found


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.kind}.{c.method}@{c.where}")
def test_both_drivers_have_every_method_the_services_call(call):
    parameters = {}
    for driver, classes in DRIVERS.items():
        method = getattr(classes[call.kind], call.method, None)
        assert callable(method), f"{driver}: {classes[call.kind].__name__} has no {call.method}"
        signature = inspect.signature(method)
        try:
            signature.bind(*[None] * (1 + call.positional), **dict.fromkeys(call.keywords))
        except TypeError as error:
            pytest.fail(f"{driver}: {call.method}{signature} does not take the call at {call.where}: {error}")
        parameters[driver] = [p.name for p in signature.parameters.values()
                              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    # Where both name their positional parameters, the ones the services fill agree.
    named = [names[1:1 + call.positional] for names in parameters.values()
             if len(names) > call.positional]
    assert all(names == named[0] for names in named), parameters


# ----- 2. on the wire ------------------------------------------------------------------------


class WireDatabase:
    """Just enough of a MongoDB behind mockupdb for the stores: insert, upsert by one
    field, find by equality with sort and limit."""

    def __init__(self):
        self.collections: dict[str, list[dict]] = {}
        self.commands: list[str] = []

    def answer(self, request) -> bool:
        answered = answer_housekeeping(request)
        if answered is not None:
            return answered
        name = (request.command_name or "").lower()
        doc = request.doc
        if name not in ("insert", "update", "find"):
            return False
        self.commands.append(name)
        stored = self.collections.setdefault(doc[name], [])
        if name == "insert":
            stored.extend(doc["documents"])
            return request.ok(n=len(doc["documents"]))
        if name == "update":
            (update,) = doc["updates"]
            match = [d for d in stored if _matches(d, update["q"])]
            if match:
                match[0].update(update["u"]["$set"])
                return request.ok(n=1, nModified=1)
            new = {"_id": ObjectId(), **update["q"], **update["u"]["$set"], **update["u"].get("$setOnInsert", {})}
            stored.append(new)
            return request.ok(n=1, nModified=0, upserted=[{"index": 0, "_id": new["_id"]}])
        found = [d for d in stored if _matches(d, doc.get("filter", {}))]
        for key, direction in reversed(list(doc.get("sort", {}).items())):
            found.sort(key=lambda d, key=key: d[key], reverse=direction < 0)
        if doc.get("limit"):
            found = found[:abs(doc["limit"])]
        if "projection" in doc:
            keep = {k for k, v in doc["projection"].items() if v} | {"_id"}
            found = [{k: v for k, v in d.items() if k in keep} for d in found]
        return request.ok(cursor={"id": 0, "ns": f"{doc['$db']}.{doc[name]}", "firstBatch": found})


def _matches(document: dict, query: dict) -> bool:
    return all(document.get(key) == value for key, value in query.items())


@pytest.fixture
def wire_database():
    database = WireDatabase()
    mock = MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0, "maxWireVersion": 21})
    mock.autoresponds(database.answer)
    port = mock.run()
    yield database, f"mongodb://127.0.0.1:{port}/wire_test"
    mock.stop()


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
def test_a_round_trip_through_each_driver(driver, wire_database):
    database, uri = wire_database
    config = load_config(env={}, mongodb_uri=uri, mongodb_driver=driver, mongodb_timeout_ms=5000,
                         jwt_secrets=(TEST_SECRET,))

    async def round_trip():
        client, db = connect(config)
        assert isinstance(client, client_class(driver))
        try:
            sessions = SessionStore(guarded(db), ttl_seconds=60)
            session_id = await sessions.start("user-1")
            assert await sessions.is_live(Principal("user-1", session_id))
            assert not await sessions.is_live(Principal("user-2", session_id))

            catalog = VideoCatalog(guarded(db))
            for youtube_id, title in (("bbbbbbbbbbb", "B"), ("aaaaaaaaaaa", "A")):
                assert await catalog.upsert({"youtube_id": youtube_id, "title": title, "is_active": True})
            first = await catalog.active(1)
            assert [v["title"] for v in first] == ["B"]  # oldest first
            assert (await catalog.get(str(first[0]["_id"])))["title"] == "B"
        finally:
            await close(client)

    asyncio.run(round_trip())
    assert database.commands == ["insert", "find", "find", "update", "update", "find", "find"]
    assert database.collections["sessions"][0]["user_id"] == "user-1"


def test_the_server_runs_on_pymongo_through_an_outage_and_stops_cleanly():
    """The whole process on MONGODB_DRIVER=pymongo: requests that need the absent database
    answer 503 (the guard covers this driver too), and shutdown awaits its client's close."""
    env = {"MONGODB_URI": f"mongodb://{HOST}:{free_port()}/video_app_test", "MONGODB_DRIVER": "pymongo",
           "MONGODB_TIMEOUT_MS": "500", "JWT_SECRET": TEST_SECRET, "BCRYPT_ROUNDS": "4"}
    token = AuthTokenCodec((TEST_SECRET,), 3600).issue(Principal("6561a1b2c3d4e5f601234567", "some-session"))
    with running_server(env) as server:
        assert server.request("GET", "/healthz").status == 200
        assert_json_error(server.request("GET", "/readyz"), 503)
        assert_json_error(server.request("GET", "/dashboard", token=token), 503)
        assert server.stop() == 0
    lines = server.log_lines()
    listening = [e for e in lines if e.get("message") == "listening"]
    assert listening[0]["database"].endswith("/video_app_test through pymongo"), listening
    assert [e for e in lines if "traceback" in e or e.get("message") == "unexpected error"] == []
    # The outage is logged by the name of the driver's own error, which no handler names.
    assert any(e.get("message") == "database unavailable" and e.get("error") == "ServerSelectionTimeoutError"
               for e in lines), lines
