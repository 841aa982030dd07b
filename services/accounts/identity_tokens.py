"""ID tokens from Google and Apple: the provider's published keys (JWKS), and the checks
that make a token proof of who signed in.

Keys are fetched over https with a timeout, in a thread (urllib: nothing here blocks the
event loop), cached, and fetched again only for a ``kid`` the cache does not know, at most
once every ``REFETCH_SECONDS``. Concurrent requests share one fetch in flight, so a crowd
of sign-ins after a key rotation fetches once. A failed fetch is not retried for
``FAILURE_RETRY_SECONDS``: meanwhile the keys are "unreachable" (503 with Retry-After).

A token is accepted only if signed with RS256 (the algorithm the key names; never
``none``, never an HMAC) by a published key, issued by the provider (``iss``) for one of
our client ids (``aud``), within its ``exp``/``iat`` (small leeway), with the ``nonce``
the app sent: Google's claim equals it, Apple's is its SHA-256 in hex.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt

from services.common.errors import NotAuthenticated, NotFound, UpstreamUnavailable

log = logging.getLogger("app.accounts")

ALGORITHMS = ("RS256",)  # what Google and Apple sign with; the only ones accepted
LEEWAY_SECONDS = 60  # clock skew allowed on exp, iat and nbf
REFETCH_SECONDS = 60.0  # an unknown kid fetches the keys again at most this often
FAILURE_RETRY_SECONDS = 5  # after a failed fetch, 503 without fetching for this long
MAX_AGE_SECONDS = 6 * 3600.0  # known keys are fetched again (in the request path, once) when older
MAX_JWKS_BYTES = 64 * 1024  # both providers publish 2-3 keys in about 1-2 KiB
MAX_KEYS = 20

GOOGLE = "google"
APPLE = "apple"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
APPLE_ISSUERS = ("https://appleid.apple.com",)
PROVIDER_NAMES = {GOOGLE: "Google", APPLE: "Apple"}

KEYS_UNREACHABLE = "The sign-in provider's keys cannot be reached right now. Please try again shortly."


class KeysUnavailable(UpstreamUnavailable):
    """The provider's JWKS could not be fetched: the token can be neither accepted nor refused."""


class InvalidIdToken(NotAuthenticated):
    """The ID token is not proof of a sign-in (signature, issuer, audience, time, nonce)."""


