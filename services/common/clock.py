"""UTC time, the only kind this service stores."""

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A datetime read back from MongoDB, made timezone-aware (a client without
    ``tz_aware=True`` hands back naive UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def stored_now() -> dt.datetime:
    """Now, at the millisecond precision MongoDB stores: a value answered straight after
    a write is the one every later read gives."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def isoformat(moment: dt.datetime) -> str:
    """ISO 8601 in UTC, ending in ``Z``, as every response writes times."""
    return as_utc(moment).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
