"""Refresh tokens: rotation with reuse detection (OAuth 2.0 Security BCP, section 4.14).

A refresh token is 256 random bits, handed out once and stored only as its SHA-256
hash, bound to one login session. Presenting it spends it, in one conditional update,
and yields a new pair. A retry of the same refresh within the grace window (the app
lost the answer) gets the very same pair again, without the new refresh token ever
being stored in plain text:

- the successor is derived, not drawn: HMAC-SHA256(server key, presented token), so
  it can be computed again from what the client presents, and from nothing stored;
- the spent record keeps the successor's hash (to know which server key made it) and
  the ``iat`` of the access token minted with it, so that JWT is re-issued byte for byte.

A spent token presented after the grace window is a replay: someone else holds a copy,
so the whole session ends (its access tokens, refresh tokens and playback links die).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets

from pymongo import ReturnDocument

from services.accounts.sessions import Principal
from services.common.clock import as_utc, utcnow
from services.common.datastore import Database

TOKEN_BYTES = 32  # 256 bits
SUCCESSOR_LABEL = b"video-app.refresh-successor.v1:"
# Longer than any token we issue (43 characters); anything longer is not worth a hash.
MAX_TOKEN_CHARS = 1000


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def successor_of(token: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), SUCCESSOR_LABEL + token.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


@dataclasses.dataclass(frozen=True)
class Rotation:
    """The outcome of presenting a refresh token."""

    principal: Principal
    refresh_token: str  # the successor
    access_issued_at: int  # iat of the access token that goes with it
    first: bool  # False: a retry within the grace window, answered with the same pair


class RefreshTokenReplayed(Exception):
    """A spent token came back after the grace window: its session must end."""

    def __init__(self, principal: Principal):
        super().__init__("refresh token replayed")
        self.principal = principal


class RefreshTokenStore:
    def __init__(self, db: Database, *, ttl_seconds: int, grace_seconds: float, signing_keys: tuple[str, ...]):
        self._tokens = db["refresh_tokens"]
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self._grace = dt.timedelta(seconds=grace_seconds)
        self._signing_keys = signing_keys

    async def ensure_indexes(self) -> None:
        # Lookups are by _id (the hash); these serve expiry and the bulk revocations.
        await self._tokens.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        await self._tokens.create_index("session_id", name="session_id")
        await self._tokens.create_index("user_id", name="user_id")

    async def issue(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        await self._store(token_hash(token), principal, utcnow())
        return token

    async def _store(self, hashed: str, principal: Principal, issued: dt.datetime) -> None:
        # An upsert that only ever inserts: storing the same successor twice (the first
        # refresh and a retry racing) is one document, and an existing one is left alone.
        await self._tokens.update_one(
            {"_id": hashed},
            {"$setOnInsert": {"session_id": principal.session_id, "user_id": principal.user_id,
                              "issued_at": issued, "expires_at": issued + self._ttl, "spent_at": None}},
            upsert=True,
        )

    async def rotate(self, token: str, access_issued_at: int) -> Rotation | None:
        """Spends ``token``. None if it is unknown or expired; raises RefreshTokenReplayed
        for a spent one past the grace window. ``access_issued_at`` is the ``iat`` of the
        access token to mint if this call is the one that spends it."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        hashed = token_hash(token)
        now = utcnow()
        successor = successor_of(token, self._signing_keys[0])
        # The one atomic step: of any number of concurrent presentations, one spends it.
        spent = await self._tokens.find_one_and_update(
            {"_id": hashed, "spent_at": None, "expires_at": {"$gt": now}},
            {"$set": {"spent_at": now, "successor_hash": token_hash(successor),
                      "access_issued_at": access_issued_at}},
            return_document=ReturnDocument.AFTER,
        )
        if spent is not None:
            principal = Principal(user_id=spent["user_id"], session_id=spent["session_id"])
            await self._store(token_hash(successor), principal, now)
            return Rotation(principal, successor, access_issued_at, first=True)

        found = await self._tokens.find_one({"_id": hashed})
        if found is None or as_utc(found["expires_at"]) <= now or found.get("spent_at") is None:
            return None  # unknown, expired (or, in a race, just expired)
        principal = Principal(user_id=found["user_id"], session_id=found["session_id"])
        if now - as_utc(found["spent_at"]) > self._grace:
            raise RefreshTokenReplayed(principal)
        # A retry within the grace window: the same successor, whichever of our secrets made it.
        for secret in self._signing_keys:
            successor = successor_of(token, secret)
            if token_hash(successor) == found.get("successor_hash"):
                # Stored again in case the first refresh was cut off before it stored it.
                await self._store(token_hash(successor), principal, as_utc(found["spent_at"]))
                return Rotation(principal, successor, found["access_issued_at"], first=False)
        return None  # made with a secret since retired

    async def end_session(self, session_id: str) -> None:
        await self._tokens.delete_many({"session_id": session_id})

    async def end_all(self, user_id: str, *, except_session: str | None = None) -> None:
        query: dict = {"user_id": user_id}
        if except_session is not None:
            query["session_id"] = {"$ne": except_session}
        await self._tokens.delete_many(query)

    async def delete_user_data(self, user_id: str) -> None:
        await self.end_all(user_id)
