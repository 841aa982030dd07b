"""What can go wrong in the domain, in words a person can read.

Handlers map each class to an HTTP status in one table (handlers/base.py); the
services themselves know nothing of HTTP.
"""

from pymongo import errors as mongo_errors


class ServiceError(Exception):
    """Base of every expected failure. ``str(error)`` is safe to show to a user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request is malformed: a missing field, a wrong type, a bad value."""


class NotAuthenticated(ServiceError):
    """No credential, or one that is invalid, expired, tampered with or revoked."""


class Forbidden(ServiceError):
    """A valid credential that does not grant this particular thing."""


class NotFound(ServiceError):
    """The thing asked for does not exist."""


class Conflict(ServiceError):
    """The request collides with existing state (an email already registered)."""


class TooManyAttempts(ServiceError):
    """Throttled; ``retry_after`` is how many seconds until trying again makes sense."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class FeatureUnavailable(ServiceError):
    """This deployment does not offer the feature (say, password reset without SMTP_URL)."""
class Overloaded(ServiceError):
    """Too much work is already waiting (password checks); ``retry_after`` seconds from now
    it makes sense to try again."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(ServiceError):
    """The database did not answer in time; the request may be retried."""


# The driver's errors that mean "the database is not reachable right now", as opposed
# to "the database refused this operation". Both Motor and PyMongo's async client raise these.
DATABASE_DOWN_ERRORS = (
    mongo_errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    mongo_errors.ExecutionTimeout,
    mongo_errors.WTimeoutError,
)
