"""``python -m server``: start the API and stop it gracefully on SIGTERM or SIGINT.
``python -m server verify-email <address>``: an operator's command (server/commands.py).

With ``WEB_CONCURRENCY`` above 1 the listening socket is bound first and that many
worker processes are forked to accept on it; each creates its own database client after
the fork (a client must never cross a fork). The parent only supervises: it passes
SIGTERM and SIGINT on to every worker, and if one worker dies on its own it stops the
others and exits non-zero, so that the platform restarts the whole service.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tornado.netutil import bind_sockets

from handlers.openapi import openapi_json
from seeds.loader import seed_if_empty
from server import tracing
from server.app import VideoApp, build_services, make_http_server
from server.commands import run_verify_email
from server.config import Config, ConfigError, load_config, read_dotenv
from server.database import close, connect, describe
from server.logs import configure_logging
from server.metrics import keep_in_process, mark_process_dead, share_between_processes
from server.runtime import running_loop_kind, tune_garbage_collector, use_event_loop
from services.common.errors import DatabaseUnavailable

log = logging.getLogger("server")
PREPARE_RETRY_SECONDS = 5
# How long past SHUTDOWN_GRACE_SECONDS the parent waits for workers before killing them.
WORKER_EXIT_MARGIN_SECONDS = 5
# How often account deletions cut off by an outage are looked for, after the one at start-up.
DELETION_SWEEP_SECONDS = 60
# How long shutdown waits for the last spans to be exported (with tracing on).
TRACES_FLUSH_SECONDS = 5


async def prepare_database(services) -> None:
    """Indexes, the demo catalog and the carry-over of plays stored before the rollups
    (services/catalog/plays.py; a no-op once done), then the sweep for unfinished account deletions.
    The database may be down while the platform starts us: keep trying in the background
    rather than refuse to start."""
    while True:
        try:
            await services.ensure_indexes()
            added = await seed_if_empty(services.catalog)
            await services.plays.carry_over()
        except DatabaseUnavailable as error:
            log.warning("database not reachable yet; retrying", extra={"error": error.reason})
            await asyncio.sleep(PREPARE_RETRY_SECONDS)
            continue
        if added:
            log.info("seeded the empty catalog", extra={"new_videos": added})
        break
    await finish_deletions(services)


async def finish_deletions(services) -> None:
    """Completes account deletions that a database outage or a crash cut off (they
    leave nothing that logs in, but their data and email stay taken until finished)."""
    while True:
        try:
            await services.accounts.finish_pending_deletions()
        except DatabaseUnavailable as error:
            log.warning("could not finish pending account deletions; retrying",
                        extra={"error": error.reason})
            await asyncio.sleep(PREPARE_RETRY_SECONDS)
            continue
        await asyncio.sleep(DELETION_SWEEP_SECONDS)


async def serve(config: Config, started: asyncio.Future | None = None,
                sockets: list | None = None, worker: int | None = None, metrics_dir: str | None = None) -> None:
    """Serves until SIGTERM or SIGINT. ``sockets``: already bound (a worker's); otherwise
    it listens on HOST:PORT itself. ``metrics_dir``: where the workers share their metrics."""
    # Before the database client: PyMongo's monitoring applies to clients made afterwards.
    traces = tracing.start()
    client, db = connect(config)
    # bcrypt releases the GIL, so these threads check passwords in parallel with the loop.
    executor = ThreadPoolExecutor(max_workers=config.bcrypt_threads or os.cpu_count() or 1,
                                  thread_name_prefix="bcrypt")
    services = build_services(config, db, executor)
    preparing = asyncio.ensure_future(prepare_database(services))
    services.plays.start()
    app = VideoApp(config, services, metrics_dir=metrics_dir)
    app.metrics.start()
    app.loop_lag.start()
    openapi_json()  # parse the API document now rather than during the first request for it
    tune_garbage_collector()
    server = make_http_server(app)
    if sockets is None:
        server.listen(config.port, address=config.host, backlog=config.listen_backlog)
    else:
        server.add_sockets(sockets)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    where = {"host": config.host, "port": config.port, "pid": os.getpid()}
    if worker is not None:
        where["worker"] = worker
    log.info("listening", extra={"mode": config.app_env, **where, "database": describe(config),
                                 "traces": traces is not None,
                                 "event_loop": running_loop_kind()})
    if config.uses_embedded_store:
        log.warning("MONGODB_URI is not set: using the embedded in-memory store; "
                    "every account and session is lost when this process stops")
    if not config.smtp_url:
        log.warning("SMTP_URL is not set: " + (
            "password reset and email verification answer 503 (verify operators' addresses with "
            "python -m server verify-email <address>)" if config.is_production else
            "mails are written as .eml files to MAIL_DIR, tokens included (development only)"),
            extra={} if config.is_production else {"mail_dir": config.mail_dir})
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
    try:  # mails already answered 202: give them one mail's time to go out
        await asyncio.wait_for(asyncio.gather(services.password_reset.idle(), services.mailboxes.idle()),
                               timeout=config.smtp_timeout_seconds)
    except TimeoutError:
        log.warning("mails still queued at shutdown were not sent")
    await server.close_all_connections()
    # The plays still buffered, before the client closes. Healthy, that is a few quick
    # writes; during an outage a batch fails after one operation timeout and the rest is
    # given up, so two of them bound it (the grace was spent above, on requests).
    await services.plays.stop(timeout_seconds=2 * config.mongodb_timeout_ms / 1000)
    await app.loop_lag.stop()
    await close(client)
    app.metrics.stop()
    if traces is not None:  # the spans still queued, within the exporter's own timeout
        await traces.stop(timeout_seconds=TRACES_FLUSH_SECONDS)
    executor.shutdown(wait=False, cancel_futures=True)
    app.access_log.flush()
    log.info("stopped")


def run_workers(config: Config) -> int:
    """WEB_CONCURRENCY workers accepting on one socket bound before the fork, sharing
    their metrics through files in one directory (PROMETHEUS_MULTIPROC_DIR, or a fresh
    temporary one that is removed when the workers have stopped)."""
    sockets = bind_sockets(config.port, address=config.host, backlog=config.listen_backlog)
    metrics_dir = config.prometheus_multiproc_dir or tempfile.mkdtemp(prefix="video-app-metrics-")
    for stale in Path(metrics_dir).glob("*.db"):  # a previous run's counts must not add to ours
        stale.unlink()
    share_between_processes(metrics_dir)
    try:
        children: dict[int, int] = {}
        for index in range(config.web_concurrency):
            pid = os.fork()
            if pid == 0:
                os._exit(_worker(config, sockets, index, metrics_dir))
            children[pid] = index
        for sock in sockets:
            sock.close()  # the workers accept; the parent never does
        return _supervise(config, children, metrics_dir)
    finally:
        if not config.prometheus_multiproc_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _worker(config: Config, sockets: list, index: int, metrics_dir: str) -> int:
    code = 1
    try:
        asyncio.run(serve(config, sockets=sockets, worker=index, metrics_dir=metrics_dir))
        code = 0
    except ConfigError as error:
        log.error(f"refusing to start: {error}")
        code = 2
    except BaseException:
        log.exception("worker failed", extra={"worker": index})
    finally:
        logging.shutdown()
        sys.stderr.flush()
    return code


def _supervise(config: Config, children: dict[int, int], metrics_dir: str) -> int:
    stopping_since: float | None = None
    killed = False

    def stop_all(signum=None, frame=None) -> None:
        nonlocal stopping_since
        if stopping_since is None:
            stopping_since = time.monotonic()
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    log.info("workers started", extra={"workers": len(children), "pids": sorted(children),
                                       "metrics_dir": metrics_dir})
    code = 0
    deadline = config.shutdown_grace_seconds + WORKER_EXIT_MARGIN_SECONDS
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            if not killed and stopping_since is not None and time.monotonic() - stopping_since > deadline:
                log.error("workers still running after the grace period; killing them",
                          extra={"pids": sorted(children)})
                for remaining in children:
                    os.kill(remaining, signal.SIGKILL)
                code, killed = 1, True
            time.sleep(0.05)
            continue
        index = children.pop(pid, None)
        if index is None:
            continue
        mark_process_dead(pid, metrics_dir)  # its in-flight requests and queues no longer count
        exit_code = os.waitstatus_to_exitcode(status)
        if stopping_since is None:
            log.error("a worker exited on its own; stopping the others",
                      extra={"worker": index, "exit_code": exit_code})
            code = exit_code if exit_code > 0 else 1
            stop_all()
        elif exit_code != 0:
            code = code or (exit_code if exit_code > 0 else 1)
    log.info("stopped", extra={"exit_code": code})
    return code


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description="The video app API.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("serve", help="serve the API (what no command does)")
    verify = commands.add_parser("verify-email", help="mark an account's address verified, without a mail")
    verify.add_argument("address", help="the account's email address")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    configure_logging()
    # Before the configuration is read: the environment wins over .env, .env over config.yaml.
    read_dotenv()
    try:
        config = load_config()
        logging.getLogger().setLevel(config.log_level.upper())
        if arguments.command == "verify-email":
            return asyncio.run(run_verify_email(config, arguments.address))

        # Before any loop exists: the forked workers inherit the choice.
        use_event_loop(config.event_loop)
        if config.web_concurrency > 1:
            return run_workers(config)
        keep_in_process()
        asyncio.run(serve(config))
    except ConfigError as error:
        log.error(f"refusing to start: {error}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
