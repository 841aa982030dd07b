"""The route table and the Application that holds the shared resources."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from concurrent.futures import Executor

import tornado.web
from tornado.httpserver import HTTPServer

from handlers.accounts import LoginHandler, LogoutHandler, ProfileHandler, SignupHandler
from handlers.admin import AdminStatsHandler, AdminVideoHandler, AdminVideosHandler
from handlers.base import NotFoundHandler
from handlers.catalog import HistoryHandler, ProgressHandler, VideoHandler, VideosHandler
from handlers.health import LivenessHandler, ReadinessHandler, RootHandler
from handlers.openapi import OpenApiHandler
from handlers.videos import DashboardHandler, PlayHandler, StreamHandler
from server.config import Config
from server.logs import AccessLog
from services.accounts import Accounts
from services.admin import CatalogAdmin
from services.cursors import CursorCodec
from services.health import DatabaseHealth
from services.library import Library
from services.passwords import PasswordHasher
from services.playback import TOKEN_REUSE_SECONDS, Playback, PlaybackSigner
from services.plays import PlayStore
from services.progress import WatchHistory
from services.sessions import AuthTokenCodec, SessionStore
from services.throttle import LoginThrottle
from services.users import UserStore
from services.videos import VideoCatalog

VIDEO_ID = r"(?P<video_id>[^/]+)"

# Tornado tries the rules in order, a regex match each: what every app launch and every
# play asks for comes first. No two patterns overlap, so the order changes nothing else.
ROUTES = [
    (r"/dashboard", DashboardHandler),
    (rf"/video/{VIDEO_ID}/stream", StreamHandler),
    (rf"/video/{VIDEO_ID}/play", PlayHandler),
    (r"/auth/signup", SignupHandler),
    (r"/auth/login", LoginHandler),
    (r"/auth/me", ProfileHandler),
    (r"/auth/logout", LogoutHandler),
    (r"/", RootHandler),
    (r"/healthz", LivenessHandler),
    (r"/readyz", ReadinessHandler),
    (r"/openapi\.json", OpenApiHandler),
    (r"/videos", VideosHandler),
    (rf"/videos/{VIDEO_ID}", VideoHandler),
    (rf"/video/{VIDEO_ID}/progress", ProgressHandler),
    (r"/me/history", HistoryHandler),
    (r"/admin/videos", AdminVideosHandler),
    (rf"/admin/videos/{VIDEO_ID}", AdminVideoHandler),
    (r"/admin/stats", AdminStatsHandler),
]


@dataclasses.dataclass(frozen=True)
class Services:
    accounts: Accounts
    playback: Playback
    catalog: VideoCatalog
    health: DatabaseHealth
    _stores: tuple
    library: Library
    admin: CatalogAdmin
    plays: PlayStore  # start() it when serving, stop() it (a last flush) when shutting down
    watch_history: WatchHistory

    async def ensure_indexes(self) -> None:
        for store in self._stores:
            await store.ensure_indexes()


def build_services(config: Config, db, executor: Executor) -> Services:
    sessions = SessionStore(db, ttl_seconds=config.jwt_ttl_seconds)
    users = UserStore(db, PasswordHasher(config.bcrypt_rounds, executor))
    catalog = VideoCatalog(db, cache_seconds=config.catalog_cache_seconds)
    throttle = LoginThrottle(
        db,
        max_per_account=config.login_max_failures_per_account,
        max_per_address=config.login_max_failures_per_address,
        window_seconds=config.login_failure_window_seconds,
    )
    accounts = Accounts(users, sessions, AuthTokenCodec(config.jwt_secrets, config.jwt_ttl_seconds), throttle)
    plays = PlayStore(db, catalog, buffer_size=config.plays_buffer_size, flush_seconds=config.plays_flush_seconds)
    playback = Playback(
        catalog,
        PlaybackSigner(config.jwt_secrets, config.playback_ttl_seconds, reuse_seconds=TOKEN_REUSE_SECONDS),
        sessions,
        config.dashboard_video_count,
        plays,
    )
    watch_history = WatchHistory(db)
    cursors = CursorCodec(config.jwt_secrets)
    return Services(
        accounts, playback, catalog, DatabaseHealth(db), (users, sessions, catalog, throttle, plays, watch_history),
        library=Library(catalog, playback, watch_history, cursors),
        admin=CatalogAdmin(users, catalog, plays, cursors, config.admin_emails),
        plays=plays,
        watch_history=watch_history,
    )


class InFlight:
    """Counts requests being handled, so shutdown can wait for them to finish."""

    def __init__(self):
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, grace_seconds: float) -> bool:
        """True once no request is in flight; False if that took longer than the grace."""
        try:
            async with asyncio.timeout(grace_seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


class VideoApp(tornado.web.Application):
    def __init__(self, config: Config, services: Services, access_log: AccessLog | None = None):
        self.config = config
        self.services = services
        self.inflight = InFlight()
        # Beside the other log lines, on stderr.
        self.access_log = access_log or AccessLog(sys.stderr)
        super().__init__(
            ROUTES,
            default_handler_class=NotFoundHandler,
            log_function=self.access_log,
            # No XSRF cookies: clients authenticate with a bearer header, which a
            # cross-site form cannot send.
            xsrf_cookies=False,
        )


# How far past MAX_BODY_BYTES a chunked body (one with no declared length) is read and
# dropped, so that its sender gets a JSON 413, before the connection is simply cut off.
CHUNKED_BODY_DISCARD_FACTOR = 4


def make_http_server(app: VideoApp) -> HTTPServer:
    """The HTTP server with the limits that keep slow or oversized requests from tying it up.
    Handlers enforce MAX_BODY_BYTES themselves (a JSON 413, without keeping the body)."""
    config = app.config
    return HTTPServer(
        app,
        max_body_size=config.max_body_bytes * CHUNKED_BODY_DISCARD_FACTOR,
        body_timeout=config.body_timeout_seconds,
        idle_connection_timeout=config.idle_connection_timeout_seconds,
    )
