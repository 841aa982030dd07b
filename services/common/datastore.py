"""The database as the stores see it: the driver's "the database is not answering"
errors become ``DatabaseUnavailable`` here, once, so that nothing above the data layer
(handlers, the server's start-up) ever names a pymongo or bson error.

``guarded(db)`` wraps the database handed to the stores (server/app.py
``build_services``). Every collection taken from it, every method called on one, and
every cursor those return (``find().sort().limit()``, ``to_list``, ``async for``) is
wrapped the same way, so a store cannot reach the driver around it. The wrappers are
built once per collection and method (cached on first use), so a call costs one extra
frame, a small share of a request (figures: bench/README.md); a cursor's ``sort``,
``limit``, ``skip`` and ``to_list``, which every list query calls on a new cursor, are
methods of the guard's cursor instead of being wrapped anew for each. Errors that
mean "the database refused this" (``DuplicateKeyError``...) pass through unchanged:
the stores handle those themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable, iscoroutinefunction
from typing import Any, Protocol

from pymongo import errors as mongo_errors

from services.common.errors import DatabaseUnavailable

# The driver's errors that mean "the database is not reachable right now", as opposed
# to "the database refused this operation". Motor, PyMongo's async client and
# mongomock raise the same classes.
DATABASE_DOWN_ERRORS = (
    mongo_errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    mongo_errors.ExecutionTimeout,
    mongo_errors.WTimeoutError,
)


def open_client(client_class, uri: str, default_database: str, **options):
    """``(client, database)`` from either driver's client class. A connection string the
    driver cannot use raises ValueError with the driver's message (which names the
    faulty part, not the credentials)."""
    try:
        client = client_class(uri, **options)
        return client, client.get_default_database(default_database)
    except (mongo_errors.ConfigurationError, ValueError) as error:
        raise ValueError(str(error)) from None


def guarded(db) -> GuardedDatabase:
    """The database ``db`` with every driver "down" error raised as DatabaseUnavailable."""
    return db if isinstance(db, GuardedDatabase) else GuardedDatabase(db)


def _maybe_cursor(result):
    # find(), sort(), limit()... hand back a cursor: iterating it talks to the database.
    # (PyMongo's async client answers aggregate() with one only once awaited.)
    return _Cursor(result) if hasattr(result, "__aiter__") else result


async def _awaited(awaitable):
    try:
        result = await awaitable
    except DATABASE_DOWN_ERRORS as error:
        raise DatabaseUnavailable() from error
    return _maybe_cursor(result)


class Database(Protocol):
    """What every store is given (server/app.py ``build_services``): the database, guarded,
    whose collections are taken by name (``db["users"]``). A collection has the driver's
    methods (Motor's, PyMongo's async client's or mongomock-motor's: typed loosely, as Any,
    since three drivers stand behind it)."""

    def __getitem__(self, name: str) -> Any: ...

    async def command(self, command: str) -> Any: ...


class Store(Protocol):
    """A store: it declares the indexes its queries need (every store has one)."""

    async def ensure_indexes(self) -> None: ...


def _guard_method(method: Callable[..., Any]) -> Callable[..., Any]:
    call: Any
    if iscoroutinefunction(method):  # mongomock-motor's and PyMongo's: one frame fewer

        async def guarded_coroutine(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await method(*args, **kwargs)
            except DATABASE_DOWN_ERRORS as error:
                raise DatabaseUnavailable() from error
            return _maybe_cursor(result)

        call = guarded_coroutine
    else:  # Motor's methods return futures; find() and a cursor's chained methods, cursors

        def guarded_call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = method(*args, **kwargs)
            except DATABASE_DOWN_ERRORS as error:
                raise DatabaseUnavailable() from error
            return _awaited(result) if isawaitable(result) else _maybe_cursor(result)

        call = guarded_call
    call.__wrapped__ = method
    return call


class _Guarded:
    """Wraps each method of the target on first use and keeps the wrapper on the
    instance, so later look-ups are plain attribute reads."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name: str):
        value = getattr(self._target, name)
        if callable(value):
            value = _guard_method(value)
            self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"


class GuardedDatabase(_Guarded):
    def __init__(self, target):
        super().__init__(target)
        self._collections: dict[str, _Guarded] = {}

    def __getitem__(self, name: str) -> _Guarded:
        collection = self._collections.get(name)
        if collection is None:
            collection = self._collections[name] = _Guarded(self._target[name])
        return collection


class _Cursor(_Guarded):
    """A cursor: its chained methods and coroutines through ``_Guarded``; iteration here
    (special methods are looked up on the class, never through ``__getattr__``)."""

    def __init__(self, target):
        super().__init__(target)
        self._iterator: Any = None

    # What every list query chains (find().sort().limit().to_list()), defined here rather
    # than wrapped on first use: each query has a new cursor, which would wrap them anew.
    # Chaining talks to no database; each driver's answers the cursor itself.
    def sort(self, *args: Any, **kwargs: Any) -> Any:
        return self._chained(self._target.sort(*args, **kwargs))

    def limit(self, *args: Any, **kwargs: Any) -> Any:
        return self._chained(self._target.limit(*args, **kwargs))

    def skip(self, *args: Any, **kwargs: Any) -> Any:
        return self._chained(self._target.skip(*args, **kwargs))

    def _chained(self, result: Any) -> Any:
        return self if result is self._target else _maybe_cursor(result)

    async def to_list(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._target.to_list(*args, **kwargs)
        except DATABASE_DOWN_ERRORS as error:
            raise DatabaseUnavailable() from error

    def __aiter__(self):
        self._iterator = self._target.__aiter__()
        return self

    async def __anext__(self):
        try:
            return await self._iterator.__anext__()
        except DATABASE_DOWN_ERRORS as error:
            raise DatabaseUnavailable() from error
