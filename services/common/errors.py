"""What can go wrong in the domain, in words a person can read.

Handlers map each class to an HTTP status in one table (handlers/errors.py); the
services themselves know nothing of HTTP.
"""


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


class RetryLater(ServiceError):
    """Refused for now; ``retry_after`` is how many seconds until trying again makes sense."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(RetryLater):
    """Throttled: this caller has made too many attempts in the window."""


class Overloaded(RetryLater):
    """Too much work is already waiting (password checks)."""


class UpstreamUnavailable(RetryLater):
    """Another service this request needs (a sign-in provider's keys) cannot be reached."""


class FeatureUnavailable(ServiceError):
    """This deployment does not offer the feature (say, password reset without SMTP_URL)."""


class DatabaseUnavailable(ServiceError):
    """The database did not answer in time; the request may be retried. Raised by the
    data layer (services/common/datastore.py) in place of the driver's own errors."""

    def __init__(self, message: str = "The service is temporarily unavailable. Please try again shortly."):
        super().__init__(message)

    @property
    def reason(self) -> str:
        """For logs: the name of the driver's error behind it (which kind of outage)."""
        return type(self.__cause__ or self).__name__
