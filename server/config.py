"""The one configuration object, built once at start-up and passed down.

Each setting is declared once, as a field of ``Config`` (``setting()``: default, constraint,
help). ``config.yaml`` (the defaults operators read and may change), ``.env.example`` and the
README's configuration table are generated from them: ``python -m server.settings_docs``.
At start-up, defaults come from ``config.yaml``; every key can be overridden by an
environment variable of the same name in upper case. Secrets come from the environment only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from server.runtime import EVENT_LOOPS
from services.accounts.identity_tokens import allowed_jwks_url
from services.common.mail import parse_smtp_url

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
MIN_SECRET_BYTES = 32
MONGODB_DRIVERS = ("motor", "pymongo")


class ConfigError(Exception):
    """The configuration cannot run the service; the message says what to fix."""


POSITIVE = "positive"
NOT_NEGATIVE = "not negative"
Check = str | tuple[int, int]  # POSITIVE, NOT_NEGATIVE, or an inclusive (low, high) range


def setting(default: Any, help: str, *, check: Check | None = None, row: str | None = None,
            example: str | None = None, secret: bool = False,
            variables: dict[str, tuple[str | None, str]] | None = None) -> Any:
    """A Config field with what documents and checks it: ``help`` (one line), ``check`` (see
    Check; other constraints are written in _checked()), ``row`` (settings sharing a README row),
    ``example`` (.env.example's value, if not the default), ``secret`` (from the environment
    only, never config.yaml), ``variables`` (environment variables other than the upper-case
    name, each with its default, None for none, and its help)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "check": check, "row": row, "example": example,
        "secret": secret or variables is not None, "variables": variables})