def allowed_jwks_url(url: str) -> bool:
    """https, or plain http to this machine only (a local JWKS for tests and development)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class _HttpsRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """A redirect may only lead to another https URL (never down to plain http)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme != "https":
            raise urllib.error.HTTPError(newurl, code, "redirect away from https refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpsRedirectsOnly)


def _fetch_sync(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - checked scheme
    with _OPENER.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise OSError(f"JWKS answered {response.status}")
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise OSError("JWKS too large")
    return body


async def fetch_url(url: str, seconds: float) -> bytes:
    """The body of a GET over https, in a thread (urllib is synchronous), within ``seconds``."""
    return await asyncio.wait_for(asyncio.to_thread(_fetch_sync, url, seconds), seconds)


def parse_jwks(body: bytes) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document by kid: RSA keys for RS256 only."""
    document = json.loads(body)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError("not a JWKS document")
    usable: dict[str, jwt.PyJWK] = {}
    for entry in keys[:MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("kty") != "RSA" or entry.get("alg", "RS256") not in ALGORITHMS:
            continue
        try:
            usable[kid] = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
    if not usable:
        raise ValueError("no usable RS256 key")
    return usable


class JwksCache:
    """One provider's keys. ``fetch`` (the URL's body) and ``clock`` are replaceable in tests."""

    def __init__(self, url: str, timeout_seconds: float,
                 fetch: Callable[[str, float], Awaitable[bytes]] = fetch_url,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.fetch = fetch
        self.clock = clock
        self.fetches = 0  # attempts, for tests and logs
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._failed_at: float | None = None
        self._in_flight: asyncio.Future[bool] | None = None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The published key with this kid; None if the provider does not publish it.
        Raises KeysUnavailable when the keys are needed and cannot be fetched."""
        known = self._keys.get(kid)
        if known is not None and not self._stale():
            return known
        flight = self._in_flight
        if flight is None:
            now = self.clock()
            if self._failed_at is not None and now - self._failed_at < FAILURE_RETRY_SECONDS:
                return self._or_unavailable(known)
            if known is None and self._fetched_at is not None and now - self._fetched_at < REFETCH_SECONDS:
                return None  # fetched a moment ago: the provider does not publish this kid
            flight = self._in_flight = asyncio.ensure_future(self._fetch_now())
        # shield: a waiter cancelled does not cancel the fetch the others wait for.
        if await asyncio.shield(flight):
            return self._keys.get(kid)
        return self._or_unavailable(known)

    def _stale(self) -> bool:
        return self._fetched_at is None or self.clock() - self._fetched_at >= MAX_AGE_SECONDS

    @staticmethod
    def _or_unavailable(known: jwt.PyJWK | None) -> jwt.PyJWK:
        """A key fetched earlier still verifies while the provider is unreachable (providers
        keep publishing a retired key for days); without one, the answer is "later"."""
        if known is None:
            raise KeysUnavailable(KEYS_UNREACHABLE, retry_after=FAILURE_RETRY_SECONDS)
        return known

    async def _fetch_now(self) -> bool:
        """One fetch, shared by every caller waiting meanwhile; True if it succeeded."""
        self.fetches += 1
        try:
            keys = parse_jwks(await self.fetch(self.url, self.timeout_seconds))
        except (OSError, TimeoutError, ValueError, RecursionError, http.client.HTTPException) as error:
            self._failed_at = self.clock()
            log.warning("JWKS fetch failed", extra={"url": self.url, "error": type(error).__name__})
            return False
        finally:
            self._in_flight = None
        self._keys = keys
        self._fetched_at = self.clock()
        self._failed_at = None
        return True


@dataclasses.dataclass(frozen=True)
class Provider:
    name: str  # google | apple
    issuers: tuple[str, ...]
    client_ids: tuple[str, ...]
    keys: JwksCache
    hashed_nonce: bool  # Apple: the claim is the SHA-256 (hex) of the nonce the app sent


@dataclasses.dataclass(frozen=True)
class IdentityClaims:
    """What a verified ID token says about who signed in."""

    provider: str
    sub: str
    email: str | None
    email_verified: bool
    name: str | None
    issued_at: int


class IdentityTokens:
    """Verifies ID tokens of the configured providers (a provider with no client id is off)."""

    def __init__(self, providers: Mapping[str, Provider], clock: Callable[[], float] = time.time) -> None:
        self._providers = {name: p for name, p in providers.items() if p.client_ids}
        self.clock = clock

    def provider(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            raise NotFound(f"Sign in with {PROVIDER_NAMES.get(name, name)} is not set up on this server.")
        return provider

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def provider_of(self, id_token: str) -> str | None:
        """Which configured provider issued this token, going by its (unverified) ``iss``:
        only to choose the provider whose checks then decide."""
        try:
            issuer = jwt.decode(id_token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return None
        return next((name for name, p in self._providers.items() if issuer in p.issuers), None)

    async def verify(self, provider_name: str, id_token: str, nonce: str | None) -> IdentityClaims:
        provider = self.provider(provider_name)
        who = PROVIDER_NAMES[provider.name]
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise InvalidIdToken(f"This is not a {who} ID token.") from None
        if header.get("alg") not in ALGORITHMS:
            raise InvalidIdToken(f"This ID token is not signed the way {who} signs its tokens.")
        kid = header.get("kid")
        key = await provider.keys.key(kid) if isinstance(kid, str) and kid else None
        if key is None or key.algorithm_name != header["alg"]:
            raise InvalidIdToken(f"This ID token is not signed with a key {who} publishes.")
        claims = self._decode(provider, id_token, key, who)
        self._check_nonce(provider, claims.get("nonce"), nonce, who)
        return _identity(provider.name, claims, who)

    def _decode(self, provider: Provider, id_token: str, key: jwt.PyJWK, who: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                id_token, key.key, algorithms=[key.algorithm_name], audience=list(provider.client_ids),
                issuer=provider.issuers, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidIdToken(f"This {who} ID token has expired. Please sign in again.") from None
        except jwt.ImmatureSignatureError:
            raise InvalidIdToken(f"This {who} ID token is not valid yet. Check the device's clock.") from None
        except jwt.InvalidAudienceError:
            raise InvalidIdToken(f"This {who} ID token was issued for another app.") from None
        except jwt.InvalidIssuerError:
            raise InvalidIdToken(f"This ID token was not issued by {who}.") from None
        except jwt.InvalidSignatureError:
            raise InvalidIdToken(f"This ID token's signature is not {who}'s.") from None
        except jwt.PyJWTError:
            raise InvalidIdToken(f"This is not a valid {who} ID token.") from None
        return claims

    @staticmethod
    def _check_nonce(provider: Provider, claimed: object, sent: str | None, who: str) -> None:
        if claimed is None and sent is None:
            return
        if claimed is None:
            raise InvalidIdToken(f"This {who} ID token carries no nonce, but one was sent.")
        if sent is None:
            raise InvalidIdToken("This ID token carries a nonce: send the nonce the app used with it.")
        expected = hashlib.sha256(sent.encode("utf-8", "surrogatepass")).hexdigest() if provider.hashed_nonce else sent
        if not isinstance(claimed, str) or not hmac.compare_digest(claimed.encode("utf-8", "surrogatepass"),
                                                                   expected.encode("utf-8", "surrogatepass")):
            raise InvalidIdToken(f"The nonce does not match the one in this {who} ID token.")


def _identity(provider: str, claims: dict[str, Any], who: str) -> IdentityClaims:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        raise InvalidIdToken(f"This {who} ID token names no account.")
    email = claims.get("email")
    name = claims.get("name")
    verified = claims.get("email_verified")
    return IdentityClaims(
        provider=provider, sub=sub,
        email=email if isinstance(email, str) and email else None,
        # Apple has sent it as the string "true".
        email_verified=verified is True or (isinstance(verified, str) and verified.lower() == "true"),
        name=name if isinstance(name, str) else None,
        issued_at=int(claims["iat"]),
    )


def build_identity_tokens(*, google_client_ids: tuple[str, ...], apple_client_ids: tuple[str, ...],
                          google_jwks_url: str, apple_jwks_url: str, timeout_seconds: float) -> IdentityTokens:
    return IdentityTokens({
        GOOGLE: Provider(GOOGLE, GOOGLE_ISSUERS, google_client_ids,
                         JwksCache(google_jwks_url, timeout_seconds), hashed_nonce=False),
        APPLE: Provider(APPLE, APPLE_ISSUERS, apple_client_ids,
                        JwksCache(apple_jwks_url, timeout_seconds), hashed_nonce=True),
    })
