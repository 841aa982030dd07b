"""The route table and the Application that holds the shared resources."""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import sys
from concurrent.futures import Executor
from typing import Any

import tornado.web

from handlers.accounts import (
    AppleSignInHandler,
    GoogleSignInHandler,
    LoginHandler,
    LogoutHandler,
    ProfileHandler,
    SignupHandler,
)
from handlers.admin import AdminStatsHandler, AdminVideoHandler, AdminVideosHandler
from handlers.base import NotFoundHandler
from handlers.console.accounts import ConsoleLoginHandler, ConsoleLogoutHandler
from handlers.console.admin import (
    ConsoleAddVideoHandler,
    ConsoleDeleteVideoHandler,
    ConsoleStatsHandler,
    ConsoleVideoHandler,
    ConsoleVideosHandler,
)
from handlers.console.base import CONSOLE_ASSET_PATTERN, STATIC, ConsoleAsset
from handlers.health import LivenessHandler, ReadinessHandler, RootHandler
from handlers.library import HistoryHandler, ProgressHandler, VideoHandler, VideosHandler
from handlers.mailboxes import (
    EmailChangeConfirmHandler,
    EmailChangeHandler,
    VerifyEmailConfirmHandler,
    VerifyEmailHandler,
)
from handlers.openapi import OpenApiHandler
from handlers.operations import DOCS_ASSET_PATTERN, DocsAssetHandler, DocsHandler, MetricsHandler
from handlers.playback import DashboardHandler, PlayHandler, StreamHandler
from handlers.sessions import (
    PasswordHandler,
    PasswordResetConfirmHandler,
    PasswordResetHandler,
    RefreshHandler,
    SessionHandler,
    SessionsHandler,
)
from server.config import Config
from server.connection import HTTPServer
from server.logs import AccessLog
from server.looplag import LoopLagMonitor
from server.metrics import ConnectionCounts, Metrics
from services.accounts.account_deletion import AccountDeletion, UserDataOwner
from services.accounts.accounts import Accounts
from services.accounts.identities import IdentityStore
from services.accounts.identity import Identity
from services.accounts.identity_tokens import IdentityTokens, build_identity_tokens
from services.accounts.mail_tokens import MailTokenStore
from services.accounts.mailboxes import Mailboxes
from services.accounts.password_reset import PasswordResets, ResetTokenStore
from services.accounts.passwords import PasswordHasher
from services.accounts.refresh_tokens import RefreshTokenStore
from services.accounts.sessions import AuthTokenCodec, SessionStore
from services.accounts.throttle import LoginThrottle, MailRequestThrottle, PasswordResetThrottle, SignupThrottle
from services.accounts.users import UserStore
from services.catalog.admin import CatalogAdmin
from services.catalog.cursors import CursorCodec
from services.catalog.library import Library
from services.catalog.playback import TOKEN_REUSE_SECONDS, Playback, PlaybackSigner
from services.catalog.plays import PlayStore
from services.catalog.progress import WatchHistory
from services.catalog.rollups import PlayRollups
from services.catalog.videos import VideoCatalog
from services.common.datastore import Database, Store, guarded
from services.common.durability import DurableDatabase
from services.common.health import DatabaseHealth
from services.common.mail import FileMailer, Mailer, Outbox, SmtpMailer, parse_smtp_url

VIDEO_ID = r"(?P<video_id>[^/]+)"

