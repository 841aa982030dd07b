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

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """The configuration cannot run the service; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Config:
    app_env: str = "development"
    port: int = 8000
    mongodb_uri: str = ""
    mongodb_database: str = "video_app"
    mongodb_timeout_ms: int = 2500

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
    shutdown_grace_seconds: float = 10

    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 50
    login_failure_window_seconds: int = 900

    # Operators: the accounts with these emails may use /admin (normalised lower-case).
    admin_emails: tuple[str, ...] = ()
    plays_buffer_size: int = 10000
    plays_flush_seconds: float = 1

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
_NOT_FROM_FILE = {"jwt_secrets"}


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


def load_config(
    env: Mapping[str, str] | None = None,
    path: Path | str | None = DEFAULT_CONFIG_PATH,
    **overrides,
) -> Config:
    """Builds the Config: file defaults, then environment, then explicit overrides."""
    env = os.environ if env is None else env
    values: dict = {}
    if path is not None:
        with open(path, encoding="utf-8") as fh:
            file_values = yaml.safe_load(fh) or {}
        unknown = set(file_values) - set(_FIELDS) | (set(file_values) & _NOT_FROM_FILE)
        if unknown:
            raise ConfigError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in file_values.items()})
    for name in _FIELDS.keys() - _NOT_FROM_FILE:
        if name.upper() in env:
            values[name] = _coerce(name, env[name.upper()])

    current = env.get("JWT_SECRET", "")
    previous = _coerce("jwt_secrets", env.get("JWT_PREVIOUS_SECRETS", ""))
    values["jwt_secrets"] = tuple(s for s in (current, *previous) if s)
    values.update(overrides)
    config = Config(**values)
    return _checked(config, secret_was_given=bool(current) or "jwt_secrets" in overrides)


def _checked(config: Config, secret_was_given: bool) -> Config:
    if config.app_env not in ("development", "production"):
        raise ConfigError(f"APP_ENV must be 'development' or 'production', not {config.app_env!r}")
    if config.is_production:
        if not secret_was_given:
            raise ConfigError("APP_ENV=production needs JWT_SECRET (at least 32 bytes) in the environment")
        if not config.mongodb_uri:
            raise ConfigError("APP_ENV=production needs MONGODB_URI: the embedded store loses every write on restart")
        if "*" in config.cors_origins:
            raise ConfigError("APP_ENV=production needs CORS_ORIGINS to list the allowed origins, not '*'")
    short = [i for i, s in enumerate(config.jwt_secrets) if len(s.encode()) < MIN_SECRET_BYTES]
    if short and (config.is_production or secret_was_given):
        raise ConfigError("JWT_SECRET and every JWT_PREVIOUS_SECRETS entry must be at least 32 bytes")
    if not config.jwt_secrets:
        log.warning("JWT_SECRET is not set: using a random secret for this process only; "
                    "tokens will not survive a restart or work across processes")
        config = config.replace(jwt_secrets=(secrets.token_urlsafe(48),))
    for name in ("port", "bcrypt_rounds", "jwt_ttl_seconds", "playback_ttl_seconds",
                 "max_body_bytes", "mongodb_timeout_ms", "login_failure_window_seconds"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name.upper()} must be positive")
    if not 4 <= config.bcrypt_rounds <= 31:
        raise ConfigError("BCRYPT_ROUNDS must be between 4 and 31")
    if config.bcrypt_threads < 0:
        raise ConfigError("BCRYPT_THREADS must not be negative (0: one per core)")
    if config.catalog_cache_seconds < 0:
        raise ConfigError("CATALOG_CACHE_SECONDS must not be negative")
    if config.dashboard_video_count < 0:
        raise ConfigError("DASHBOARD_VIDEO_COUNT must not be negative")
    if config.plays_buffer_size <= 0 or config.plays_flush_seconds <= 0:
        raise ConfigError("PLAYS_BUFFER_SIZE and PLAYS_FLUSH_SECONDS must be positive")
    admins = tuple(dict.fromkeys(email.strip().lower() for email in config.admin_emails if email.strip()))
    if admins != config.admin_emails:
        config = config.replace(admin_emails=admins)
    return config
