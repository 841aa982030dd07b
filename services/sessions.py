"""Login sessions and the auth token (JWT) that carries one.

The JWT alone is not enough: each one names a session stored in the database, and
logout deletes it. Every process sharing the database therefore refuses a logged-out
token from the moment logout returns, and so does every playback link minted under it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time

import jwt

from services.clock import as_utc, utcnow
from services.errors import NotAuthenticated
from services.tokens import VerifiedTokens

JWT_ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a password
_REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "typ"]
EXPIRED = "Your session has expired. Please log in again."


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


class AuthTokenCodec:
    """Issues and verifies the auth JWT: HS256 only, every claim required.

    ``signing_keys`` is newest first: the first signs, all verify, so a secret can be
    rotated without logging everybody out.
    """

    def __init__(self, signing_keys: tuple[str, ...], ttl_seconds: int):
        if not signing_keys:
            raise ValueError("at least one JWT secret is needed")
        self._secrets = signing_keys
        self._ttl = ttl_seconds
        # A cached verification stays good only while the token itself is: until its exp.
        self._verified = VerifiedTokens(self._decode, lambda expires, now: now < expires, EXPIRED)

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
        return self._verified.verify(token)

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
                raise NotAuthenticated(EXPIRED) from None
            except jwt.InvalidTokenError:
                break
            if claims["typ"] != TOKEN_TYPE or not isinstance(claims["sid"], str) \
                    or not isinstance(claims["sub"], str):
                break
            return Principal(user_id=claims["sub"], session_id=claims["sid"]), claims["exp"]
        raise NotAuthenticated("Your login is not valid. Please log in again.")
