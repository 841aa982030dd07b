"""Database failures stay in the data layer: services/common/datastore.py turns the driver's
"down" errors into DatabaseUnavailable wherever the database is called, and nothing in
handlers/ or server/ names a pymongo or bson error."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import bson.errors
import pymongo.errors
import pytest

from server.app import build_services
from services.common.datastore import guarded
from services.common.errors import DatabaseUnavailable
from tests.support import REPO_ROOT

DRIVER_ERROR_NAMES = {
    name for module in (pymongo.errors, bson.errors) for name, value in vars(module).items()
    if inspect.isclass(value) and issubclass(value, BaseException)
} | {"DATABASE_DOWN_ERRORS", "UNUSABLE_URI_ERRORS"}
DRIVER_ERROR_MODULES = {"pymongo.errors", "bson.errors"}


def named_driver_errors(path: Path) -> list[str]:
    """Every place the file imports or names a driver error, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names}
            if node.module in DRIVER_ERROR_MODULES or (node.module in ("pymongo", "bson") and "errors" in names) \
                    or names & DRIVER_ERROR_NAMES:
                found.append(f"{node.lineno}: from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name in DRIVER_ERROR_MODULES]
        elif isinstance(node, ast.Name) and node.id in DRIVER_ERROR_NAMES:
            found.append(f"{node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in DRIVER_ERROR_NAMES:
            found.append(f"{node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("path", [*sorted((REPO_ROOT / "handlers").glob("*.py")),
                                  *sorted((REPO_ROOT / "server").glob("*.py"))],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_handlers_and_server_name_no_driver_error(path):
    assert named_driver_errors(path) == []


def test_the_check_itself_finds_driver_errors(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from pymongo.errors import AutoReconnect\nfrom pymongo import errors\n"
                      "import bson.errors\nx = pymongo.errors.ServerSelectionTimeoutError\n"
                      "from services.datastore import DATABASE_DOWN_ERRORS\n")
    assert len(named_driver_errors(sample)) == 5


# ----- the guard --------------------------------------------------------------------------------


class FailingCursor:
    def __init__(self, error=None, documents=()):
        self.error, self.documents = error, list(documents)

    def sort(self, *args):
        return self

    def limit(self, n):
        return self

    async def to_list(self, length=None):
        if self.error:
            raise self.error
        return self.documents

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.error:
            raise self.error
        if not self.documents:
            raise StopAsyncIteration
        return self.documents.pop(0)


class FailingCollection:
    def __init__(self, error):
        self.error = error

    async def find_one(self, *args, **kwargs):
        raise self.error

    def find(self, *args, **kwargs):
        return FailingCursor(self.error)

    def watch(self):
        raise self.error  # a synchronous call that fails at once


class FailingDatabase:
    name = "failing"

    def __init__(self, error):
        self.error = error

    def __getitem__(self, name):
        return FailingCollection(self.error)

    async def command(self, *args):
        raise self.error


DOWN = [pymongo.errors.ServerSelectionTimeoutError("no servers"), pymongo.errors.AutoReconnect("lost"),
        pymongo.errors.NetworkTimeout("slow"), pymongo.errors.ExecutionTimeout("timeout"),
        pymongo.errors.WTimeoutError("wtimeout")]


@pytest.mark.parametrize("error", DOWN, ids=lambda e: type(e).__name__)
@pytest.mark.gen_test
async def test_every_kind_of_database_call_raises_database_unavailable(error):
    db = guarded(FailingDatabase(error))
    calls = [
        lambda: db["things"].find_one({"_id": 1}),
        lambda: db["things"].find({}).sort([("a", 1)]).limit(2).to_list(length=2),
        lambda: db.command("ping"),
    ]
    for call in calls:
        with pytest.raises(DatabaseUnavailable) as raised:
            await call()
        assert raised.value.__cause__ is error
    with pytest.raises(DatabaseUnavailable):
        async for _ in db["things"].find({}):
            pass
    with pytest.raises(DatabaseUnavailable):
        db["things"].watch()


@pytest.mark.gen_test
async def test_a_refusal_is_not_an_outage():
    duplicate = pymongo.errors.DuplicateKeyError("E11000")
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        await guarded(FailingDatabase(duplicate))["things"].find_one({})


@pytest.mark.gen_test
async def test_results_and_iteration_pass_through(database):
    db = guarded(database)
    await db["things"].insert_one({"_id": 1, "n": 1})
    await db["things"].insert_one({"_id": 2, "n": 2})
    assert await db["things"].find_one({"_id": 2}) == {"_id": 2, "n": 2}
    assert [d["n"] async for d in db["things"].find({}).sort("n", -1)] == [2, 1]
    assert await db["things"].find({}).sort("n", 1).limit(1).to_list(length=1) == [{"_id": 1, "n": 1}]
    assert guarded(db) is db  # guarding twice wraps once


def _guarded_handles(obj, depth: int = 2) -> list:
    """The guarded handles an object holds, itself or through the service objects it
    holds (a throttle keeps its collection inside its limiters)."""
    found = []
    for value in vars(obj).values():
        module = type(value).__module__
        if module == "services.common.datastore":
            found.append(value)
        elif depth and module.startswith("services.") and hasattr(value, "__dict__"):
            found += _guarded_handles(value, depth - 1)
    return found


def test_every_store_gets_the_guarded_database(config, database, executor):
    services = build_services(config, database, executor)
    stores = [*services.stores, services.health]
    for store in stores:
        assert _guarded_handles(store), f"{type(store).__name__} holds no guarded database handle"
