"""Login sessions and the auth token (JWT) that carries one.

The JWT alone is not enough: each one names a session stored in the database, and
logout deletes it. Every process sharing the database therefore refuses a logged-out
token from the moment logout returns, and so does every playback link minted under it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import secrets
import time

import jwt

from services.clock import as_utc, utcnow
from services.errors import NotAuthenticated

JWT_ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a password
_REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "typ"]
VERIFIED_TOKEN_CACHE_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the user and the login session their token belongs to."""

    user_id: str
    session_id: str


class SessionStore:
    def __init__(self, db, ttl_seconds: int):
        self._sessions = db["sessions"]
        self._ttl = dt.timedelta(seconds=ttl_seconds)

    async def ensure_indexes(self) -> None:
        # MongoDB removes a session once its token could no longer be valid anyway.
        await self._sessions.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        await self._sessions.create_index("user_id", name="user_id")

    async def start(self, user_id: str) -> str:
        now = utcnow()
        session_id = secrets.token_urlsafe(18)
        await self._sessions.insert_one(
            {"_id": session_id, "user_id": user_id, "created_at": now, "expires_at": now + self._ttl}
        )
        return session_id

    async def is_live(self, principal: Principal) -> bool:
        """Every authenticated request asks this: one read by primary key, the owner and
        the expiry compared here. (The TTL monitor runs about once a minute, so an expired
        session may still be stored.)"""
        found = await self._sessions.find_one({"_id": principal.session_id})
        if found is None or found.get("user_id") != principal.user_id:
            return False
        expires_at = found.get("expires_at")
        return isinstance(expires_at, dt.datetime) and as_utc(expires_at) > utcnow()

    async def end(self, principal: Principal) -> None:
        await self._sessions.delete_one({"_id": principal.session_id, "user_id": principal.user_id})


def _is_storable_text(value) -> bool:
    return isinstance(value, str) and value.isprintable() and value == value.encode("utf-8", "replace").decode()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class AuthTokenCodec:
    """Issues and verifies the auth JWT: HS256 only, every claim required.

    ``secrets`` is newest first: the first signs, all verify, so a secret can be
    rotated without logging everybody out.
    """

    def __init__(self, secrets: tuple[str, ...], ttl_seconds: int):
        if not secrets:
            raise ValueError("at least one JWT secret is needed")
        self._secrets = secrets
        self._ttl = ttl_seconds
        # Bounded, per codec (so per set of secrets): a flood of distinct valid tokens
        # evicts old entries instead of growing memory.
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE_SIZE)(self._decode)

    def issue(self, principal: Principal) -> str:
        now = int(time.time())
        claims = {
            "sub": principal.user_id,
            "sid": principal.session_id,
            "iat": now,
            "exp": now + self._ttl,
            "typ": TOKEN_TYPE,
        }
        return jwt.encode(claims, self._secrets[0], algorithm=JWT_ALGORITHM)

    def verify(self, token: str) -> Principal:
        principal, expires = self._verified(token)
        # A cached verification stays good only while the token itself is.
        if expires <= time.time():
            raise NotAuthenticated("Your session has expired. Please log in again.")
        return principal

    def _decode(self, token: str) -> tuple[Principal, int]:
        """Signature and claims, checked once per token: every request of a session
        carries the same token, so the result is cached (failures are not)."""
        for secret in self._secrets:
            try:
                claims = jwt.decode(
                    token, secret, algorithms=[JWT_ALGORITHM], options={"require": _REQUIRED_CLAIMS}
                )
            except jwt.InvalidSignatureError:
                continue  # perhaps signed with an older secret
            except jwt.ExpiredSignatureError:
                raise NotAuthenticated("Your session has expired. Please log in again.") from None
            except jwt.InvalidTokenError:
                break
            # PyJWT checks the time claims' values but not their JSON types ("exp": "4102444800"
            # passes): every claim used is checked for its type here, and ids for text a
            # database can store (no lone surrogates).
            if claims["typ"] != TOKEN_TYPE or not _is_storable_text(claims["sid"]) \
                    or not _is_storable_text(claims["sub"]) or not _is_number(claims["exp"]):
                break
            return Principal(user_id=claims["sub"], session_id=claims["sid"]), claims["exp"]
        raise NotAuthenticated("Your login is not valid. Please log in again.")
