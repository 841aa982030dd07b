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

from services.common.clock import as_utc, isoformat, utcnow
from services.common.datastore import Database
from services.common.errors import NotAuthenticated
from services.common.tokens import VerifiedTokens

JWT_ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a password
_REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "typ"]
EXPIRED = "Your session has expired. Please log in again."
# User-Agent headers can be kilobytes long; what a person needs to recognise a device fits in this.
MAX_USER_AGENT_CHARS = 200
# last_used_at is kept to about this precision, so that not every request writes.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
# A user with more live sessions than this sees the newest ones.
MAX_SESSIONS_LISTED = 100
# What is_live reads of a session (not its user agent or creation time).
_LIVENESS_FIELDS = {"user_id": 1, "expires_at": 1, "last_used_at": 1}


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the user and the login session their token belongs to."""

    user_id: str
    session_id: str


class SessionStore:
    """Login sessions. Also one of the account's user data owners (deletion ends them all)."""

    def __init__(self, db: Database, ttl_seconds: int):
        self._sessions = db["sessions"]
        self._ttl = dt.timedelta(seconds=ttl_seconds)

    async def ensure_indexes(self) -> None:
        # MongoDB removes a session once neither its token nor its refresh token can be valid.
        await self._sessions.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        await self._sessions.create_index("user_id", name="user_id")
        # The session list: one user's sessions, newest first.
        await self._sessions.create_index([("user_id", 1), ("created_at", -1)], name="user_id_created_at")

    async def start(self, user_id: str, user_agent: str = "") -> str:
        now = utcnow()
        session_id = secrets.token_urlsafe(18)
        await self._sessions.insert_one({
            "_id": session_id, "user_id": user_id, "created_at": now, "last_used_at": now,
            "user_agent": user_agent[:MAX_USER_AGENT_CHARS], "expires_at": now + self._ttl,
        })
        return session_id

    async def is_live(self, principal: Principal) -> bool:
        """Every authenticated request asks this: one read by primary key, the owner and
        the expiry compared here. (The TTL monitor runs about once a minute, so an expired
        session may still be stored.) ``last_used_at`` is written only when the document
        just read says it is stale, so at most about once a minute per session."""
        found = await self._sessions.find_one({"_id": principal.session_id}, projection=_LIVENESS_FIELDS)
        if found is None or found.get("user_id") != principal.user_id:
            return False
        expires_at = found.get("expires_at")
        now = utcnow()
        if not (isinstance(expires_at, dt.datetime) and as_utc(expires_at) > now):
            return False
        last_used = found.get("last_used_at")
        if not isinstance(last_used, dt.datetime) or now - as_utc(last_used) >= LAST_USED_RESOLUTION:
            # Conditional: of many requests racing past the read above, one write lands.
            await self._sessions.update_one(
                {"_id": principal.session_id, "last_used_at": {"$not": {"$gte": now - LAST_USED_RESOLUTION}}},
                {"$set": {"last_used_at": now}},
            )
        return True

    async def extend(self, principal: Principal) -> bool:
        """A refresh: the session lives on for another full lifetime from now. False if
        it has ended (logged out, revoked, expired): then nothing is changed."""
        now = utcnow()
        result = await self._sessions.update_one(
            {"_id": principal.session_id, "user_id": principal.user_id, "expires_at": {"$gt": now}},
            {"$set": {"expires_at": now + self._ttl, "last_used_at": now}},
        )
        return result.matched_count == 1

    async def list_for(self, principal: Principal) -> list[dict]:
        """The user's live sessions, newest first, as plain values."""
        now = utcnow()
        cursor = self._sessions.find({"user_id": principal.user_id, "expires_at": {"$gt": now}}) \
            .sort("created_at", -1).limit(MAX_SESSIONS_LISTED)
        return [{
            "id": doc["_id"],
            "created_at": isoformat(doc["created_at"]),
            "last_used_at": isoformat(doc.get("last_used_at") or doc["created_at"]),
            "user_agent": doc.get("user_agent", ""),
            "current": doc["_id"] == principal.session_id,
        } async for doc in cursor]

    async def end(self, principal: Principal) -> bool:
        """Ends one session of this user; False if there was none such."""
        result = await self._sessions.delete_one({"_id": principal.session_id, "user_id": principal.user_id})
        return result.deleted_count == 1

    async def end_all(self, user_id: str, *, except_session: str | None = None) -> None:
        query: dict = {"user_id": user_id}
        if except_session is not None:
            query["_id"] = {"$ne": except_session}
        await self._sessions.delete_many(query)

    async def delete_user_data(self, user_id: str) -> None:
        await self.end_all(user_id)


def _is_storable_text(value) -> bool:
    return isinstance(value, str) and value.isprintable() and value == value.encode("utf-8", "replace").decode()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        return self._secrets

    def issue(self, principal: Principal, issued_at: int | None = None) -> str:
        """A token for this session. The same ``issued_at`` (and secret) gives the same
        token byte for byte, which is how a retried refresh gets the pair it lost."""
        now = int(time.time()) if issued_at is None else issued_at
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
            # PyJWT checks the time claims' values but not their JSON types ("exp": "4102444800"
            # passes): every claim used is checked for its type here, and ids for text a
            # database can store (no lone surrogates).
            if claims["typ"] != TOKEN_TYPE or not _is_storable_text(claims["sid"]) \
                    or not _is_storable_text(claims["sub"]) or not _is_number(claims["exp"]):
                break
            return Principal(user_id=claims["sub"], session_id=claims["sid"]), claims["exp"]
        raise NotAuthenticated("Your login is not valid. Please log in again.")
