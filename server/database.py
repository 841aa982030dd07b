"""The database client: a real MongoDB through Motor, or the embedded in-memory store."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from pymongo.errors import ConfigurationError

from server.config import ConfigError

log = logging.getLogger(__name__)


def connect(config):
    """Returns ``(client, database)``. Nothing is sent to the server here: Motor
    connects lazily, so the service starts even while the database is down."""
    if config.uses_embedded_store:
        from server.embedded_store import embedded_client

        client = embedded_client()
        return client, client[config.mongodb_database]

    from motor.motor_asyncio import AsyncIOMotorClient

    timeout = config.mongodb_timeout_ms
    try:
        client = AsyncIOMotorClient(
            config.mongodb_uri,
            tz_aware=True,
            # Bounded waits: when the database is away a request fails fast with a 503
            # instead of hanging for pymongo's default 30 s.
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
            timeoutMS=timeout,
            appname="video-app",
        )
        return client, client.get_default_database(config.mongodb_database)
    except (ConfigurationError, ValueError) as error:
        # pymongo's messages name the faulty part, not the credentials.
        raise ConfigError(f"MONGODB_URI is not a usable MongoDB connection string: {error}") from None


def describe(config) -> str:
    """Where the data lives, for the start-up log line: never the credentials."""
    if config.uses_embedded_store:
        return "embedded in-memory store"
    parts = urlsplit(config.mongodb_uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
