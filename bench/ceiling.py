"""The reference "ceiling" of the benchmark: one Tornado process that answers every GET
with a small JSON object and does nothing else (no auth, no database, no access log).

Measured with the same wrk settings in the same run as the API, it says how many
requests a second one Tornado process can serve on this machine at all, so the API's
numbers can be read as a fraction of that instead of as absolute figures that change
from machine to machine.

It is sent the same requests as the API (the same path, query string, bearer token
and body) and listens with the same backlog (LISTEN_BACKLOG), so that what the API
costs on top of it is the API's own work, not the shape of the request.

It also answers POST /login (and /auth/login) with one bcrypt check (at BCRYPT_ROUNDS, on BCRYPT_THREADS
threads, as the API is configured) and nothing else: under the login storm it is the
best any Tornado process could do on this machine, the reference for the API's storm.

It runs on the event loop EVENT_LOOP names (uvloop by default, as the API's), so that the
API's figures are read against the same loop.

    PORT=8123 BCRYPT_ROUNDS=12 BCRYPT_THREADS=3 LISTEN_BACKLOG=2048 python -m bench.ceiling
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import orjson
import tornado.web
from tornado.httpserver import HTTPServer

from server.runtime import tune_garbage_collector, use_event_loop
from tests.support import PASSWORD, serve_until_signalled

# The API encodes its answers with orjson: so does the ceiling, on every request.
OK = {"status": "ok"}


class OkHandler(tornado.web.RequestHandler):
    """Any GET or PUT (its body read whole by Tornado, and not looked at)."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(orjson.dumps(OK))

    put = get


class LoginHandler(tornado.web.RequestHandler):
    """A login reduced to its bcrypt check, run off the event loop as the API does."""

    def initialize(self, executor: ThreadPoolExecutor, hashed: bytes) -> None:
        self.executor = executor
        self.hashed = hashed

    async def post(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, bcrypt.checkpw, PASSWORD.encode(), self.hashed)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(orjson.dumps(OK))


def _no_access_log(handler) -> None:
    """Tornado's default log function still builds a record per request; the ceiling
    should not pay for anything the minimal app does not need."""


async def serve(port: int, rounds: int, threads: int, backlog: int) -> None:
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bcrypt")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    app = tornado.web.Application(
        [(r"/(?:auth/)?login", LoginHandler, {"executor": executor, "hashed": hashed}), (r"/.*", OkHandler)],
        log_function=_no_access_log,
    )
    tune_garbage_collector()  # as the API does
    await serve_until_signalled(HTTPServer(app), port, backlog=backlog)
    executor.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    use_event_loop(os.environ.get("EVENT_LOOP") or "uvloop")  # as the API chooses its loop
    asyncio.run(serve(
        int(os.environ["PORT"]),
        rounds=int(os.environ.get("BCRYPT_ROUNDS", "12")),
        threads=int(os.environ.get("BCRYPT_THREADS", "0")) or os.cpu_count() or 1,
        backlog=int(os.environ.get("LISTEN_BACKLOG", "128")),
    ))
