"""The reference "ceiling" of the benchmark: one Tornado process that answers every GET
with a small JSON object and does nothing else (no auth, no database, no access log).

Measured with the same wrk settings in the same run as the API, it says how many
requests a second one Tornado process can serve on this machine at all, so the API's
numbers can be read as a fraction of that instead of as absolute figures that change
from machine to machine.

    PORT=8123 python bench/ceiling.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

import tornado.web
from tornado.httpserver import HTTPServer

BODY = json.dumps({"status": "ok"}, separators=(",", ":"))


class OkHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(BODY)


def _no_access_log(handler) -> None:
    """Tornado's default log function still builds a record per request; the ceiling
    should not pay for anything the minimal app does not need."""


async def serve(port: int) -> None:
    app = tornado.web.Application([(r"/.*", OkHandler)], log_function=_no_access_log)
    server = HTTPServer(app)
    server.listen(port, address="127.0.0.1")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    server.stop()
    await server.close_all_connections()


if __name__ == "__main__":
    asyncio.run(serve(int(os.environ["PORT"])))
