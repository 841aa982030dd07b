"""The handler pieces on their own: the one place that writes Tornado's private header
map, the application's in-flight count, and errors Tornado raises itself."""

import pytest
import tornado.web
from tornado import httputil

from handlers.base import BaseHandler
from handlers.headers import STATIC_HEADERS, put_header, put_headers
from server.app import InFlight


class _PutHeadersHandler(tornado.web.RequestHandler):
    """Tornado's own handler, with the headers put as handlers/headers.py puts them."""

    header_map_types: list = []

    def get(self):
        self.header_map_types.append(type(self._headers))
        self.clear_header("Server")
        put_headers(self, STATIC_HEADERS)
        put_header(self, "X-Request-ID", "abc-123")
        self.set_header("X-Public", "1")  # the public API, beside them
        self.finish("{}")


@pytest.mark.gen_test
async def test_the_private_header_map_is_what_tornado_sends(app, api):
    """handlers/headers.py writes RequestHandler._headers directly (a measured saving on
    every response). If Tornado renames that map or stops sending it, this fails."""
    app.add_handlers(r".*", [(r"/put-headers", _PutHeadersHandler)])
    reply = await api.get("/put-headers")
    assert reply.status == 200
    assert _PutHeadersHandler.header_map_types == [httputil.HTTPHeaders]
    assert {name: reply.headers[name] for name in STATIC_HEADERS} == STATIC_HEADERS
    assert reply.headers["X-Request-ID"] == "abc-123" and reply.headers["X-Public"] == "1"
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