@dataclasses.dataclass(frozen=True)
class Config:
    # Each setting once: its type, default, constraint (``check``) and a one-line help. The
    # README's configuration table, config.yaml and .env.example are generated from these
    # (python -m server.settings_docs); tests/server/test_settings_docs.py fails when they drift.
    # ``row`` groups settings into one README row; ``example`` is .env.example's value where it
    # differs from the default.
    app_env: str = setting(
        "development", "`development` or `production`; production refuses to start without `JWT_SECRET` "
        "(≥ 32 bytes), `MONGODB_URI`, an explicit `CORS_ORIGINS` and `METRICS_TOKEN` (or `METRICS_PUBLIC=true`), "
        "listing every problem at once")
    host: str = setting(
        "127.0.0.1", "address to listen on: `0.0.0.0` for every interface (a phone on the LAN, a container; "
        "the Procfile and the Dockerfile set it)", row="listen")
    port: int = setting(8000, "port to listen on (Heroku sets it)", check=POSITIVE, row="listen")
    web_concurrency: int = setting(
        1, "worker processes sharing the port (Heroku sets it by dyno size); above 1 needs `MONGODB_URI`")
    log_level: str = setting(
        "info", "`debug`, `info`, `warning` or `error`; `warning` and above leave out the access log")
    mongodb_uri: str = setting(
        "", "MongoDB connection string; empty: the embedded in-memory store (data lost when the process stops)",
        row="mongodb")
    mongodb_database: str = setting("video_app", "database used when the URI names none", row="mongodb")
    mongodb_timeout_ms: int = setting(
        2500, "connect and per-operation timeout (majority waits included): during an outage requests "
        "answer 503 within this", check=POSITIVE, row="mongodb")
    mongodb_driver: str = setting(
        "motor", "`motor`, or `pymongo` for PyMongo's own `AsyncMongoClient`: see "
        "[Leaving Motor](server/README.md#leaving-motor)", row="mongodb")
    # uvloop | asyncio: the event loop (uvloop falls back to asyncio's where it cannot be imported).
    event_loop: str = setting(
        "uvloop", "`uvloop`, or `asyncio` for asyncio's own loop (used anyway, with a log line, where uvloop does "
        "not install)")

    # Newest first: the first secret signs, every one of them verifies (key rotation).
    jwt_secrets: tuple[str, ...] = setting((), "", variables={
        "JWT_SECRET": (None, "signs auth tokens and (with its own salt) playback links and cursors; in "
                             "development a random one per process, with a warning"),
        "JWT_PREVIOUS_SECRETS": ("", "comma-separated former secrets, still accepted, so a rotation logs "
                                     "nobody out"),
    })
    bcrypt_rounds: int = setting(12, "bcrypt work factor (4 to 31)", check=(4, 31), row="bcrypt")
    bcrypt_threads: int = setting(
        3, "password checks at once beside the event loop (`0`: one per core; see `bench/README.md`)",
        check=NOT_NEGATIVE, row="bcrypt")
    password_queue_limit: int = setting(
        16, "password checks queued or running at once; past it 503 with `Retry-After: 2` (a sign-up past "
        "half of it)", check=POSITIVE)
    jwt_ttl_seconds: int = setting(86400, "auth token lifetime (`expires_in`)", check=POSITIVE, row="lifetimes")
    refresh_ttl_seconds: int = setting(
        2592000, "a refresh token's life from its issue (30 days)", check=POSITIVE, row="refresh")
    refresh_reuse_grace_seconds: float = setting(
        10, "a retried refresh within the grace gets the same new pair", check=NOT_NEGATIVE, row="refresh")
    playback_ttl_seconds: int = setting(3600, "playback link lifetime", check=POSITIVE, row="lifetimes")
    dashboard_video_count: int = setting(2, "active videos on the dashboard", check=NOT_NEGATIVE, row="dashboard")
    catalog_cache_seconds: float = setting(
        5, "how long the dashboard's list of active videos is cached (`0`: read on every request; playback "
        "always reads the video)", check=NOT_NEGATIVE, row="dashboard")
    # Operators: the accounts with these emails may use /admin (normalised lower-case).
    admin_emails: tuple[str, ...] = setting(
        (), "comma-separated emails of the operators' accounts, which may use `/admin` (read at start-up)")
    plays_buffer_size: int = setting(
        10000, "plays waiting in memory (past it new ones are dropped and counted)", check=POSITIVE, row="plays")
    plays_flush_seconds: float = setting(
        1, "how often buffered plays are written", check=POSITIVE, row="plays")
    plays_retention_days: int = setting(
        400, "raw plays are removed after this many days (TTL index); the per-day rollups stay", check=POSITIVE,
        row="plays")

    cors_origins: tuple[str, ...] = setting(
        ("*",), "comma-separated allowed browser origins; `*` is refused in production",
        example="http://localhost:8081,http://localhost:19006")
    public_base_url: str = setting(
        "", "public address used to build `play_url` (e.g. https://api.example.com); empty: taken from the request")
    trust_proxy: bool = setting(
        False, "behind Heroku's router or a load balancer: client address from `X-Forwarded-For`, scheme from "
        "`X-Forwarded-Proto`; leave off otherwise")

    max_body_bytes: int = setting(65536, "larger request bodies get a JSON 413", check=POSITIVE, row="connections")
    body_timeout_seconds: float = setting(
        10, "a body still arriving after this is dropped", row="timeouts")
    idle_connection_timeout_seconds: float = setting(
        60, "idle keep-alive connections are closed after this", row="timeouts")
    # Tornado's own default is 128: a crowd connecting at once would otherwise see dropped
    # SYNs and 1-3 s retries.
    listen_backlog: int = setting(
        2048, "connections the kernel queues before the server accepts them (Tornado's 128 is too few for a "
        "crowd connecting at once; Linux caps it at `net.core.somaxconn`)", check=POSITIVE, row="connections")
    max_connections: int = setting(
        0, "open connections at most; past it a new one is closed at once (counted in `/metrics`); `0`: the "
        "open-files limit less 256 (server/app.py `connection_cap`)", check=NOT_NEGATIVE, row="connections")
    shutdown_grace_seconds: float = setting(
        10, "on SIGTERM, how long requests in flight may take to finish (Heroku allows 30)")

    login_max_failures_per_account: int = setting(
        5, "login attempts per email within the window before 429", check=POSITIVE, row="login")
    login_max_failures_per_address: int = setting(
        50, "login attempts (password, Google or Apple) per client address within the window before 429",
        check=POSITIVE, row="login")
    login_failure_window_seconds: int = setting(
        900, "the login throttle's window", check=POSITIVE, row="login")
    signup_max_per_address: int = setting(
        20, "sign-ups per client address within the window before 429 (generous: carrier NAT)",
        check=POSITIVE, row="signup")
    signup_window_seconds: int = setting(600, "the sign-up throttle's window", check=POSITIVE, row="signup")
    password_reset_max_per_email: int = setting(
        3, "reset requests per email within the window before 429", check=POSITIVE, row="reset_throttle")
    password_reset_max_per_address: int = setting(
        20, "reset requests per client address within the window before 429", check=POSITIVE,
        row="reset_throttle")
    password_reset_window_seconds: int = setting(
        3600, "the reset throttle's window", check=POSITIVE, row="reset_throttle")
    password_reset_ttl_seconds: int = setting(
        1800, "a reset link's lifetime", check=POSITIVE, row="reset")
    password_reset_url: str = setting(
        "videoapp://reset?token={token}", "the link in the mail (`{token}` is replaced)",
        row="reset")
    smtp_url: str = setting(
        "", "outgoing mail: `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…:465`, from the "
        "environment; empty: development writes each mail to `MAIL_DIR`, production answers 503",
        row="mail")
    smtp_timeout_seconds: float = setting(10, "how long one mail may take to send", check=POSITIVE, row="mail")
    mail_from: str = setting("Video App <no-reply@example.com>", "the sender of the service's mail", row="mail")

    # Empty: /metrics is open (keep it off the public internet some other way).
    metrics_token: str = setting(
        "", "when set, `GET /metrics` needs `Authorization: Bearer <it>`; production needs it or `METRICS_PUBLIC`",
        secret=True)
    # Production refuses an open /metrics unless this says the port is on a private network.
    metrics_public: bool = setting(
        False, "`true`: production may start with `/metrics` open (no `METRICS_TOKEN`), for a private network",
        row="metrics")
    # Where workers share their metrics (WEB_CONCURRENCY above 1). Empty: a fresh temporary
    # directory the server makes before forking and removes when it stops.
    prometheus_multiproc_dir: str = setting(
        "", "with `WEB_CONCURRENCY` above 1, an existing directory where workers share their metrics (emptied at "
        "start); empty: a temporary one the server makes and removes", row="metrics")

    # Proven mailboxes and change of address (services/accounts/mailboxes.py).
    email_verify_url: str = setting(
        "videoapp://verify?token={token}", "the link mailed to verify an address (`{token}` is replaced)",
        row="mailbox_links")
    email_change_url: str = setting(
        "videoapp://change-email?token={token}", "the link mailed to confirm a change of address",
        row="mailbox_links")
    email_verify_ttl_seconds: int = setting(
        86400, "how long those two links stay valid", check=POSITIVE, row="mailbox_links")
    require_email_verification: bool = setting(
        False, "`true`: login is 403 until the address is verified, and sign-up answers 202 whether or not the "
        "address is registered", row="verification")
    mail_dir: str = setting(
        ".mail", "development without `SMTP_URL`: each mail is written whole there as an `.eml` file (newest 500 "
        "kept); never in production", row="verification")

    # Sign in with Google / Apple: the app's client ids (the ID tokens' audiences); none: off (404).
    google_client_ids: tuple[str, ...] = setting(
        (), "comma-separated client ids Google's ID tokens must be issued for (README, Sign in with Apple and "
        "Google); empty: that sign-in is off (404)", row="oauth")
    apple_client_ids: tuple[str, ...] = setting(
        (), "comma-separated client ids (bundle id, Services ID) Apple's ID tokens must be issued for; empty: off",
        row="oauth")
    google_jwks_url: str = setting(
        "https://www.googleapis.com/oauth2/v3/certs", "where Google's signing keys are fetched (https; http only "
        "to localhost)", row="oauth")
    apple_jwks_url: str = setting(
        "https://appleid.apple.com/auth/keys", "where Apple's signing keys are fetched (https; http only to "
        "localhost)", row="oauth")
    jwks_timeout_seconds: float = setting(
        5, "how long fetching a provider's keys may take (then 503)", check=POSITIVE, row="oauth")

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def uses_embedded_store(self) -> bool:
        return not self.mongodb_uri

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# Settings from the environment only, never config.yaml (secrets).
_NOT_FROM_FILE = {name for name, f in _FIELDS.items() if f.metadata["secret"]}
LOG_LEVELS = ("debug", "info", "warning", "error")


