"""The API in this process: its services prepared as start-up prepares them, its HTTP
server as production builds it (server/app.py ``make_http_server``) on a free port of
127.0.0.1, on the test's event loop or on one of its own in a background thread (for
blocking clients such as schemathesis)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Executor
from typing import Any

import tornado.httpserver
from tornado.netutil import bind_sockets

from seeds.loader import CATALOG_PATH, load_catalog, read_catalog
from server.app import Services, VideoApp, build_services, make_http_server
from server.connection import HTTPServer
from tests.support.constants import HOST

THREAD_CALL_TIMEOUT_SECONDS = 30


async def prepared_services(config, db, executor: Executor, extra_videos: tuple[dict, ...] = ()) -> Services:
    """The services over ``db`` with their indexes and the demo catalog (plus any extra
    videos), as ``python -m server`` prepares them."""
    services = build_services(config, db, executor)
    await services.ensure_indexes()
    await load_catalog(services.catalog, [*read_catalog(CATALOG_PATH), *extra_videos])
    return services


def listen(app: VideoApp) -> tuple[HTTPServer, int]:
    """The app's HTTP server, as server/__main__.py builds it, on a free port of
    127.0.0.1; returns it and the port. Call on the loop that is to serve it."""
    server = make_http_server(app)
    sockets = bind_sockets(0, HOST)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]


async def close_server(server: HTTPServer | tornado.httpserver.HTTPServer) -> None:
    server.stop()
    await server.close_all_connections()


async def serve_until_signalled(server: HTTPServer | tornado.httpserver.HTTPServer, port: int,
                                backlog: int = 128) -> None:
    """Serves on 127.0.0.1:``port`` until SIGTERM or SIGINT (a server program's main,
    such as the bench's ceiling app, on Tornado's own HTTP server), with ``backlog`` as its
    listen backlog."""
    server.listen(port, address=HOST, backlog=backlog)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await close_server(server)


class LoopThread:
    """An event loop of its own in a daemon thread; ``run(coro)`` waits for a result."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = THREAD_CALL_TIMEOUT_SECONDS):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def loop_in_thread(name: str = "test-server") -> Iterator[LoopThread]:
    thread = LoopThread(name)
    try:
        yield thread
    finally:
        thread.stop()
