"""The one configuration object, built once at start-up and passed down.

Defaults come from ``config.yaml``; every key can be overridden by an environment
variable of the same name in upper case. Secrets come from the environment only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import yaml

from services.common.mail import parse_smtp_url

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
MIN_SECRET_BYTES = 32
MONGODB_DRIVERS = ("motor", "pymongo")


class ConfigError(Exception):
    """The configuration cannot run the service; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Config:
    app_env: str = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    web_concurrency: int = 1
    log_level: str = "info"
    mongodb_uri: str = ""
    mongodb_database: str = "video_app"
    mongodb_timeout_ms: int = 2500
    mongodb_driver: str = "motor"  # motor | pymongo (PyMongo's own AsyncMongoClient)

    # Newest first: the first secret signs, every one of them verifies (key rotation).
    jwt_secrets: tuple[str, ...] = ()
    bcrypt_rounds: int = 12
    bcrypt_threads: int = 0  # 0: as many as the machine has cores
    jwt_ttl_seconds: int = 86400
    playback_ttl_seconds: int = 3600
    dashboard_video_count: int = 2
    catalog_cache_seconds: float = 5

    cors_origins: tuple[str, ...] = ("*",)
    public_base_url: str = ""
    trust_proxy: bool = False

    max_body_bytes: int = 65536
    body_timeout_seconds: float = 10
    idle_connection_timeout_seconds: float = 60
    # Connections the kernel queues before Tornado accepts them (Tornado's own default is
    # 128): a crowd connecting at once would otherwise see dropped SYNs and 1-3 s retries.
    listen_backlog: int = 2048
    shutdown_grace_seconds: float = 10

    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 50
    login_failure_window_seconds: int = 900
    signup_max_per_address: int = 20
    signup_window_seconds: int = 600
    password_queue_limit: int = 16

    # Empty: /metrics is open (keep it off the public internet some other way).
    metrics_token: str = ""

    refresh_ttl_seconds: int = 2592000
    refresh_reuse_grace_seconds: float = 10
    password_reset_ttl_seconds: int = 1800
    password_reset_max_per_email: int = 3
    password_reset_max_per_address: int = 20
    password_reset_window_seconds: int = 3600
    password_reset_url: str = "videoapp://reset?token={token}"  # noqa: S105 - a link template
    smtp_url: str = ""
    smtp_timeout_seconds: float = 10
    mail_from: str = "Video App <no-reply@example.com>"

    # Operators: the accounts with these emails may use /admin (normalised lower-case).
    admin_emails: tuple[str, ...] = ()
    plays_buffer_size: int = 10000
    plays_flush_seconds: float = 1
    plays_retention_days: int = 400  # raw plays; the per-day rollups stay

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def uses_embedded_store(self) -> bool:
        return not self.mongodb_uri

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# Settings that are read from somewhere other than a same-named key.
_NOT_FROM_FILE = {"jwt_secrets", "metrics_token"}
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
    if config.is_production:
        if not secret_was_given:
            problems.append("APP_ENV=production needs JWT_SECRET (at least 32 bytes) in the environment")
        if not config.mongodb_uri:
            problems.append("APP_ENV=production needs MONGODB_URI: the embedded store loses every write on restart")
        if "*" in config.cors_origins:
            problems.append("APP_ENV=production needs CORS_ORIGINS to list the allowed origins, not '*'")
    short = [i for i, s in enumerate(config.jwt_secrets) if len(s.encode()) < MIN_SECRET_BYTES]
    if short and (config.is_production or secret_was_given):
        problems.append("JWT_SECRET and every JWT_PREVIOUS_SECRETS entry must be at least 32 bytes")
    for name in _POSITIVE:
        if getattr(config, name) <= 0:
            problems.append(f"{name.upper()} must be positive")
    if not 4 <= config.bcrypt_rounds <= 31:
        problems.append("BCRYPT_ROUNDS must be between 4 and 31")
    for name, meaning in _NOT_NEGATIVE.items():
        if getattr(config, name) < 0:
            problems.append(f"{name.upper()} must not be negative{meaning}")
    if "{token}" not in config.password_reset_url:
        problems.append("PASSWORD_RESET_URL must contain {token}, where the reset token goes")
    if not config.mail_from:
        problems.append("MAIL_FROM must name the sender of the service's mail")
    if config.smtp_url:
        try:
            parse_smtp_url(config.smtp_url)
        except ValueError as error:
            problems.append(str(error))
    if config.web_concurrency < 1:
        problems.append("WEB_CONCURRENCY must be at least 1")
    if config.web_concurrency > 1 and config.uses_embedded_store:
        problems.append("WEB_CONCURRENCY above 1 needs MONGODB_URI: the embedded store lives in one process, "
                        "so each worker would have its own accounts and sessions")
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


_POSITIVE = ("port", "bcrypt_rounds", "jwt_ttl_seconds", "playback_ttl_seconds", "max_body_bytes",
             "mongodb_timeout_ms", "login_failure_window_seconds", "login_max_failures_per_account",
             "login_max_failures_per_address", "signup_max_per_address", "signup_window_seconds",
             "password_queue_limit", "refresh_ttl_seconds", "password_reset_ttl_seconds",
             "password_reset_max_per_email", "password_reset_max_per_address", "password_reset_window_seconds",
             "smtp_timeout_seconds", "plays_buffer_size", "plays_flush_seconds", "listen_backlog",
             "plays_retention_days")
_NOT_NEGATIVE = {
    "bcrypt_threads": " (0: one per core)",
    "catalog_cache_seconds": "",
    "dashboard_video_count": "",
    "refresh_reuse_grace_seconds": "",
}
