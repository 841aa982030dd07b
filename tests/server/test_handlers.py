"""The handler pieces on their own: the headers of every answer, the application's
in-flight count, and errors Tornado raises itself."""

import pytest
import tornado.web

from handlers.base import BaseHandler
from handlers.headers import STATIC_HEADERS
from server.app import InFlight


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
