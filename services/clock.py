"""UTC time, the only kind this service stores."""

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A datetime read back from MongoDB, made timezone-aware (a client without
    ``tz_aware=True`` hands back naive UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
