"""The database client: a real MongoDB through Motor or PyMongo's own async client
(``MONGODB_DRIVER``), or the embedded in-memory store."""

from __future__ import annotations

import inspect
import logging
from urllib.parse import urlsplit, urlunsplit

from server.config import ConfigError
from services.common.datastore import open_client

log = logging.getLogger(__name__)


def client_class(driver: str):
    """The client class of a ``MONGODB_DRIVER`` value. Both take the same options and give
    databases, collections and cursors with the same methods (tests/server/test_drivers.py)."""
    if driver == "pymongo":
        from pymongo import AsyncMongoClient

        return AsyncMongoClient
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient


def connect(config):
    """Returns ``(client, database)``. Nothing is sent to the server here: both drivers
    connect lazily, so the service starts even while the database is down."""
    if config.uses_embedded_store:
        from server.embedded_store import embedded_client

        client = embedded_client()
        return client, client[config.mongodb_database]

    timeout = config.mongodb_timeout_ms
    try:
        return open_client(
            client_class(config.mongodb_driver),
            config.mongodb_uri,
            config.mongodb_database,
            tz_aware=True,
            # Bounded waits: when the database is away a request fails fast with a 503
            # instead of hanging for pymongo's default 30 s.
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
            timeoutMS=timeout,
            appname="video-app",
        )
    except ValueError as error:
        raise ConfigError(f"MONGODB_URI is not a usable MongoDB connection string: {error}") from None


async def close(client) -> None:
    """Closes either driver's client: Motor's (and the embedded store's) ``close()`` is
    immediate, PyMongo's async client's is a coroutine."""
    closing = client.close()
    if inspect.isawaitable(closing):
        await closing


def describe(config) -> str:
    """Where the data lives and which driver reaches it, for the start-up log line:
    never the credentials."""
    if config.uses_embedded_store:
        return "embedded in-memory store"
    parts = urlsplit(config.mongodb_uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{urlunsplit((parts.scheme, host, parts.path, '', ''))} through {config.mongodb_driver}"