# Tornado tries the rules in order, a regex match each: what every app launch and every
# play asks for comes first. No two patterns overlap, so the order changes nothing else.
ROUTES: list[tuple[Any, ...]] = [
    (r"/dashboard", DashboardHandler),
    (rf"/video/{VIDEO_ID}/stream", StreamHandler),
    (rf"/video/{VIDEO_ID}/play", PlayHandler),
    (r"/auth/signup", SignupHandler),
    (r"/auth/login", LoginHandler),
    (r"/auth/oauth/google", GoogleSignInHandler),
    (r"/auth/oauth/apple", AppleSignInHandler),
    (r"/auth/me", ProfileHandler),
    (r"/auth/logout", LogoutHandler),
    (r"/auth/refresh", RefreshHandler),
    (r"/auth/sessions", SessionsHandler),
    (r"/auth/sessions/(?P<session_id>[^/]+)", SessionHandler),
    (r"/auth/password", PasswordHandler),
    (r"/auth/password-reset", PasswordResetHandler),
    (r"/auth/password-reset/confirm", PasswordResetConfirmHandler),
    (r"/auth/verify-email", VerifyEmailHandler),
    (r"/auth/verify-email/confirm", VerifyEmailConfirmHandler),
    (r"/auth/email", EmailChangeHandler),
    (r"/auth/email/confirm", EmailChangeConfirmHandler),
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
    (r"/docs", DocsHandler),
    (r"/metrics", MetricsHandler),
]
# The operator console's HTML pages (handlers/console/): routes of this process, but not API
# operations, so not in the OpenAPI document.
PAGE_ROUTES: list[tuple[Any, ...]] = [
    (r"/console", ConsoleVideosHandler),
    (r"/console/login", ConsoleLoginHandler),
    (r"/console/logout", ConsoleLogoutHandler),
    (r"/console/add", ConsoleAddVideoHandler),
    (rf"/console/videos/{VIDEO_ID}", ConsoleVideoHandler),
    (rf"/console/videos/{VIDEO_ID}/delete", ConsoleDeleteVideoHandler),
    (r"/console/stats", ConsoleStatsHandler),
]
# The /docs page's and the console's own files: served, but not API operations (not in the
# OpenAPI document).
ASSET_ROUTES: list[tuple[Any, ...]] = [
    (DOCS_ASSET_PATTERN, DocsAssetHandler, {"path": ""}),
    (CONSOLE_ASSET_PATTERN, ConsoleAsset, {"path": str(STATIC)}),
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Services:
    """What the handlers and the server use, all built by build_services()."""

    accounts: Accounts
    password_reset: PasswordResets
    mailboxes: Mailboxes
    playback: Playback
    library: Library
    admin: CatalogAdmin
    catalog: VideoCatalog  # also for the seeds
    health: DatabaseHealth
    plays: PlayStore  # start() it when serving, stop() it (a last flush) when shutting down
    watch_history: WatchHistory
    passwords: PasswordHasher  # for its ``waiting`` metric
    identity_tokens: IdentityTokens  # Google's and Apple's keys (tests reach their caches)
    stores: tuple[Store, ...]  # every store, each declaring its indexes

    async def ensure_indexes(self) -> None:
        for store in self.stores:
            await store.ensure_indexes()


def build_services(config: Config, db: Database, executor: Executor) -> Services:
    # Every store reaches the database through the guard: outages become DatabaseUnavailable.
    # Credentials and their revocations also get majority writes and primary reads
    # (services/common/durability.py); the catalog and the health ping use the database as the
    # connection string configures it.
    durable_db = guarded(DurableDatabase(db, config))
    db = guarded(db)
    # A session lives as long as a token of it can: its access token, or its refresh
    # token (each refresh extends it by this much again).
    sessions = SessionStore(durable_db, ttl_seconds=max(config.jwt_ttl_seconds, config.refresh_ttl_seconds))
    passwords = PasswordHasher(config.bcrypt_rounds, executor, queue_limit=config.password_queue_limit)
    users = UserStore(durable_db, passwords)
    catalog = VideoCatalog(db, cache_seconds=config.catalog_cache_seconds)
    throttle = LoginThrottle(
        durable_db,
        max_per_account=config.login_max_failures_per_account,
        max_per_address=config.login_max_failures_per_address,
        window_seconds=config.login_failure_window_seconds,
    )
    signup_throttle = SignupThrottle(
        durable_db, max_per_address=config.signup_max_per_address, window_seconds=config.signup_window_seconds)
    refresh_tokens = RefreshTokenStore(durable_db, ttl_seconds=config.refresh_ttl_seconds,
                                       grace_seconds=config.refresh_reuse_grace_seconds,
                                       signing_keys=config.jwt_secrets)
    reset_tokens = ResetTokenStore(durable_db, ttl_seconds=config.password_reset_ttl_seconds)
    reset_throttle = PasswordResetThrottle(
        durable_db, max_per_email=config.password_reset_max_per_email,
        max_per_address=config.password_reset_max_per_address, window_seconds=config.password_reset_window_seconds)
    verification_tokens = MailTokenStore(durable_db, "email_verification_tokens",
                                         ttl_seconds=config.email_verify_ttl_seconds)
    change_tokens = MailTokenStore(durable_db, "email_change_tokens", ttl_seconds=config.email_verify_ttl_seconds)
    mail_throttle = MailRequestThrottle(
        durable_db, max_per_subject=config.password_reset_max_per_email,
        max_per_address=config.password_reset_max_per_address, window_seconds=config.password_reset_window_seconds)
    rollups = PlayRollups(db)
    plays = PlayStore(db, catalog, rollups, buffer_size=config.plays_buffer_size,
                      flush_seconds=config.plays_flush_seconds, retention_days=config.plays_retention_days)
    watch_history = WatchHistory(db, rollups)
    identities = IdentityStore(durable_db)
    identity_tokens = build_identity_tokens(
        google_client_ids=config.google_client_ids, apple_client_ids=config.apple_client_ids,
        google_jwks_url=config.google_jwks_url, apple_jwks_url=config.apple_jwks_url,
        timeout_seconds=config.jwks_timeout_seconds)
    # Everything of a user that deletion removes, sessions first (so logins end first).
    user_data_owners: list[UserDataOwner] = [sessions, refresh_tokens, reset_tokens, verification_tokens, change_tokens,
                                             identities, watch_history, plays]
    mailer = _mailer(config)
    identity = Identity(users, throttle, identities, identity_tokens)
    mailboxes = Mailboxes(
        users=users, identity=identity, verification_tokens=verification_tokens, change_tokens=change_tokens,
        reset_tokens=reset_tokens, throttle=mail_throttle, outbox=Outbox(), mailer=mailer,
        mail_from=config.mail_from, verify_url=config.email_verify_url, change_url=config.email_change_url,
        ttl_seconds=config.email_verify_ttl_seconds,
    )
    accounts = Accounts(users=users, sessions=sessions,
                        tokens=AuthTokenCodec(config.jwt_secrets, config.jwt_ttl_seconds),
                        refresh_tokens=refresh_tokens, identity=identity, signup_throttle=signup_throttle,
                        deletion=AccountDeletion(users, user_data_owners), mailboxes=mailboxes,
                        reset_tokens=reset_tokens, identities=identities, identity_tokens=identity_tokens,
                        require_email_verification=config.require_email_verification)
    password_reset = PasswordResets(
        users, reset_tokens, accounts.end_sessions, mailer, throttle=reset_throttle,
        mail_from=config.mail_from, reset_url=config.password_reset_url,
        ttl_seconds=config.password_reset_ttl_seconds,
    )
    playback = Playback(
        catalog,
        PlaybackSigner(config.jwt_secrets, config.playback_ttl_seconds, reuse_seconds=TOKEN_REUSE_SECONDS),
        sessions,
        config.dashboard_video_count,
        plays,
    )
    cursors = CursorCodec(config.jwt_secrets)
    stores = (users, sessions, catalog, throttle, signup_throttle, refresh_tokens, reset_tokens,
              reset_throttle, verification_tokens, change_tokens, mail_throttle, plays, watch_history, identities,
              rollups)
    return Services(
        accounts=accounts,
        password_reset=password_reset,
        mailboxes=mailboxes,
        playback=playback,
        library=Library(catalog, playback, watch_history, cursors),
        admin=CatalogAdmin(users, catalog, plays, cursors, config.admin_emails),
        catalog=catalog,
        health=DatabaseHealth(db),
        plays=plays,
        watch_history=watch_history,
        passwords=passwords,
        identity_tokens=identity_tokens,
        stores=stores,
    )


def _mailer(config: Config) -> Mailer | None:
    """SMTP when configured; .eml files in MAIL_DIR in development; none in production
    (reset and verification mails unavailable: see services/accounts/mailboxes.py)."""
    if config.smtp_url:
        return SmtpMailer(parse_smtp_url(config.smtp_url), config.smtp_timeout_seconds)
    return None if config.is_production else FileMailer(config.mail_dir)


class InFlight:
    """The requests being handled, so that shutdown can wait for them to finish. Leaving
    twice, or without entering, changes nothing.

    BaseHandler reports each request's two ends, because the handler is the one object
    Tornado tells about both: ``on_finish`` once the answer is complete, and
    ``on_connection_close`` when the client leaves first, which may be after the body was
    read, when Tornado tells no one else (and a request abandoned while its body streams
    in ends with no answer, so ``log_function`` never sees it). Counting in the routing
    (``find_handler``) instead would miss those ends, or need Tornado's private handler
    delegate, and would wrap every request in one more object."""

    def __init__(self):
        self._requests: set = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return len(self._requests)

    def enter(self, request) -> None:
        self._requests.add(request)
        self._idle.clear()

    def leave(self, request) -> None:
        self._requests.discard(request)
        if not self._requests:
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
    def __init__(self, config: Config, services: Services, access_log: AccessLog | None = None,
                 metrics_dir: str | None = None):
        """``metrics_dir``: where the workers share their metrics (server/metrics.py); None: one process."""
        self.config = config
        self.services = services
        self.inflight = InFlight()
        self.connections = ConnectionCounts()  # kept by the HTTP server (make_http_server)
        # Beside the other log lines, on stderr.
        self.access_log = access_log or AccessLog(sys.stderr, trust_proxy=config.trust_proxy)
        self.metrics = Metrics(
            ROUTES + PAGE_ROUTES + ASSET_ROUTES,
            in_flight=lambda: self.inflight.count,
            password_checks_waiting=lambda: services.passwords.waiting,
            plays_dropped=lambda: services.plays.dropped + services.plays.lost,
            watch_time_dropped=lambda: services.plays.watch_reports_dropped,
            shared_dir=metrics_dir,
            connections=self.connections,
        )
        # Started by serve() (server/__main__.py): it needs the running loop.
        self.loop_lag = LoopLagMonitor(self.metrics)
        super().__init__(
            ROUTES + PAGE_ROUTES + ASSET_ROUTES,
            default_handler_class=NotFoundHandler,
            log_function=self._request_finished,
            # No XSRF cookies: clients authenticate with a bearer header, which a
            # cross-site form cannot send. The console's forms check theirs
            # (handlers/console/base.py ConsoleHandler.form).
            xsrf_cookies=False,
        )

    def _request_finished(self, handler) -> None:
        """Tornado's log_function: every finished request is counted, then logged."""
        self.metrics.observe(handler)
        self.access_log(handler)


# How far past MAX_BODY_BYTES a chunked body (one with no declared length) is read and
# dropped, so that its sender gets a JSON 413, before the connection is simply cut off.
CHUNKED_BODY_DISCARD_FACTOR = 4


# File descriptors MAX_CONNECTIONS leaves for everything else: the database's connection
# pool and monitors (100 + 2 a member by default), the log, mail, the listening sockets.
DESCRIPTOR_MARGIN = 256


def connection_cap(max_connections: int) -> int | None:
    """MAX_CONNECTIONS, or when it is 0 the soft open-files limit less DESCRIPTOR_MARGIN
    (at least half the limit); None (no cap) when the limit is unlimited."""
    if max_connections > 0:
        return max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(soft - DESCRIPTOR_MARGIN, soft // 2)


def make_http_server(app: VideoApp) -> HTTPServer:
    """The HTTP server with the limits that keep slow or oversized requests from tying it up.
    Handlers enforce MAX_BODY_BYTES themselves (a JSON 413, without keeping the body)."""
    config = app.config
    return HTTPServer(
        app,
        max_connections=connection_cap(config.max_connections),
        connections=app.connections,
        max_body_size=config.max_body_bytes * CHUNKED_BODY_DISCARD_FACTOR,
        body_timeout=config.body_timeout_seconds,
        idle_connection_timeout=config.idle_connection_timeout_seconds,
    )
