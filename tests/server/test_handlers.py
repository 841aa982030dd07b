"""The handler pieces on their own: the headers of every answer, the application's
in-flight count, and errors Tornado raises itself."""

import orjson
import pytest
import tornado.web

from handlers.base import BaseHandler
from handlers.body import parse_json
from handlers.errors import STATUS_FOR_ERROR, status_for
from handlers.headers import STATIC_HEADERS
from server.app import InFlight
from services.common.errors import InvalidInput, NotFound, RetryLater, ServiceError
from tests.support.client import assert_json_error


@pytest.mark.gen_test
async def test_every_answer_carries_the_static_headers_and_a_request_id(api):
    reply = await api.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert {name: reply.headers[name] for name in STATIC_HEADERS} == STATIC_HEADERS
    assert reply.headers["X-Request-ID"] == "abc-123"
    assert "Server" not in reply.headers


@pytest.mark.gen_test
async def test_in_flight_counts_each_request_once_until_it_leaves():
    inflight = InFlight()
    first, second = object(), object()
    inflight.enter(first)
    inflight.enter(second)
    assert inflight.count == 2
    inflight.leave(first)
    inflight.leave(first)  # finished, then its connection closed: one leave counts
    assert inflight.count == 1
    assert not await inflight.wait_idle(0.01)
    inflight.leave(second)
    assert inflight.count == 0
    assert await inflight.wait_idle(0.01)


class _TeapotHandler(BaseHandler):
    requires_auth = False

    def get(self):
        raise tornado.web.HTTPError(418)

    def post(self):
        raise tornado.web.HTTPError(409, reason="Already Brewing")


@pytest.mark.gen_test
async def test_tornados_own_http_errors_are_json_with_their_reason(app, api):
    app.add_handlers(r".*", [(r"/teapot", _TeapotHandler)])
    teapot = await api.get("/teapot")
    assert teapot.status == 418
    assert teapot.error == "I'm a Teapot"
    brewing = await api.post("/teapot", {})
    assert brewing.status == 409
    assert brewing.error == "Already Brewing"


@pytest.mark.parametrize("raw", [
    b'{"a": 1, "a": 1}',
    b'{"a": {"b": 1, "c": [{"d": 1, "d": 2}]}}',
    b'[{"x": "https://example.com"}, {"y": 1, "y": 2}]',
    b'{"t": "12:30", "t": "12:31"}',
    b'{"\\u00e9": 1, "\xc3\xa9": 2}',  # the same name, escaped once
    b'{"a": {}, "b": {"a": 1}, "b": 2}',
])
def test_parse_json_refuses_a_member_name_repeated_at_any_depth(raw):
    with pytest.raises(InvalidInput, match="repeats the member name"):
        parse_json(raw)


@pytest.mark.parametrize(("raw", "value"), [
    (b'{"a": 1, "b": {"a": 2}}', {"a": 1, "b": {"a": 2}}),  # one name in two objects: fine
    (b'{"url": "https://x.example/a:b", "at": "12:30:00"}', {"url": "https://x.example/a:b", "at": "12:30:00"}),
    (b'[{"a": 1}, {"a": 1}]', [{"a": 1}, {"a": 1}]),
    (b'{"\\u003a": ":"}', {":": ":"}),
    (b'"a:b"', "a:b"),
    (b'[]', []),
])
def test_parse_json_reads_bodies_without_repeated_names_as_orjson_does(raw, value):
    assert parse_json(raw) == value == orjson.loads(raw)


def test_parse_json_never_fails_without_an_answer_on_deep_bodies():
    for depth in (900, 1023, 1024):
        for raw in (b"[" * depth + b'"a:"' + b"]" * depth, b'{"k":' * depth + b'"a:"' + b"}" * depth):
            try:
                parse_json(raw)
            except (InvalidInput, orjson.JSONDecodeError):
                pass  # a 400, as json_body() answers either


# Defined here, on purpose outside the table: what a forgotten entry would be.
class _UnmappedError(ServiceError):
    pass


class _UnmappedRetry(RetryLater):
    pass


class _SubclassOfMapped(NotFound):
    pass


def _every_service_error() -> list[type[ServiceError]]:
    """ServiceError and every subclass, recursively, wherever defined (these tests' too)."""
    found, pending = [], [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class _RaisingHandler(BaseHandler):
    requires_auth = False
    error: ServiceError

    def get(self):
        raise self.error


@pytest.mark.gen_test
async def test_every_service_error_is_a_json_answer_with_the_status_of_its_nearest_mapped_class(app, api):
    classes = _every_service_error()
    assert {_UnmappedError, _UnmappedRetry, _SubclassOfMapped} <= set(classes)
    for number, cls in enumerate(classes):
        error = cls("A sentence.", 7) if issubclass(cls, RetryLater) else cls("A sentence.")
        handler = type(f"_Raising{number}", (_RaisingHandler,), {"error": error})
        app.add_handlers(r".*", [(rf"/raise/{number}", handler)])
        reply = await api.get(f"/raise/{number}")
        mapped = [STATUS_FOR_ERROR[base] for base in cls.__mro__ if base in STATUS_FOR_ERROR]
        expected = mapped[0] if mapped else 500
        assert_json_error(reply, expected)
        assert reply.error == ("A sentence." if mapped else "Internal server error"), cls
    assert status_for(_SubclassOfMapped("x")) == 404
    assert status_for(_UnmappedError("x")) == 500 and status_for(_UnmappedRetry("x", 1)) == 500