def _coerce(name: str, raw):
    """Turns a YAML or environment value into the field's type, or says what is wrong."""
    kind = _FIELDS[name].type
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "tuple[str, ...]":
            items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return "" if raw is None else str(raw).strip()
    except ValueError:
        raise ConfigError(f"{name.upper()} must be a {kind}, not {raw!r}") from None


def read_dotenv(path: Path | str = ".env") -> bool:
    """Local runs: the variables of ``.env`` in the working directory, as ``heroku local``
    and honcho read them. Variables already in the environment win over the file, and the
    file wins over config.yaml (load_config reads the environment). True if a file was read."""
    from dotenv import load_dotenv

    return load_dotenv(path, override=False)


def load_config(
    env: Mapping[str, str] | None = None,
    path: Path | str | None = DEFAULT_CONFIG_PATH,
    **overrides,
) -> Config:
    """Builds the Config: file defaults, then environment, then explicit overrides."""
    env = os.environ if env is None else env
    values: dict = {}
    problems: list[str] = []  # values that cannot be read, reported with every other problem
    if path is not None:
        with open(path, encoding="utf-8") as fh:
            file_values = yaml.safe_load(fh) or {}
        unknown = set(file_values) - set(_FIELDS) | (set(file_values) & _NOT_FROM_FILE)
        if unknown:
            raise ConfigError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in file_values.items()})
    for name in sorted(_FIELDS.keys() - _NOT_FROM_FILE):
        if name.upper() in env:
            try:
                values[name] = _coerce(name, env[name.upper()])
            except ConfigError as error:
                problems.append(str(error))

    current = env.get("JWT_SECRET", "")
    previous = _coerce("jwt_secrets", env.get("JWT_PREVIOUS_SECRETS", ""))
    values["jwt_secrets"] = tuple(s for s in (current, *previous) if s)
    values["metrics_token"] = env.get("METRICS_TOKEN", "").strip()
    values.update(overrides)
    config = Config(**values)
    return _checked(config, secret_was_given=bool(current) or "jwt_secrets" in overrides, problems=problems)


