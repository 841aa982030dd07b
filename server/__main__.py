"""``python -m server``: start the API and stop it gracefully on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from handlers.openapi import openapi_json
from seeds.loader import seed_if_empty
from server.app import VideoApp, build_services, make_http_server
from server.config import Config, ConfigError, load_config
from server.database import connect, describe
from server.logs import configure_logging
from services.errors import DATABASE_DOWN_ERRORS

log = logging.getLogger("server")
PREPARE_RETRY_SECONDS = 5


async def prepare_database(services) -> None:
    """Indexes and the demo catalog. The database may be down while the platform
    starts us: keep trying in the background rather than refuse to start."""
    while True:
        try:
            await services.ensure_indexes()
            added = await seed_if_empty(services.catalog)
        except DATABASE_DOWN_ERRORS as error:
            log.warning("database not reachable yet; retrying", extra={"error": type(error).__name__})
            await asyncio.sleep(PREPARE_RETRY_SECONDS)
            continue
        if added:
            log.info("seeded the empty catalog", extra={"new_videos": added})
        return


async def serve(config: Config, started: asyncio.Future | None = None) -> None:
    client, db = connect(config)
    # bcrypt releases the GIL, so these threads check passwords in parallel with the loop.
    executor = ThreadPoolExecutor(max_workers=config.bcrypt_threads or os.cpu_count() or 1,
                                  thread_name_prefix="bcrypt")
    services = build_services(config, db, executor)
    preparing = asyncio.ensure_future(prepare_database(services))
    services.plays.start()
    app = VideoApp(config, services)
    openapi_json()  # parse the API document now rather than during the first request for it
    server = make_http_server(app)
    server.listen(config.port)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    log.info("listening", extra={"mode": config.app_env, "port": config.port, "database": describe(config)})
    if config.uses_embedded_store:
        log.warning("MONGODB_URI is not set: using the embedded in-memory store; "
                    "every account and session is lost when this process stops")
    if started is not None:
        started.set_result(server)

    await stopping.wait()
    log.info("shutting down", extra={"in_flight": app.inflight.count, "grace_seconds": config.shutdown_grace_seconds})
    server.stop()  # no new connections from here on
    finished = await app.inflight.wait_idle(config.shutdown_grace_seconds)
    if not finished:
        log.warning("grace period over; closing connections with requests still running",
                    extra={"in_flight": app.inflight.count})
    preparing.cancel()
    await server.close_all_connections()
    # The plays still buffered, before the client closes.
    await services.plays.stop(timeout_seconds=config.shutdown_grace_seconds)
    client.close()
    executor.shutdown(wait=False, cancel_futures=True)
    app.access_log.flush()
    log.info("stopped")


def main() -> int:
    configure_logging()
    try:
        asyncio.run(serve(load_config()))
    except ConfigError as error:
        log.error(f"refusing to start: {error}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
