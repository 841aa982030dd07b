"""Revocations that survive a failover, and checks that see them.

On a replica set, a write acknowledged by the primary alone (``w: 1``) is lost if that
primary steps down before a secondary has copied it: the new primary never saw it, and
the old one rolls it back when it rejoins. For a logout that would bring a dead token
back to life. So every collection that holds a credential or its revocation (accounts,
sessions, refresh tokens, reset tokens, the throttles' counters) is used through
``durable()``:

- writes wait for ``w: "majority"``: once acknowledged, no election can roll them back;
- reads go to the primary: a session check or a throttle check never reads a secondary
  that has not yet applied the logout, the password change or the failed logins.

Both are fixed here, whatever the connection string asks for (``w=1``, ``w=0``,
``readPreference=secondaryPreferred`` only apply to the other collections): they can be
configured only upwards, which here means not at all. The wait is bounded by
``MONGODB_TIMEOUT_MS``: the client runs every operation under that deadline (pymongo's
``timeoutMS``), which pymongo sends as ``maxTimeMS`` and which the server applies to the
majority wait too, so pymongo leaves ``wtimeout`` out; the same bound is put in the write
concern's ``wtimeout`` for a client made without ``timeoutMS``. A wait that runs out is a
``WTimeoutError``, one of ``DATABASE_DOWN_ERRORS``: the request answers 503.

One window stays open: a primary cut off from the others keeps answering reads until it
notices (up to the election timeout, 10 s by default), so for that long it could still
show a session that the new primary has deleted. Closing it (read concern
"linearizable") would cost a majority round trip on every request.

Retryable writes stay on (the driver's default). The driver retries a single-document
write once after a failover, under the same session transaction number, and the server
applies it at most once: ``$inc`` counters, inserts and ``find_one_and_*`` are safe.
Multi-document writes (``delete_many``) are never retried by the driver; deleting what a
filter matches is idempotent, so the client's own retry after a 503 is safe.
"""

from __future__ import annotations

from pymongo import ReadPreference, WriteConcern

MAJORITY = "majority"


def durable(collection, config):
    """``collection`` with majority writes and primary reads. The one place where the
    service's durable collections are made (see ``DurableDatabase``)."""
    return collection.with_options(
        write_concern=WriteConcern(MAJORITY, wtimeout=config.mongodb_timeout_ms),
        read_preference=ReadPreference.PRIMARY,
    )


class DurableDatabase:
    """``db`` as the credential stores see it: ``view[name]`` is ``durable(db[name])``.
    Handed to every store whose writes are revocations or whose reads are checks."""

    def __init__(self, db, config):
        self._db = db
        self._config = config

    def __getitem__(self, name: str):
        return durable(self._db[name], self._config)