def _checked(config: Config, secret_was_given: bool, problems: list[str] | None = None) -> Config:
    """Every problem at once, in one ConfigError: an operator fixes them in one go rather
    than learning of them one restart at a time."""
    problems = list(problems or ())
    if config.app_env not in ("development", "production"):
        problems.append(f"APP_ENV must be 'development' or 'production', not {config.app_env!r}")
    if config.mongodb_driver not in MONGODB_DRIVERS:
        problems.append(f"MONGODB_DRIVER must be one of {', '.join(MONGODB_DRIVERS)}, not {config.mongodb_driver!r}")
    if config.event_loop not in EVENT_LOOPS:
        problems.append(f"EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not {config.event_loop!r}")
    if config.is_production:
        if not secret_was_given:
            problems.append("APP_ENV=production needs JWT_SECRET (at least 32 bytes) in the environment")
        if not config.mongodb_uri:
            problems.append("APP_ENV=production needs MONGODB_URI: the embedded store loses every write on restart")
        if "*" in config.cors_origins:
            problems.append("APP_ENV=production needs CORS_ORIGINS to list the allowed origins, not '*'")
        if not config.metrics_token and not config.metrics_public:
            problems.append("APP_ENV=production needs METRICS_TOKEN in the environment, or METRICS_PUBLIC=true "
                            "if /metrics may be open to anyone who reaches the port (a private network)")
    short = [i for i, s in enumerate(config.jwt_secrets) if len(s.encode()) < MIN_SECRET_BYTES]
    if short and (config.is_production or secret_was_given):
        problems.append("JWT_SECRET and every JWT_PREVIOUS_SECRETS entry must be at least 32 bytes")
    for name, field in _FIELDS.items():  # the constraints declared with each setting
        check, value = field.metadata["check"], getattr(config, name)
        if check == POSITIVE and value <= 0:
            problems.append(f"{name.upper()} must be positive")
        elif check == NOT_NEGATIVE and value < 0:
            problems.append(f"{name.upper()} must not be negative")
        elif isinstance(check, tuple) and not check[0] <= value <= check[1]:
            problems.append(f"{name.upper()} must be between {check[0]} and {check[1]}")
    if "{token}" not in config.password_reset_url:
        problems.append("PASSWORD_RESET_URL must contain {token}, where the reset token goes")
    for name in ("email_verify_url", "email_change_url"):
        if "{token}" not in getattr(config, name):
            problems.append(f"{name.upper()} must contain {{token}}, where the token goes")
    if not config.mail_dir and not config.smtp_url and not config.is_production:
        problems.append("MAIL_DIR must name a directory for development mail (or set SMTP_URL)")
    if not config.mail_from:
        problems.append("MAIL_FROM must name the sender of the service's mail")
    if config.smtp_url:
        try:
            parse_smtp_url(config.smtp_url)
        except ValueError as error:
            problems.append(str(error))
    for name in ("google_jwks_url", "apple_jwks_url"):
        if not allowed_jwks_url(getattr(config, name)):
            problems.append(f"{name.upper()} must be an https:// URL (plain http only to 127.0.0.1 or localhost)")
    if config.web_concurrency < 1:
        problems.append("WEB_CONCURRENCY must be at least 1")
    if config.web_concurrency > 1 and config.uses_embedded_store:
        problems.append("WEB_CONCURRENCY above 1 needs MONGODB_URI: the embedded store lives in one process, "
                        "so each worker would have its own accounts and sessions")
    if config.prometheus_multiproc_dir and not os.path.isdir(config.prometheus_multiproc_dir):
        problems.append("PROMETHEUS_MULTIPROC_DIR must name an existing directory (or be empty: the server "
                        "makes its own)")
    if config.log_level.lower() not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {config.log_level!r}")
    if not config.host:
        problems.append("HOST must name an address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    if problems:
        raise ConfigError("; ".join(problems))
    if not config.jwt_secrets:
        log.warning("JWT_SECRET is not set: using a random secret for this process only; "
                    "tokens will not survive a restart or work across processes")
        config = config.replace(jwt_secrets=(secrets.token_urlsafe(48),))
    admins = tuple(dict.fromkeys(email.strip().lower() for email in config.admin_emails if email.strip()))
    return config.replace(log_level=config.log_level.lower(), admin_emails=admins)


